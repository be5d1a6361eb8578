"""Surface, frontier, verdict and fits on scripted runs, checked against brute force and by design."""

import itertools
import math
import warnings

import numpy as np
import pytest

from scripts import width_then_depth
from widthdepth.analysis.fits import fit_coverage, fit_depth
from widthdepth.analysis.frontier import STRATEGIES, frontier, iso_cost_cells
from widthdepth.analysis.surface import TraceSurface, estimate_surface
from widthdepth.analysis.traces import GridTrace, load_grid_traces
from widthdepth.analysis.verdict import build_verdict
from widthdepth.backends.mock import MockBackend
from widthdepth.closing import closing_table
from widthdepth.cost import AttemptCost, cell_cost
from widthdepth.plans import GridPlan
from widthdepth.runner import run
from widthdepth.store import Store


@pytest.fixture
def grid_run(make_config):
    config = make_config(tasks=["chain:L=1", "search"], plans=["grid:4x3"], problems=5)
    result = run(config, backend=MockBackend(script=lambda r, seed: f"words {'x ' * (seed % 7)}Answer: {seed % 4}"))
    return config, result


def test_traces_read_back_from_the_store_equal_the_runners(grid_run):
    config, result = grid_run
    traces = load_grid_traces(Store.open(config.out))
    assert [t.task for t in traces] == [p.family.spec for p in result.plan_runs]
    for trace, plan_run in zip(traces, result.plan_runs):
        assert trace.plan == plan_run.plan
        for problem in trace.problems:
            assert problem.chains == plan_run.chains[problem.key]
        assert (trace.verifier is None) == (plan_run.verifier is None)


def test_full_width_cells_agree_with_the_closing_table(grid_run):
    config, result = grid_run
    surface = estimate_surface(load_grid_traces(Store.open(config.out)))
    for ts, row in zip([t for t in surface.traces for _ in range(3)], closing_table(result)):
        assert ts.mean(row.w, row.d, "coverage") == pytest.approx(row.coverage)
        costs = ts.cost[(row.w, row.d)]
        for unit in ("generated_tokens", "serial_tokens", "flops", "prompt_tokens"):
            assert float(np.mean(costs[unit])) == pytest.approx(getattr(row.cost, unit))


def test_sub_cells_equal_brute_force_over_subsets_of_chains(grid_run):
    config, _ = grid_run
    (ts, _) = estimate_surface(load_grid_traces(Store.open(config.out))).traces
    trace = ts.trace
    for w, d in itertools.product(range(1, 5), range(1, 4)):
        coverage, generated, serial, prompt = [], [], [], []
        for problem in trace.problems:
            subsets = list(itertools.combinations(problem.chains, w))
            coverage.append(np.mean([any(c[d - 1].correct for c in s) for s in subsets]))
            costs = [cell_cost([AttemptCost(a.prompt_key, a.prompt_tokens, a.completion_tokens, a.serial_tokens, 0)
                                for c in s for a in c[:d]],
                               [AttemptCost("", 0, 0, c[d - 1].serial_tokens, 0) for c in s], [], trace.n_params,
                               trace.shares_prompt_prefix) for s in subsets]
            generated.append(np.mean([c.generated_tokens for c in costs]))
            serial.append(np.mean([c.serial_tokens for c in costs]))
            prompt.append(np.mean([c.prompt_tokens for c in costs]))
        assert ts.mean(w, d, "coverage") == pytest.approx(np.mean(coverage))
        assert np.mean(ts.cost[(w, d)]["generated_tokens"]) == pytest.approx(np.mean(generated))
        assert np.mean(ts.cost[(w, d)]["serial_tokens"]) == pytest.approx(np.mean(serial))
        assert np.mean(ts.cost[(w, d)]["prompt_tokens"]) == pytest.approx(np.mean(prompt))


def test_intervals_bracket_the_estimate(grid_run):
    config, _ = grid_run
    frame = estimate_surface(load_grid_traces(Store.open(config.out))).frame()
    assert len(frame) == 4 * 3 * 2 + 4 * 3 * 3  # chain: majority+coverage; search: + best_of
    assert ((frame.ci_low <= frame.accuracy + 1e-12) & (frame.accuracy <= frame.ci_high + 1e-12)).all()
    assert frame.accuracy.between(0, 1).all() and (frame.problems == 5).all()


def test_failed_chains_leave_the_sample(make_config):
    config = make_config(tasks=["chain:L=1"], plans=["parallel:4"], problems=6)
    run(config, backend=MockBackend(fail=0.35))
    (ts,) = estimate_surface(load_grid_traces(Store.open(config.out))).traces
    reached = [sum(1 for c in p.chains if c and not c[0].failed) for p in ts.trace.problems]
    values = ts.accuracy[(4, 1, "coverage")]
    assert [math.isnan(v) for v in values] == [n < 4 for n in reached]


def test_frontier_is_monotone_and_best_dominates(grid_run):
    config, _ = grid_run
    for ts in estimate_surface(load_grid_traces(Store.open(config.out))).traces:
        for unit in ("generated_tokens", "flops", "serial_tokens"):
            points = frontier(ts, unit)
            best = [p.cell.accuracy for p in points if p.strategy == "best"]
            assert best == sorted(best)
            for budget in {p.budget for p in points}:
                here = {p.strategy: p.cell for p in points if p.budget == budget}
                for strategy in STRATEGIES:
                    cell = here[strategy]
                    if cell is not None:
                        assert cell.cost <= budget * (1 + 1e-9) and cell.accuracy <= here["best"].accuracy
                        assert cell.aggregator != "coverage"
                if here["width"]:
                    assert here["width"].d == 1
                if here["depth"]:
                    assert here["depth"].w == 1
        assert all(c.cost > 0 for c in iso_cost_cells(ts, "generated_tokens", 20.0))


def test_verdict_finds_width_for_short_problems_depth_for_chains_and_the_crossover(make_config):
    config = make_config(tasks=["chain:L=1", "chain:L=3"], plans=["grid:4x2"], problems=24)  # 12 held out
    run(config, backend=MockBackend(script=width_then_depth))
    surface = estimate_surface(load_grid_traces(Store.open(config.out)))
    verdict = build_verdict(surface, "generated_tokens")
    by_task = {}
    for j in verdict.judgements:
        by_task.setdefault(j.task, []).append(j)
    short, long = by_task["chain:L=1,m=10"], by_task["chain:L=3,m=10"]
    assert short[-1].winner == "width" and short[-1].significant
    assert "depth" not in {j.winner for j in short}
    assert any(j.winner == "depth" and j.significant for j in long)
    assert "width" not in {j.winner for j in long}
    structure = [c for c in verdict.crossovers if c.kind == "structure"]
    assert any(c.before == "width" and c.after in ("depth", "hybrid") and c.at == 3 for c in structure)
    assert any("width wins" in text for text, _ in verdict.summary())


def fake_surface(coverage: dict[int, float], depth_accuracy: dict[int, float]) -> TraceSurface:
    n, depth = max(coverage), max(depth_accuracy)
    trace = GridTrace("m", "chain:L=1", GridPlan(n, depth), 0, {}, [], 1, True)
    ts = TraceSurface(trace)
    for k, value in coverage.items():
        ts.accuracy[(k, 1, "coverage")] = np.array([value])
    for d, value in depth_accuracy.items():
        ts.accuracy[(1, d, "majority")] = np.array([value])
    return ts


def test_coverage_fit_recovers_a_power_law():
    a, b = -2.0, -0.45
    ts = fake_surface({k: math.exp(a * k**b) for k in range(1, 17)}, {1: 0.2})
    fit = fit_coverage(ts)
    assert fit.ok and fit.params["a"] == pytest.approx(a, rel=1e-3) and fit.params["b"] == pytest.approx(b, rel=1e-3)
    assert fit.rmse < 1e-6
    (inside, outside) = fit.extrapolations([16, 64])
    assert not inside["extrapolated"] and outside["extrapolated"]
    assert outside["value"] == pytest.approx(math.exp(a * 64**b), rel=1e-3)


def test_depth_fit_recovers_saturation_and_refuses_too_few_rounds():
    truth = {d: 0.8 - 0.6 * math.exp(-(d - 1) / 1.5) for d in range(1, 7)}
    fit = fit_depth(fake_surface({1: 0.2}, truth))
    assert fit.ok and fit.params["A"] == pytest.approx(0.8, abs=1e-3) and fit.params["tau"] == pytest.approx(1.5, rel=1e-2)
    short = fit_depth(fake_surface({1: 0.2}, {1: 0.2, 2: 0.4}))
    assert not short.ok and "4 or more rounds" in short.reason
    assert math.isnan(short.predict(3))


def test_a_rerun_with_another_verifier_is_the_same_experiment(make_config):
    """The verifier is an analysis choice over the same attempts: a rerun with --verifier none (or
    another verifier) must not make a second trace, or every surface row would appear twice."""
    config = make_config(tasks=["search"], plans=["grid:3x2"], problems=4)
    backend = MockBackend(script=lambda r, seed: f"Answer: {seed % 5}")
    run(config, backend=backend)
    run(config.model_copy(update={"verifier": "none"}), backend=backend)
    traces = load_grid_traces(Store.open(config.out))
    assert len(traces) == 1 and traces[0].verifier == "exact"
    frame = estimate_surface(traces).frame()
    assert not frame.duplicated(["task", "plan", "w", "d", "aggregator"]).any()
    assert len(frame) == 3 * 2 * 3


def test_intervals_equal_the_mean_of_each_resample_bit_for_bit():
    """The surface takes every resample's mean as one product of counts and averages again, draw by
    draw, only the resamples next to the interval's ends (none where every sum is exact: sixteenths): the
    interval is exactly the percentile of `np.nanmean` over each resample's draws (the rule before), on
    values with ties (thirds, sixteenths) and gaps."""
    from widthdepth.analysis.estimators import bootstrap_indices, percentile_interval

    rng = np.random.default_rng(4)
    for problems in (5, 64, 217):
        ts = TraceSurface(GridTrace("m", "chain:L=1", GridPlan(4, 1), 0, {}, [], 1, True))
        ts.resamples = bootstrap_indices(problems, 2000, 20240)
        for trial in range(20):
            kinds = (rng.random(problems), rng.integers(0, 17, problems) / 16, rng.integers(0, 4, problems) / 3)
            values = kinds[trial % 3]
            values[rng.random(problems) < 0.2] = np.nan
            with warnings.catch_warnings():  # resamples of undefined problems only: no mean
                warnings.simplefilter("ignore", category=RuntimeWarning)
                means = np.nanmean(values[ts.resamples], axis=1)
            expected = percentile_interval(means[np.isfinite(means)]) if np.isfinite(means).any() else (np.nan,) * 2
            assert np.array_equal(ts.interval(values), expected, equal_nan=True), (problems, trial)


def test_every_cells_interval_at_once_equals_each_alone():
    from widthdepth.analysis.estimators import bootstrap_indices, percentile_interval

    rng = np.random.default_rng(6)
    ts = TraceSurface(GridTrace("m", "chain:L=1", GridPlan(4, 1), 0, {}, [], 1, True))
    ts.resamples = bootstrap_indices(40, 2000, 20240)
    for cell in range(300):
        values = rng.integers(0, 9, 40) / 8
        values[rng.random(40) < (0.95 if cell % 7 == 0 else 0.1)] = np.nan
        ts.accuracy[(cell + 1, 1, "majority")] = values
    for (w, d, aggregator), values in ts.accuracy.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            means = np.nanmean(values[ts.resamples], axis=1)
        expected = percentile_interval(means[np.isfinite(means)]) if np.isfinite(means).any() else (np.nan,) * 2
        assert np.array_equal(ts.cell_interval(w, d, aggregator), expected, equal_nan=True), w
