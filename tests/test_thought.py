"""The latent-thought model (issue 21) on tiny settings: exact FLOPs against torch's counter (inference and
training), a restart that depends on its seed only, a tiny model that learns rules and gains from inference
steps, and `builtin:thought` through the real runner, store and surface."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from widthdepth.analysis.surface import estimate_surface
from widthdepth.analysis.traces import load_grid_traces
from widthdepth.cli import main
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.lab.thought import LatentThought, ThoughtConfig, sample_grid
from widthdepth.lab.thought_train import ThoughtTrainConfig, load_thought, train_thought
from widthdepth.lab.train import save_checkpoint
from widthdepth.runner import run
from widthdepth.store import Store
from widthdepth.tasks import load_task

TINY = ThoughtTrainConfig(steps=600, batch_size=64, hidden=64, latent=8, max_steps=4, learning_rate=3e-3,
                          max_length=1, min_shots=3, max_shots=3, threads=1)


@pytest.fixture(scope="module")
def trained():
    return train_thought(TINY)


@pytest.fixture(scope="module")
def checkpoint(trained, tmp_path_factory):
    model, summary = trained
    return save_checkpoint(model, tmp_path_factory.mktemp("thought") / "tiny.safetensors", TINY, summary)


def structures(spec: str, count: int) -> list[dict]:
    return [p.structure for p in load_task(spec).problems(count, seed=0)]


def test_inference_flops_are_torchs_count():
    torch.manual_seed(0)
    model = LatentThought(ThoughtConfig(latent=8, hidden=32, blocks=2))
    problems = structures("rule:L=2,k=3", 3) + structures("rule:L=1,k=1", 2)  # two batches (k = 3 and k = 1)
    seeds = [[10 * i + w for w in range(2)] for i in range(5)]
    for rounds in (1, 3):
        with FlopCounterMode(display=False) as counter:
            grid = sample_grid(model, problems, 2, rounds, seeds)
        assert sum(a.flops for problem in grid for restart in problem for a in restart) == counter.get_total_flops()
        assert all(len(restart) == rounds for problem in grid for restart in problem)
    assert grid[0][0][0].flops == model.first_flops(3) + model.step_flops(3) > grid[0][0][1].flops


def test_training_flops_are_torchs_count_and_the_recipe_is_deterministic():
    config = ThoughtTrainConfig(steps=6, batch_size=8, hidden=16, latent=4, max_steps=3, threads=1)
    with FlopCounterMode(display=False) as counter:
        model, summary = train_thought(config)
    assert summary["training_flops"] == counter.get_total_flops() > 0  # every step, not only the counted shapes
    again, _ = train_thought(config)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))


def test_a_restart_depends_on_its_seed_only():
    torch.manual_seed(1)
    model = LatentThought(ThoughtConfig(latent=8, hidden=32))
    problems = structures("rule:L=2,k=3", 4)
    wide = sample_grid(model, problems, 3, 5, [[7, 8, 9]] * 4)
    alone = sample_grid(model, problems[2:3], 1, 2, [[8]])
    assert [a.answer for a in alone[0][0]] == [a.answer for a in wide[2][1][:2]]
    assert [a.score for a in alone[0][0]] == pytest.approx([a.score for a in wide[2][1][:2]], rel=1e-5)


def test_a_tiny_model_learns_rules_and_gains_from_inference_steps(trained):
    model, summary = trained
    problems = load_task("rule:L=1,k=3").problems(200, seed=5)
    grid = sample_grid(model, [p.structure for p in problems], 1, 8, [[i] for i in range(200)])
    accuracy = [sum(g[0][d - 1].answer == p.gold[0] for g, p in zip(grid, problems)) / 200 for d in (1, 8)]
    assert accuracy[1] >= 0.7 and accuracy[1] > accuracy[0]  # chance is 0.1
    assert summary["final"]["loss"] < 0.5 and summary["training_flops"] > 0


def test_builtin_thought_runs_grids_through_the_runner(tmp_path, checkpoint):
    out = tmp_path / "run"
    result = run(RunConfig(model=f"builtin:thought,checkpoint={checkpoint}", tasks=["rule:L=1,k=3"],
                           plans=["grid:4x3"], problems=6, out=str(out), verifier="latent"))
    assert result.generated == 6 * 12
    (ts,) = estimate_surface(load_grid_traces(Store.open(out))).traces
    first, second = ts.trace.problems[0].chains[0][:2]
    model, _ = load_thought(checkpoint)
    assert (first.flops, second.flops) == (model.first_flops(3) + model.step_flops(3), model.step_flops(3))
    assert float(ts.cost[(4, 2)]["flops"].mean()) == pytest.approx(4 * (first.flops + second.flops))
    (plan_run,) = result.plan_runs
    assert plan_run.verifier == f"latent:{result.model}" and len(plan_run.verifications) == 6 * 12
    again = run(RunConfig(model=f"builtin:thought,checkpoint={checkpoint}", tasks=["rule:L=1,k=3"],
                          plans=["grid:4x3"], problems=6, out=str(out), verifier="latent"))
    assert again.generated == 0  # resumed whole from the store


def test_what_the_thought_model_cannot_answer_is_refused(tmp_path, checkpoint, capsys):
    for task, fragment in (("chain:L=2", "answers rule problems"), ("rule:L=1,k=3,m=7", "use rule:m=10"),
                           ("rule:L=1,k=3,ops=add+sub", r"uses sub \(use rule:ops=add\+mul\)")):
        with pytest.raises(WidthdepthError, match=fragment):
            run(RunConfig(model=f"builtin:thought,checkpoint={checkpoint}", tasks=[task], out=str(tmp_path / "x")))
    assert not (tmp_path / "x").exists()
    with pytest.raises(WidthdepthError, match="beam, dvts and particles"):
        run(RunConfig(model=f"builtin:thought,checkpoint={checkpoint}", tasks=["rule:L=1,k=3"],
                      plans=["grid:2x2", "particles:4,steps=2"], problems=2, out=str(tmp_path / "y")))
    assert not (tmp_path / "y").exists()  # refused before the store, not after the grid ran
    assert main(["lab", "train-thought", "--steps", "0", "--out", str(tmp_path / "t.safetensors")]) == 2
    assert "--steps, --hidden" in capsys.readouterr().err
    with pytest.raises(WidthdepthError, match="train-thought --out"):
        load_thought(tmp_path / "missing.safetensors")


def test_train_thought_command_saves_a_model_the_runner_reads(tmp_path, capsys):
    path = tmp_path / "cli.safetensors"
    assert main(["lab", "train-thought", "--steps", "3", "--hidden", "16", "--latent", "4", "--out", str(path)]) == 0
    assert f"builtin:thought,checkpoint={path}" in capsys.readouterr().out
    model, metadata = load_thought(path)
    assert model.config.hidden == 16 and "--steps 3 --hidden 16" in metadata["command"]
