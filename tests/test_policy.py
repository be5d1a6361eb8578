"""Adaptive allocation: fitting, held-out judging, the CLI, and `adaptive:` plans run for real on the
shipped built-in reasoner (small grids: these are about correctness, the benchmark is about size)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from widthdepth.allocation import (ProblemRecord, allocate, evaluate, fit_policy, load_policy, problem_records,
                                        select, split)
from widthdepth.cli import main
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.runner import run
from widthdepth.store import Store

TASKS = ["chain:L=1", "chain:L=4", "search:kind=subset,n=6"]


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """A real grid run of the shipped reasoner: 3 tasks x 40 problems x 8 trajectories x 4 iterations."""
    out = tmp_path_factory.mktemp("grid") / "run"
    run(RunConfig(model="builtin:reasoner", tasks=TASKS, plans=["grid:8x4"], problems=40, seed=3, out=str(out)))
    return out


def test_fit_then_judge_on_held_out_problems_only(grid_run, tmp_path, capsys):
    policy_path = tmp_path / "policy.json"
    assert main(["allocate", "fit", str(grid_run), "--out", str(policy_path), "--bins", "2"]) == 0
    policy = load_policy(policy_path)
    assert policy.predictor == "confidence" and policy.probe == 1 and policy.unit == "flops"  # auto, latent
    assert policy.grid == "grid:8x4" and len(policy.edges) == 1 and policy.levels
    assert all(len(level.plans) == 2 for level in policy.levels)
    budgets = [level.budget for level in policy.levels]
    assert budgets == sorted(budgets)
    assert [level.train_accuracy for level in policy.levels] == sorted(level.train_accuracy for level in policy.levels)

    assert main(["allocate", "eval", str(grid_run), "--policy", str(policy_path)]) == 0
    evaluation = json.loads((grid_run / "allocation.json").read_text())
    selection = select(grid_run)
    records = problem_records(selection.traces, 1, "flops", "confidence")
    train, test = split(records, 0.5, 0)
    assert evaluation["problems"] == len(test) == len(records) - len(policy.fitted_on)
    assert len(train) == len(policy.fitted_on)
    # what the table says is the policy applied to exactly the held-out problems
    for point, level in zip(evaluation["adaptive"], policy.levels):
        chosen = [r.adaptive[level.plans[policy.bin_of(r.predictors["confidence"])]] for r in test]
        assert point["accuracy"] == pytest.approx(np.mean([a for a, _ in chosen]))
        assert point["cost"] == pytest.approx(np.mean([c for _, c in chosen]))
    assert set(evaluation["baselines"]) >= {"width_majority", "depth", "hybrid", "best_fixed"}
    assert "Adaptive allocation" in (grid_run / "report.html").read_text()
    out = capsys.readouterr().out
    assert "width needs" in out and "held out" in out


def test_a_policy_is_never_judged_on_its_own_training_problems(grid_run, tmp_path, capsys):
    policy_path = tmp_path / "all.json"
    assert main(["allocate", "fit", str(grid_run), "--out", str(policy_path), "--holdout", "0"]) == 0
    capsys.readouterr()
    assert main(["allocate", "eval", str(grid_run), "--policy", str(policy_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: every problem here was used to fit the policy") and "\n" not in err


def noise_records(count: int, seed: int) -> list[ProblemRecord]:
    """Problems where no plan is better than another and the predictor is pure noise: every cell is
    right with probability 1/2 per problem, independently. An adaptive gain here is overfitting."""
    rng = np.random.default_rng(seed)
    cells = [(w, 1, "majority") for w in (1, 2, 4, 8, 16, 32)]
    records = []
    for i in range(count):
        table = {cell: (float(rng.random() < 0.5), float(cell[0])) for cell in cells}
        records.append(ProblemRecord(f"p{seed}-{i}", "noise", {"agreement": float(rng.random())}, 0.5, table, table))
    return records


def test_held_out_judging_does_not_reward_overfitting():
    """Fitted and judged on the same problems, a noise predictor looks like a gain; judged on
    held-out problems (as `evaluate` does) it does not. An evaluation that scored the training
    problems would report the in-sample accuracy and fail the last assert."""
    train, test = noise_records(400, seed=1), noise_records(400, seed=2)
    policy = fit_policy(train, "agreement", 1, bins=8, unit="flops", budgets=[32.0])
    in_sample = policy.levels[-1].train_accuracy
    assert in_sample > 0.56  # eight bins each pick the luckiest of six coin-flip plans
    held_out = evaluate(policy, train + test)
    assert held_out.problems == 400
    assert held_out.adaptive[-1].accuracy < 0.54


def test_allocation_spends_where_accuracy_grows_fastest():
    easy = {(1, 1, "majority"): (0.9, 1.0), (4, 1, "majority"): (0.92, 4.0)}
    hard = {(1, 1, "majority"): (0.1, 1.0), (1, 4, "majority"): (0.8, 4.0), (16, 1, "majority"): (0.85, 16.0)}
    levels = allocate([easy, hard], [0.5, 0.5], [1.0, 2.5, 4.0, 100.0])
    assert levels[0][1] == [(1, 1, "majority"), (1, 1, "majority")]
    assert levels[1][1] == [(1, 1, "majority"), (1, 4, "majority")]  # the hard bin gains 0.7 for 3, the easy 0.02
    assert levels[1][3] == pytest.approx(2.5)
    assert levels[3][1] == [(4, 1, "majority"), (16, 1, "majority")]
    for budget, _, _, cost in levels:
        assert cost <= budget + 1e-9


def test_cross_validation_and_its_bad_options(grid_run, capsys):
    assert main(["allocate", "eval", str(grid_run), "--folds", "4", "--predictor", "agreement"]) == 0
    evaluation = json.loads((grid_run / "allocation.json").read_text())
    assert evaluation["folds"] == 4 and evaluation["predictor"] == "agreement" and evaluation["probe"] == 4
    assert evaluation["problems"] == 3 * 40
    assert all(p["cost"] >= evaluation["adaptive"][0]["cost"] - 1e-6 for p in evaluation["adaptive"])
    capsys.readouterr()
    for argv, message in (
        (["--folds", "1"], "--folds 1"),
        (["--predictor", "vibes"], "--predictor 'vibes'"),
        (["--predictor", "agreement", "--probe", "1"], "--probe 1"),
        (["--probe", "9"], "--probe 9"),
        (["--unit", "joules"], "--unit 'joules'"),
        (["--task", "chain:L=9"], "--task 'chain:L=9'"),
    ):
        assert main(["allocate", "eval", str(grid_run), *argv]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, err


def test_adaptive_plan_reuses_the_grid_and_spends_what_the_estimate_says(grid_run, tmp_path, capsys):
    policy_path = tmp_path / "policy.json"
    assert main(["allocate", "fit", str(grid_run), "--out", str(policy_path)]) == 0
    policy = load_policy(policy_path)
    level = policy.levels[len(policy.levels) // 2]
    before = Store.open(grid_run).db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    result = run(RunConfig(model="builtin:reasoner", tasks=TASKS, plans=[f"adaptive:{policy_path}@{level.budget}"],
                           problems=40, seed=3, out=str(grid_run)))
    assert result.generated == 0  # the probe and every plan are sub-grids of the stored grid:8x4
    store = Store.open(grid_run)
    assert store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0] == before
    rows = store.allocations()
    assert len(rows) == 3 * 40
    records = {r.key: r for r in problem_records(select(grid_run, plan="grid:8x4").traces, 1, "flops", "confidence")}
    for row in rows:
        record = records[row["problem_key"]]
        assert row["bin"] == policy.bin_of(record.predictors["confidence"])
        cell = (row["w"], row["d"], row["aggregator"])
        assert cell == tuple(level.plans[row["bin"]])
        accuracy, cost = record.adaptive[cell]
        assert row["cost"] == pytest.approx(cost)  # the same pricing as the estimate
        if row["w"] in (1, 8) and accuracy in (0.0, 1.0):  # every chain fixed and no tie: the estimate is exact
            assert row["correct"] == accuracy
    # the same command again decides the same, and the report of the folder still renders
    again = run(RunConfig(model="builtin:reasoner", tasks=TASKS, plans=[f"adaptive:{policy_path}@{level.budget}"],
                          problems=40, seed=3, out=str(grid_run)))
    assert [d["cost"] for a in again.allocations for d in a.decisions] == \
        [d["cost"] for a in result.allocations for d in a.decisions]
    assert main(["report", str(grid_run)]) == 0


def test_adaptive_plan_in_a_fresh_folder_generates_only_what_it_uses(grid_run, tmp_path, capsys):
    policy_path = tmp_path / "policy.json"
    assert main(["allocate", "fit", str(grid_run), "--out", str(policy_path)]) == 0
    policy = load_policy(policy_path)
    budget = policy.levels[len(policy.levels) // 2].budget
    out = tmp_path / "fresh"
    assert main(["run", "--model", "builtin:reasoner", "--tasks", "chain:L=4", "--plan",
                 f"adaptive:{policy_path}@{budget}", "--problems", "12", "--seed", "11", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "adaptive plans" in printed
    store = Store.open(out)
    rows = store.allocations()
    assert len(rows) == 12
    stored = store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
    assert stored == sum(max(r["w"], policy.probe) + r["w"] * (r["d"] - 1) for r in rows)
    # the probe's attempts, made by this very run and read back by the plans, are not "reused"
    assert f"generated {stored} attempts, reused 0 from the store" in " ".join(printed.split())


def test_bad_adaptive_plans_stop_before_anything_is_stored(grid_run, tmp_path, capsys):
    policy_path = tmp_path / "policy.json"
    assert main(["allocate", "fit", str(grid_run), "--out", str(policy_path)]) == 0
    broken = tmp_path / "broken.json"
    broken.write_text('{"widthdepth_policy": 1, "levels": []}')
    capsys.readouterr()
    out = tmp_path / "never"
    for plan, message in (
        (f"adaptive:{tmp_path}/missing.json@1e7", "no such file"),
        (f"adaptive:{policy_path}", "expected adaptive:POLICY.json@BUDGET"),
        (f"adaptive:{policy_path}@lots", "is not a number"),
        (f"adaptive:{policy_path}@10", "below the policy's cheapest level"),
        (f"adaptive:{broken}@1e7", "missing or malformed"),
    ):
        assert main(["run", "--model", "builtin:reasoner", "--tasks", "chain:L=4", "--plan", plan,
                     "--problems", "2", "--out", str(out)]) == 2, plan
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, err
        assert not out.exists()
    policy = load_policy(policy_path)
    verified = next(level for level in policy.levels if any(a == "best_of" for _, _, a in level.plans))
    assert main(["run", "--model", "builtin:reasoner", "--tasks", "chain:L=4", "--plan",
                 f"adaptive:{policy_path}@{verified.budget}", "--verifier", "none", "--problems", "2",
                 "--out", str(out)]) == 2
    assert "the policy uses verifier scores" in capsys.readouterr().err
    assert not out.exists()


def test_fit_refuses_what_it_cannot_fit(tmp_path, capsys):
    assert main(["allocate", "fit", str(tmp_path / "nothing"), "--out", str(tmp_path / "p.json")]) == 2
    assert "no store" in capsys.readouterr().err
    with pytest.raises(WidthdepthError, match="--holdout 1.5"):
        split([], 1.5, 0)


def chain(serial, cost, verify=(0.0, 0.0), answer="1"):
    from widthdepth.allocation.records import _Chain

    return _Chain(answers=[answer, answer], correct=[True, True], scores=[0.5, 0.5], cost=list(cost),
                  verify_cost=list(verify), serial=list(serial), confidence=-1.0)


def test_an_adaptive_run_is_priced_as_it_runs():
    """The probe goes first: chains beyond it start when its slowest attempt is done, are a request
    of their own (a shared prompt evaluated again), and a verifier predictor pays for the probe's
    verifications."""
    from widthdepth.allocation import plan_cost

    probe = [chain((10, 25), (100, 250), verify=(7, 9)), chain((30, 40), (300, 400), verify=(5, 6))]
    new = chain((5, 12), (50, 120), verify=(3, 4))
    # latency: the slowest probe attempt (30), then the longest continuation (25 - 10, 40 - 30, 12)
    assert plan_cost(probe + [new], 0.0, 2, 3, 2, "majority", "serial_tokens") == 30 + 15
    assert plan_cost(probe, 0.0, 2, 1, 1, "majority", "serial_tokens") == 30  # stop after the probe
    # compute: every chain to round 2, the shared prompt twice (two requests)
    assert plan_cost(probe + [new], 1000.0, 2, 3, 2, "majority", "flops") == 2000 + 250 + 400 + 120
    assert plan_cost(probe, 1000.0, 2, 2, 2, "majority", "flops") == 1000 + 250 + 400
    # w = 1 after a probe of 2: chain 0 to round 2, chain 1 paid at round 1
    assert plan_cost(probe[:1] + probe[1:], 0.0, 2, 1, 2, "majority", "generated_tokens") == 250 + 300
    # best-of pays round d's verifications; a verifier predictor also the probe's (once at d = 1)
    assert plan_cost(probe, 0.0, 2, 2, 2, "best_of", "generated_tokens") == 250 + 400 + 9 + 6
    assert plan_cost(probe, 0.0, 2, 2, 2, "best_of", "generated_tokens", probe_verified=True) == \
        250 + 400 + 9 + 6 + 7 + 5
    assert plan_cost(probe, 0.0, 2, 2, 1, "best_of", "generated_tokens", probe_verified=True) == 100 + 300 + 7 + 5


def test_failed_attempts_leave_problems_out_and_the_run_decides_as_estimated(tmp_path, capsys):
    """Scripted failures (deterministic per prompt and seed): problems with a failed attempt in the
    grid are left out of fitting, and an adaptive run on the others bins and prices them exactly as
    the estimate does — the probe is chains 0..probe-1 on both sides."""
    out = tmp_path / "mock"
    base = dict(model="mock:fail=0.08", tasks=["chain:L=2"], problems=30, seed=1, out=str(out))
    run(RunConfig(plans=["grid:8x2"], **base))
    records = problem_records(select(out, predictor="agreement", probe=2).traces, 2, "generated_tokens", "agreement")
    assert records.left_out > 0 and len(records) + records.left_out == 30
    policy_path = tmp_path / "policy.json"
    assert main(["allocate", "fit", str(out), "--out", str(policy_path), "--predictor", "agreement", "--probe", "2",
                 "--bins", "2"]) == 0
    assert "problems left out" in capsys.readouterr().out
    policy = load_policy(policy_path)
    by_key = {r.key: r for r in records}
    for level in (policy.levels[0], policy.levels[-1]):
        plan = f"adaptive:{policy_path}@{level.budget}"
        result = run(RunConfig(plans=[plan], **base))
        decisions = result.allocations[0].decisions
        assert decisions and len(decisions) <= 30
        for decision in decisions:
            record = by_key.get(decision["problem_key"])
            if record is None:
                continue
            assert decision["predicted"] == record.predictors["agreement"]
            assert decision["bin"] == policy.bin_of(record.predictors["agreement"])
            if decision["w"] <= 2 or decision["w"] == 8:  # nothing drawn: the estimate is this very run
                cell = (decision["w"], decision["d"], decision["aggregator"])
                assert decision["cost"] == pytest.approx(record.adaptive[cell][1])


def test_folds_never_share_a_problem(grid_run, tmp_path):
    """The same problem twice (a rerun with another seed, or another verifier) stays in one fold."""
    from widthdepth.allocation import fold_assignment

    keys = [f"p{i}" for i in range(30)] * 2 + ["p0"]
    folds = fold_assignment(keys, 5, seed=0)
    by_key: dict[str, set[int]] = {}
    for key, fold in zip(keys, folds):
        by_key.setdefault(key, set()).add(fold)
    assert all(len(f) == 1 for f in by_key.values()) and set(folds) == set(range(5))
    # a rerun of the grid with another verifier judges the same problems: no second copy of any
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(grid_run, copy)
    run(RunConfig(model="builtin:reasoner", tasks=TASKS, plans=["grid:8x4"], problems=40, seed=3, out=str(copy),
                  verifier="none"))
    selection = select(copy)
    records = problem_records(selection.traces, selection.probe, selection.unit, selection.predictor)
    assert len(records) == len({r.key for r in records}) == 3 * 40


def test_width_and_adaptive_compare_like_with_like_at_the_lowest_level(grid_run):
    """At the lowest level adaptive runs the probe alone (1x1 with a probe of 1), which is the first
    chain; width-only 1x1 is that same chain in a run, so both have one accuracy and one cost there,
    and the ratio at equal accuracy is 1, not an artefact of averaging one side over all chains."""
    from widthdepth.allocation import cross_validate

    selection = select(grid_run)
    records = problem_records(selection.traces, 1, "flops", "confidence")
    for r in records:
        for aggregator in ("majority",):
            assert r.fixed[(1, 1, aggregator)] == pytest.approx(r.adaptive[(1, 1, aggregator)])
    evaluation = cross_validate(records, "confidence", 1, 2, "flops", 5)
    lowest = evaluation.adaptive[0]
    assert lowest.plans == [] or all((w, d) == (1, 1) for w, d, _ in lowest.plans)
    single = next(m for m in evaluation.width_matched if m["w"] == 1)
    assert single["accuracy"] == pytest.approx(lowest.accuracy) and single["ratio"] == pytest.approx(1.0)


def test_a_policy_on_a_folder_of_another_model_says_so(grid_run, tmp_path, capsys):
    policy_path = tmp_path / "policy.json"
    assert main(["allocate", "fit", str(grid_run), "--out", str(policy_path)]) == 0
    other = tmp_path / "other"
    assert main(["run", "--model", "mock:", "--tasks", "chain:L=1", "--plan", "grid:4x2", "--problems", "3",
                 "--out", str(other)]) == 0
    capsys.readouterr()
    assert main(["allocate", "eval", str(other), "--policy", str(policy_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {other}: no grid run of builtin:reasoner@") and "another model: it has mock:" in err
