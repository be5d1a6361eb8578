"""Search inside the built-in latent reasoner (beam, dvts, particles between iterations), on the shipped
checkpoint: the tree in the store, the choices it made read back against its own stored scores, exact
FLOPs equal to the grid of the same rows x iterations, and an exact resume."""

from __future__ import annotations

import sqlite3

import numpy as np

import pytest

from widthdepth.config import RunConfig
from widthdepth.execute.particles import resampling_weights
from widthdepth.runner import run
from widthdepth.specs import stable_int
from widthdepth.store import DB_NAME, Store
from widthdepth.tasks import load_task


def config(out, tasks=("chain:L=4", "search:kind=subset,n=8"), verifier="auto") -> RunConfig:  # noqa: ANN001
    return RunConfig(model="builtin:reasoner", tasks=list(tasks), problems=12, verifier=verifier, out=str(out),
                     plans=["grid:8x6", "beam:2,4,steps=6", "dvts:8,4,steps=6", "particles:8,steps=6"])


def trees(store: Store) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for a in store.attempts():
        if a.mode in ("beam", "dvts", "particles"):
            out.setdefault((a.mode, a.problem_key), []).append(a)
    return out


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("latent_search")
    return out, run(config(out))


def test_each_search_keeps_what_its_rule_says_by_the_scores_it_stored(searched):
    out, result = searched
    store = Store.open(out)
    for (mode, problem_key), tree in trees(store).items():
        by_key = {a.key: a for a in tree}
        # search chooses by the task's exact checker (--verifier auto), chains by the verifier head
        name = "exact" if problem_key.startswith("search") else f"latent:{result.model}"
        for d in range(2, 7):
            rows = sorted((a for a in tree if a.d == d), key=lambda a: a.w)
            before = {a.w: a for a in tree if a.d == d - 1}
            scores = {w: store.get_verification(a.key, name).score for w, a in before.items()}
            parents = [by_key[a.parent_key].w for a in rows]
            assert all(by_key[a.parent_key].d == d - 1 for a in rows)
            if mode == "beam":  # the 2 best rows, each continued 4 times
                best = sorted(sorted(scores), key=lambda w: -scores[w])[:2]
                assert parents == [w for w in sorted(best) for _ in range(4)]
            elif mode == "dvts":  # each subtree of 4 continues its own best row
                for g in range(2):
                    group = range(4 * g, 4 * g + 4)
                    assert parents[4 * g:4 * g + 4] == [max(group, key=lambda w: (scores[w], -w))] * 4
            else:  # resampled: only rows with weight can be drawn
                weights = resampling_weights([scores[w] for w in range(8)])
                assert all(weights[w] > 0 for w in parents) and parents == sorted(parents)
                # the draw itself: 8 rows with those weights, from the generator of this problem and step
                rng = np.random.default_rng(stable_int(0, problem_key, "particles", d - 1))
                assert parents == sorted(rng.choice(8, size=8, p=weights).tolist())
    store.close()


def test_a_search_costs_the_grid_of_its_rows_and_iterations_and_its_answer_is_its_best_row(searched):
    out, result = searched
    grids = {r.family.spec: r for r in result.plan_runs}
    for method in result.methods:
        grid = grids[method.family.spec]
        for outcome in method.outcomes:
            chains = grid.chains[outcome.problem_key]
            grid_flops = sum(a.flops for c in chains for a in c)  # 8 trajectories x 6 iterations
            assert outcome.cost.flops == pytest.approx(grid_flops) and outcome.cost.serial_tokens == 6
            assert outcome.attempts == 48 and outcome.detail["steps"] == 6
    store = Store.open(out)
    family = load_task("search:kind=subset,n=8")
    problems = {p.key: p for p in family.problems(12, 0)}
    for method in (m for m in result.methods if m.family.spec.startswith("search")):
        for outcome in method.outcomes:
            chosen = store.get_attempt(outcome.detail["chosen"])
            assert chosen.d == 6 and chosen.answer == outcome.answer
            # the exact checker chose: a right answer among the last rows is never passed over
            last = [a for a in store.attempts(problem_key=outcome.problem_key) if a.mode == method.plan.kind and a.d == 6]
            if any(family.verify(problems[outcome.problem_key], a.answer) for a in last):
                assert outcome.correct
    store.close()


def test_a_rerun_after_losing_part_of_the_store_gives_the_same_store(searched, tmp_path):
    out, _ = searched
    whole = Store.open(out)
    expected = whole.snapshot()
    whole.close()
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    db = sqlite3.connect(copy / DB_NAME)
    db.execute("DELETE FROM method_points WHERE plan LIKE 'particles%' OR plan LIKE 'beam%'")
    db.execute("DELETE FROM attempts WHERE mode = 'particles' AND d > 3")
    db.commit()
    db.close()
    again = run(config(copy))
    assert again.generated > 0
    store = Store.open(copy)
    assert store.snapshot() == expected
    store.close()
