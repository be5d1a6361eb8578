"""Search over partial solutions (beam, dvts, particles) with a scripted model that writes one step a
request, right or wrong by seed, scored by the exact step checker: the tree in the store, what a
search charges, what each method keeps, its resume, and its bad input."""

from __future__ import annotations

import re
from dataclasses import replace
import subprocess
import sys

import numpy as np
import pytest

from widthdepth.backends.mock import MockBackend
from widthdepth.errors import WidthdepthError
from widthdepth.execute.particles import resampling_weights
from widthdepth.plans import load_plan
from widthdepth.runner import prepare, run
from widthdepth.store import Store
from tests.scripts import chain_gold, crashing_after


def step_values(question: str) -> list[int]:
    start = int(re.search(r"Start with the number (\d+)", question)[1])
    modulus = int(re.search(r"divided by (\d+)", question)[1])
    x, values = start, [start]
    for op, c in re.findall(r"Step \d+: (add|multiply by|subtract) (\d+)", question):
        x = {"add": x + int(c), "multiply by": x * int(c), "subtract": x - int(c)}[op] % modulus
        values.append(x)
    return values


def one_step(request, seed: int) -> str:  # noqa: ANN001
    """The next line of a chain solution: a third of steps (by seed) go wrong, and a wrong value carries on.
    Asked in chat messages (a grid's attempt), the whole solution, each step wrong by its own seed."""
    if request.prompt is None:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Answer:"):
            chat = "<assistant>" + "".join(f"{line}\n" for line in lines)
            lines.append(one_step(replace(request, prompt=request.messages[0][1] + chat), seed + len(lines)))
        return "\n".join(lines)
    question, _, written = request.prompt.partition("<assistant>")
    values = step_values(question)
    assert chain_gold(question) == values[-1]
    lines = [line for line in written.split("\n") if line]
    k = len(lines)
    if k == 0:
        return f"Start: {values[0]}"
    last = int(lines[-1].rsplit(" ", 1)[-1])
    if k <= len(values) - 1:
        right = values[k] if last == values[k - 1] else (last + 1) % 10
        return f"Step {k}: {'x' * (seed % 3)} -> {right if seed % 3 else (right + 3) % 10}"
    return f"Answer: {last}"


def test_plans_parse_and_say_what_is_wrong():
    plan = load_plan("beam:4,2,steps=8,step=blank,tokens=32")
    assert (plan.kind, plan.width, plan.expand, plan.steps, plan.delimiter, plan.step_tokens) == ("beam", 4, 2, 8, "\n\n", 32)
    assert load_plan(plan.spec) == plan
    assert load_plan("particles:8").slots == 8 and load_plan("dvts:8,2").slots == 4
    for bad, says in [("beam:0,2", "from 1 to 1024"), ("beam:4", "expected beam:N,M"), ("dvts:6,4", "multiple of M=4"),
                      ("particles:8,2", "expected particles:N"), ("beam:4,2,step=", "must not be empty"),
                      ("beam:4,2,depth=3", "unknown parameter 'depth'")]:
        with pytest.raises(WidthdepthError, match=says):
            load_plan(bad)


def test_resampling_weights_are_the_odds_of_the_scores():
    weights = resampling_weights([0.5, 0.75, 0.9, 0.0])
    odds = np.array([1.0, 3.0, 9.0, 1e-7 / (1 - 1e-7)])
    assert weights == pytest.approx(odds / odds.sum())


@pytest.mark.parametrize("plan", ["beam:4,2", "dvts:8,2", "particles:8"])
def test_a_search_stores_its_tree_charges_every_continuation_and_finds_what_one_chain_misses(make_config, plan):
    config = make_config(tasks=["chain:L=4"], plans=["parallel:8", plan], problems=16, verifier="steps", max_tokens=200)
    result = run(config, backend=MockBackend(script=one_step))
    (method,) = result.methods
    store = Store.open(config.out)
    search = load_plan(plan)
    per_step = search.width * search.expand if search.kind == "beam" else search.width
    for outcome in method.outcomes:
        tree = [a for a in store.attempts(problem_key=outcome.problem_key) if a.mode == search.kind]
        by_key = {a.key: a for a in tree}
        # every continuation after the first step continues a node of the step before, of the same problem
        assert all(a.parent_key is None if a.d == 1 else by_key[a.parent_key].d == a.d - 1 for a in tree)
        # the answer is the chosen node's path read back from the store
        path, key = [], outcome.detail["chosen"]
        while key:
            path.append(by_key[key].text)
            key = by_key[key].parent_key
        assert path[0].startswith("Answer: ") and outcome.answer == path[0].split("Answer: ")[1]
        assert path[-1].startswith("Start: ") and len(path) == 6 <= outcome.detail["steps"]
        # it charges every continuation, and waits for the longest of each step
        assert outcome.attempts == len(tree) and len(tree) <= per_step * outcome.detail["steps"]
        assert outcome.cost.generated_tokens == sum(a.completion_tokens for a in tree)
        assert outcome.cost.serial_tokens == sum(max(a.completion_tokens for a in tree if a.d == d)
                                                 for d in range(1, outcome.detail["steps"] + 1))
    store.close()
    one_chain = sum(c[0][0].correct for c in result.plan_runs[0].chains.values()) / 16
    assert one_chain < 0.5 and method.accuracy >= 0.9, (one_chain, method.accuracy)


def test_beam_keeps_the_n_best_and_dvts_keeps_its_subtrees_apart(make_config):
    config = make_config(tasks=["chain:L=4"], plans=["beam:2,3", "dvts:6,3"], problems=4, verifier="steps", max_tokens=200)
    run(config, backend=MockBackend(script=one_step))
    store = Store.open(config.out)
    beam = [a for a in store.attempts() if a.mode == "beam"]
    for problem_key in {a.problem_key for a in beam}:
        for d in range(2, 5):
            parents = {a.parent_key for a in beam if a.problem_key == problem_key and a.d == d}
            assert 1 <= len(parents) <= 2  # at most N = 2 nodes continue, 3 times each
    store.close()


def test_a_crash_mid_search_then_rerun_gives_the_uninterrupted_store(make_config, tmp_path):
    def config(name):  # noqa: ANN001, ANN202
        return make_config(tasks=["chain:L=4"], plans=["beam:4,2", "particles:4"], problems=6, verifier="steps",
                           max_tokens=200, out=str(tmp_path / name))

    run(config("whole"), backend=MockBackend(script=one_step))
    with pytest.raises(KeyboardInterrupt):
        run(config("killed"), backend=MockBackend(script=crashing_after(one_step, 100)))
    partial = Store.open(tmp_path / "killed")
    assert 0 < partial.counts()["attempts"] and not partial.method_points()  # it crashed mid-search
    partial.close()
    run(config("killed"), backend=MockBackend(script=one_step))
    whole, killed = Store.open(tmp_path / "whole"), Store.open(tmp_path / "killed")
    assert killed.snapshot() == whole.snapshot() and len(whole.method_points()) == 12
    whole.close(), killed.close()


def test_search_without_a_partial_verifier_fails_before_the_store(make_config, tmp_path):
    for verifier, says in [("none", "pass --verifier steps"),
                           ("reward:http://127.0.0.1:9/score", "scores only finished ones")]:
        config = make_config(tasks=["chain:L=2"], plans=["beam:2,2"], verifier=verifier)
        with pytest.raises(WidthdepthError, match=says):
            run(prepare(config), backend=MockBackend(prompt_style="fewshot"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args,says", [
    (["--plan", "beam:0,2", "--verifier", "steps"], "--plan 'beam:0,2': N and M must be whole numbers from 1 to 1024"),
    (["--plan", "beam:2,2,step=blank", "--verifier", "steps"], "never occurs in chain:L=2,m=10's worked solutions"),
    (["--plan", "particles:4", "--verifier", "none"], "pass --verifier steps"),
])
def test_bad_search_input_is_one_line_exit_2_and_no_store(tmp_path, args, says):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "widthdepth.cli", "run", "--model", "mock:", "--tasks", "chain:L=2",
                           "--problems", "2", "--out", str(out), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and says in " ".join(done.stderr.split()), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_self_verification_scores_partial_solutions_for_search(make_config):
    """`self` asks the model whether the steps so far are right (the mock answers Yes with P = 0.9)."""
    config = make_config(tasks=["chain:L=2"], plans=["beam:2,2"], problems=2, verifier="self", max_tokens=200)
    result = run(config, backend=MockBackend(script=one_step))
    store = Store.open(config.out)
    beam = [a for a in store.attempts() if a.mode == "beam"]
    scored = [store.get_verification(a.key, "self:mock:") for a in beam]
    partial = [v for a, v in zip(beam, scored) if a.answer is None]
    assert partial and all("Is every step so far correct?" in v.prompt and v.score == pytest.approx(
        np.exp(-0.1) / (np.exp(-0.1) + np.exp(-2.4))) for v in partial)
    assert all(o.cost.verifier_tokens > 0 for o in result.methods[0].outcomes)  # the model's scoring is charged
    store.close()


def test_a_rerun_fills_gaps_inside_one_node_s_continuations(make_config):
    """The batched decoder stores a request's samples as they finish, so a crash can leave continuations
    0 and 2 of a node missing and 1 stored: the rerun asks for each run of missing ones and ends with the
    uninterrupted store."""
    import sqlite3

    from widthdepth.store import DB_NAME

    config = make_config(tasks=["chain:L=4"], plans=["beam:2,3"], problems=3, verifier="steps", max_tokens=200)
    run(config, backend=MockBackend(script=one_step))
    store = Store.open(config.out)
    whole = store.snapshot()
    node = next(a for a in store.attempts() if a.d == 2 and a.w == 1)
    store.close()
    db = sqlite3.connect(f"{config.out}/{DB_NAME}")
    count = "SELECT COUNT(*) FROM attempts"
    before = db.execute(count).fetchone()[0]
    db.execute("DELETE FROM attempts WHERE problem_key = ? AND d = 2 AND w IN (0, 2)", (node.problem_key,))
    assert db.execute(count).fetchone()[0] == before - 2  # a view: its DELETE's rowcount says 0
    db.commit()
    db.close()
    again = run(config, backend=MockBackend(script=one_step))
    assert again.generated == 2
    store = Store.open(config.out)
    assert store.snapshot() == whole
    store.close()
