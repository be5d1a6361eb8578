"""`early:N` (adaptive self-consistency): the Beta stopping rule, the draws it shares with parallel:N, what
it charges, what it stores, and its resume."""

from __future__ import annotations

import math

import pytest

from widthdepth.analysis.aggregators import majority
from widthdepth.backends.mock import MockBackend
from widthdepth.errors import WidthdepthError
from widthdepth.plans import load_plan
from widthdepth.plans.early import EarlyPlan, beta_above_half, settled
from widthdepth.runner import prepare, run
from widthdepth.store import Store
from tests.scripts import crashing_after, gold_or_scatter


def _beta_sf_half(a: int, b: int, steps: int = 200_000) -> float:
    """P(X > 1/2), X ~ Beta(a, b), by the midpoint rule on the density: an independent check."""
    norm = math.gamma(a) * math.gamma(b) / math.gamma(a + b)
    h = 0.5 / steps
    return sum(((0.5 + (i + 0.5) * h) ** (a - 1)) * ((0.5 - (i + 0.5) * h) ** (b - 1)) for i in range(steps)) * h / norm


@pytest.mark.parametrize("a,b", [(1, 1), (2, 1), (5, 1), (4, 2), (7, 3), (3, 6)])
def test_beta_tail_matches_the_integral_of_its_density(a, b):
    assert beta_above_half(a, b) == pytest.approx(_beta_sf_half(a, b), abs=1e-6)


def test_settled_needs_four_agreeing_votes_at_095_and_ignores_abstentions():
    assert not settled(["7"] * 3, 0.95)
    assert settled(["7"] * 4, 0.95)
    assert settled(["7", None, "7", None, "7", "7"], 0.95)
    assert not settled(["7", "7", "7", "7", "3", "3"], 0.95)
    assert not settled([None] * 16, 0.95)
    assert settled(["7"] * 3, 0.9)  # P = 15/16


def test_parsing_and_bad_input():
    assert load_plan("early:16") == EarlyPlan(16, 4, 0.95, 1)
    assert load_plan("early:3").batch == 3
    assert load_plan("early:16,batch=2,conf=0.9,depth=8").spec == "early:16,batch=2,conf=0.9,depth=8"
    for bad, says in [("early:0", "N >= 1"), ("early:16,conf=1", "between 0.5 and 1"), ("early:16,batch=0", "batch=0"),
                      ("early:16,conf=x", "not a number"), ("early:16,size=2", "unknown parameter 'size'")]:
        with pytest.raises(WidthdepthError, match=says):
            load_plan(bad)


def test_early_stops_settled_problems_shares_parallel_draws_and_charges_every_drawn_attempt(make_config):
    config = make_config(tasks=["chain:L=1"], plans=["parallel:16", "early:16"], problems=12)
    result = run(config, backend=MockBackend(script=gold_or_scatter))
    grid, method = result.plan_runs[0], result.methods[0]
    assert result.generated == 12 * 16  # early drew nothing parallel:16 had not
    assert len(method.outcomes) == 12
    store = Store.open(config.out)
    points = {p["problem_key"]: p for p in store.method_points()}
    assert len(points) == 12
    for problem, outcome in zip(grid.problems, method.outcomes):
        chains = grid.chains[problem.key]
        drawn = outcome.detail["chains"]
        assert drawn % 4 == 0 and 4 <= drawn <= 16
        answers = [c[0].final_answer for c in chains]
        # it stopped at the first batch boundary where the rule says settled, or at N
        stops = [k for k in (4, 8, 12) if settled(answers[:k], 0.95)]
        assert drawn == (stops[0] if stops else 16)
        assert outcome.answer == majority(answers[:drawn])
        assert outcome.cost.generated_tokens == sum(c[0].completion_tokens for c in chains[:drawn])
        assert outcome.cost.serial_tokens == sum(max(c[0].completion_tokens for c in chains[lo:lo + 4])
                                                 for lo in range(0, drawn, 4))
        assert points[problem.key]["cost"]["generated_tokens"] == outcome.cost.generated_tokens
        assert points[problem.key]["correct"] == outcome.correct
    settled_early = [o for o in method.outcomes if o.detail["chains"] == 4]
    assert 0 < len(settled_early) < 12 and all(o.correct for o in settled_early)
    store.close()


def test_a_crash_mid_run_then_rerun_gives_the_uninterrupted_store(make_config, tmp_path):
    def config(name):  # noqa: ANN001, ANN202
        return make_config(tasks=["chain:L=1"], plans=["early:16"], problems=8, out=str(tmp_path / name))

    run(config("whole"), backend=MockBackend(script=gold_or_scatter))
    with pytest.raises(KeyboardInterrupt):
        run(config("killed"), backend=MockBackend(script=crashing_after(gold_or_scatter, 40)))
    partial = Store.open(tmp_path / "killed")
    assert 0 < partial.counts()["attempts"] and len(partial.method_points()) < 8  # it crashed mid-run
    partial.close()
    run(config("killed"), backend=MockBackend(script=gold_or_scatter))
    whole, killed = Store.open(tmp_path / "whole"), Store.open(tmp_path / "killed")
    assert killed.snapshot() == whole.snapshot() and len(whole.method_points()) == 8
    whole.close(), killed.close()


def test_depth_is_for_latent_reasoners_only_and_fails_before_the_store(make_config, tmp_path):
    config = make_config(tasks=["chain:L=1"], plans=["early:8,depth=2"])
    with pytest.raises(WidthdepthError, match="drop depth="):
        run(prepare(config), backend=MockBackend())
    assert not (tmp_path / "out").exists()


def test_the_report_sets_each_method_against_the_grid_at_matched_compute_and_latency(make_config):
    import json

    from widthdepth.report import write_report

    config = make_config(tasks=["chain:L=1"], plans=["parallel:16", "early:16"], problems=40)
    result = run(config, backend=MockBackend(script=gold_or_scatter))
    paths = write_report(config.out)
    verdict = json.loads(paths["verdict"].read_text())
    outcomes = result.methods[0].outcomes
    for unit in ("generated_tokens", "serial_tokens"):
        (c,) = verdict["methods"][unit]
        assert c["plan"] == "early:16,batch=4,conf=0.95" and c["problems"] == 40
        assert c["accuracy"] == pytest.approx(sum(o.correct for o in outcomes) / 40)
        assert c["cost"] == pytest.approx(sum(getattr(o.cost, unit) for o in outcomes) / 40)
        assert c["ci_low"] <= c["accuracy"] <= c["ci_high"]
        assert c["low"] <= c["held_out_difference"] <= c["high"] and c["tested"] == 40
        assert c["significant"] == (c["low"] > 0 or c["high"] < 0)
    # in tokens, early costs less than parallel:16 at the same accuracy: the grid's best within its cost is smaller
    (c,) = verdict["methods"]["generated_tokens"]
    assert int(c["grid_cell"].split("×")[0]) < 16
    page = paths["report"].read_text()
    assert "Methods against the grid" in page and "early:16,batch=4,conf=0.95 " in page
    # the same from Python: the method points as a table, and the comparison the report makes
    import widthdepth

    results = widthdepth.load(config.out)
    assert len(results.methods) == 40 and results.methods.correct.mean() == pytest.approx(c["accuracy"])
    (again,) = results.against_grid("generated_tokens")
    reported = verdict["methods"]["generated_tokens"][0]
    assert (again.accuracy, again.cost, again.held_out_difference, again.low, again.high) == pytest.approx(
        (reported["accuracy"], reported["cost"], reported["held_out_difference"], reported["low"], reported["high"]))


def test_a_report_of_methods_alone_says_it_needs_a_grid(make_config):
    from widthdepth.report import write_report

    config = make_config(tasks=["chain:L=1"], plans=["early:8"], problems=2)
    run(config, backend=MockBackend(script=gold_or_scatter))
    with pytest.raises(WidthdepthError, match=r"methods only \(early:8,batch=4,conf=0.95\).*--plan parallel:16"):
        write_report(config.out)
