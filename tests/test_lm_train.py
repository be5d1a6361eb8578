"""`widthdepth lab train-lm` (issue 14): the examples it learns from, determinism, resuming after a
stop, bad input; the tiny preset keeps it to seconds. The shipped model itself is tested in
test_lm_shipped.py."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("transformers", reason="the hf extra (transformers, gguf) is not installed")

from widthdepth.errors import WidthdepthError  # noqa: E402
from widthdepth.lab.lm import data  # noqa: E402
from widthdepth.lab.lm.train import preset_config, train_lm  # noqa: E402
from widthdepth.tasks import load_task  # noqa: E402


def test_written_chain_solutions_are_right_and_slips_are_wrong():
    rng = random.Random(0)
    for spec in ("chain:L=1", "chain:L=4", "chain:L=8"):
        family = load_task(spec)
        for problem in family.problems(30, 7):
            assert family.check(problem, family.parse(data.solution(problem, rng), problem)), spec
            slipped = data.chain_solution(problem, slip_at=1, rng=rng)
            assert slipped.split("\n")[1] != data.chain_solution(problem).split("\n")[1]  # the slip is in step 1


def test_written_subset_search_says_yes_only_at_zero_and_else_gives_up():
    rng = random.Random(0)
    for spec in ("search:kind=subset,n=4", "search:kind=subset,n=6", "search:kind=subset,n=10"):
        family = load_task(spec)
        found = 0
        for problem in family.problems(100, 7):
            text = data.solution(problem, rng)
            target = problem.structure["target"]
            lines = text.split("\n")
            assert lines[0] == f"Need {target}."
            tries = lines[1:-1]
            assert 1 <= len(tries) <= data.MAX_TRIES
            for line in tries:  # "Take 12, 27-12=15. Take 9, 15-9=6. No.": each subtraction right, chained
                takes = [part.split(", ")[1] for part in line.split(". ")[:-1]]
                need = target
                for sub in takes:
                    left, right = sub.rstrip(".").split("=")
                    a, b = map(int, left.split("-"))
                    assert a == need and a - b == int(right) and 0 <= int(right)
                    need = int(right)
                assert line.endswith(" Yes.") == (need == 0) and len(takes) <= 3
            answer = family.parse(text, problem)
            if tries[-1].endswith("Yes."):
                assert family.check(problem, answer) and family.verify(problem, answer)
                found += 1
            else:
                assert text.endswith("Answer: none") and answer is None
        assert 80 <= found, spec  # the written search itself finds almost every answer; a sample has to learn it


def test_training_never_sees_a_held_out_problem():
    source = data.ProblemSource()
    for spec in ("chain:L=2", "search:kind=subset,n=6"):
        held = {p.question for p in load_task(spec).problems(data.HELD_OUT_COUNT, 0)}
        seen = {source.problem(spec, seed).question for seed in range(400)}
        assert not held & seen
        assert len(seen) > 300  # and the training problems still vary


def test_every_kind_of_example_is_a_runner_prompt_with_a_checkable_target():
    rng, source = random.Random(1), data.ProblemSource()
    own = data.Owned("chain:L=3", 5, "Start: 1\nStep 1: 1+2=3 -> 3\nStep 2: 3*4=12 -> 2\n"
                                     "Step 3: 2+9=11 -> 1\nAnswer: 7")
    problem = source.problem(own.spec, own.seed)
    verify = data.example("verify", problem, rng, own=own.text)
    assert verify.target in ("Yes", "No") and "Is the final answer 7 correct?" in verify.prompt
    assert verify.target == ("Yes" if problem.gold == ("7",) else "No")
    revise = data.example("revise", problem, rng, own=own.text)
    assert "A previous attempt:" in revise.prompt and own.text in revise.prompt
    assert load_task(own.spec).check(problem, load_task(own.spec).parse(revise.target))
    for _ in range(20):
        extend = data.example("extend", problem, rng)
        assert extend.prompt.endswith("\nWait,") and extend.prompt.startswith("<s><|user|>\n")
        assert extend.target.startswith((" continuing.", " checking.")) and "Answer:" in extend.target
    kinds = {data.random_example(rng, source, [own]).kind for _ in range(200)}
    assert kinds == {"attempt", "revise", "verify", "extend"}


def test_training_is_deterministic_and_resumes_to_the_same_weights(tmp_path):
    from safetensors.numpy import load_file

    config = preset_config("tiny")
    whole = train_lm(config, tmp_path / "whole")

    class Stop(Exception):
        pass

    def stop_at_5(step, metrics):
        if step == 5:
            raise Stop

    with pytest.raises(Stop):
        train_lm(config, tmp_path / "resumed", stop_at_5)
    assert (tmp_path / "resumed" / ".train" / "state.pt").is_file()
    steps = []
    resumed = train_lm(config, tmp_path / "resumed", lambda step, metrics: steps.append(step))
    assert steps[0] == 4 and steps[-1] == config.steps  # from the last saved state (every 2 steps)
    a, b = load_file(str(tmp_path / "whole" / "model.safetensors")), load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    assert (tmp_path / "whole" / "lm.gguf").read_bytes() == (tmp_path / "resumed" / "lm.gguf").read_bytes()
    assert whole["final"] == resumed["final"]


def test_bad_output_folders_and_settings_are_one_line_errors(tmp_path):
    config = preset_config("tiny")
    (tmp_path / "file").write_text("x")
    with pytest.raises(WidthdepthError, match="is a file"):
        train_lm(config, tmp_path / "file")
    train_lm(config, tmp_path / "done")
    with pytest.raises(WidthdepthError, match="already holds a model"):
        train_lm(config, tmp_path / "done")
    (tmp_path / "other" / ".train").mkdir(parents=True)
    (tmp_path / "other" / ".train" / "config.json").write_text('{"steps": 99}')
    with pytest.raises(WidthdepthError, match="other settings"):
        train_lm(config, tmp_path / "other")
    with pytest.raises(WidthdepthError, match="--preset 'huge': unknown"):
        preset_config("huge")


def test_the_command_trains_and_the_backends_run_the_result(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "lm"
    run = subprocess.run([sys.executable, "-m", "widthdepth.cli", "lab", "train-lm", "--preset", "tiny", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "saved" in run.stdout and (out / "lm.gguf").is_file()
    bad = subprocess.run([sys.executable, "-m", "widthdepth.cli", "lab", "train-lm", "--preset", "tiny", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "already holds a model" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
