"""Coverage forecasts from success counts, backtests, the depth threshold law, `widthdepth forecast`."""

import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from scripts import chain_gold
from widthdepth.analysis.backtest import backtest, summarise
from widthdepth.analysis.fits import fit_depth_law
from widthdepth.analysis.forecast import _GRID, Counts, Fitted, counts_of, fit_model, forecast, pass_at_k, samples_for
from widthdepth.analysis.surface import TraceSurface, estimate_surface
from widthdepth.analysis.traces import GridTrace, load_grid_traces
from widthdepth.backends.mock import MockBackend
from widthdepth.cli import main
from widthdepth.plans.grid import GridPlan
from widthdepth.runner import run
from widthdepth.specs import stable_int
from widthdepth.store import Store

RATES = (0.0, 0.04, 0.3, 0.9)


def by_rate(request, seed: int) -> str:
    """Each chain problem has its own success rate (one of RATES, by its start value): a sample is right
    with that probability, drawn from its seed."""
    text = request.messages[0][1]
    gold = chain_gold(text)
    rate = RATES[int(text.split("Start with the number ")[1].split()[0].rstrip(".")) % len(RATES)]
    return f"Answer: {gold if stable_int('draw', text, seed) % 10_000 < rate * 10_000 else gold + 1}"


@pytest.fixture(scope="module")
def rated_run(tmp_path_factory):
    from widthdepth.config import RunConfig

    out = tmp_path_factory.mktemp("rated")
    config = RunConfig(model="mock:", tasks=["chain:L=1"], plans=["parallel:32"], problems=80, out=str(out))
    run(config, backend=MockBackend(script=by_rate))
    (trace,) = load_grid_traces(Store.open(out))
    return out, trace


def synthetic(rng, problems, samples, rates):
    p = rates(rng, problems)
    return Counts(rng.binomial(samples, p), np.full(problems, samples)), p


def test_pass_at_k_is_the_mean_over_subsets_and_the_surface_s_coverage(rated_run):
    counts = Counts(np.array([0, 1, 3, 5]), np.array([5, 5, 5, 5]))
    for k in range(1, 6):  # brute force: every k-subset of each problem's 5 samples
        brute = np.mean([np.mean([any(i < s for i in subset) for subset in combinations(range(5), k)])
                         for s in counts.successes])
        assert pass_at_k(counts, k) == pytest.approx(brute)
    _, trace = rated_run
    (ts,) = estimate_surface([trace]).traces  # the surface's coverage estimator, which the run's own rule checks
    for k in (1, 4, 32):
        assert pass_at_k(counts_of(trace.arrays), k) == pytest.approx(ts.mean(k, 1, "coverage"))


def test_beta_binomial_recovers_its_parameters_and_its_coverage_is_the_integral():
    rng = np.random.default_rng(0)
    counts, _ = synthetic(rng, 4000, 16, lambda r, n: r.beta(0.6, 2.5, n))
    fitted = fit_model(counts, "beta")
    assert fitted.params["alpha"] == pytest.approx(0.6, rel=0.1) and fitted.params["beta"] == pytest.approx(2.5, rel=0.15)
    a, b = fitted.params["alpha"], fitted.params["beta"]
    for k in (1, 16, 1000):
        integral, _ = integrate.quad(lambda p: (1 - (1 - p) ** k) * stats.beta.pdf(p, a, b), 0, 1, limit=200)
        assert fitted.coverage(k) == pytest.approx(integral, abs=1e-6)


def test_the_flexible_models_fit_better_and_the_mixture_knows_the_unsolvable():
    rng = np.random.default_rng(1)
    counts, p = synthetic(rng, 3000, 32, lambda r, n: np.where(r.random(n) < 0.3, 0.0, r.beta(3, 1, n)))

    def loglik(fitted):  # the counts' log-likelihood under a fitted model, written out with scipy's distributions
        if fitted.model == "beta":
            return float(np.sum(stats.betabinom.logpmf(counts.successes, counts.samples, fitted.params["alpha"],
                                                       fitted.params["beta"])))
        binom = stats.binom.pmf(counts.successes[:, None], counts.samples[:, None], _GRID[None, :])
        return float(np.sum(np.log(binom @ fitted._weights)))

    beta, npmle = fit_model(counts, "beta"), fit_model(counts, "npmle")
    assert loglik(npmle) > loglik(beta)  # the nonparametric maximum likelihood beats the Beta's
    assert npmle.coverage(10_000) < beta.coverage(10_000) - 0.1  # it keeps mass near p = 0; one Beta cannot
    two = fit_model(counts, "beta2")  # its tail component takes the unsolvable 30%
    assert two.coverage(1_000_000) == pytest.approx(1 - np.mean(p == 0), abs=0.02)
    assert samples_for(two, 0.9) is None and samples_for(two, 0.6) is not None


def test_samples_for_is_the_first_k_over_the_target():
    fitted = Fitted("beta", {"alpha": 0.4, "beta": 3.0})
    k = samples_for(fitted, 0.9)
    assert fitted.coverage(k) >= 0.9 > fitted.coverage(k - 1)
    assert samples_for(Fitted("npmle", {"w0": 0.5, **{f"w{j}": 0.5 if j == 100 else 0.0 for j in range(1, 123)}}),
                       0.9) is None


def test_forecast_intervals_and_a_backtest_from_the_first_chains(rated_run):
    _, trace = rated_run
    arrays = trace.arrays
    result = forecast(counts_of(arrays, chains=slice(0, 8)), "beta", [32, 128], bootstrap=60)
    assert all(lo <= v <= hi for v, lo, hi in zip(result.values, result.low, result.high))
    assert len(result.resampled) == 60
    tests = backtest(arrays, divisors=(4,), models=("beta", "npmle", "brown"), bootstrap=40)
    observed = pass_at_k(counts_of(arrays), 32)
    assert [b.model for b in tests] == ["beta", "npmle", "brown"] and all(b.fitted_on == 8 for b in tests)
    assert all(b.observed == observed and b.k == 32 for b in tests)
    again = forecast(counts_of(arrays, chains=slice(0, 8)), "npmle", [32], bootstrap=40, seed=0)
    assert tests[1].forecast == pytest.approx(again.values[0])
    # a sixth of the problems never succeed and many rarely do: the beta-binomial sees it from 8 samples, Brown's
    # power law fitted on pass@1..8 does worse
    assert abs(tests[0].error) < abs(tests[2].error)


def test_summary_marks_the_best_backtest(rated_run):
    _, trace = rated_run
    summary = summarise(trace.arrays, to=[64], bootstrap=20)
    errors = {m: np.mean([abs(b.error) for b in summary.backtests if b.model == m]) for m in summary.forecasts}
    assert summary.best() == min(errors, key=errors.get)
    assert set(summary.samples) <= set(summary.forecasts)


def per_problem_surface(per_problem: dict[int, np.ndarray]) -> TraceSurface:
    depth = max(per_problem)
    ts = TraceSurface(GridTrace("m", "chain:L=4", GridPlan(1, depth), 0, {}, [], 1, True))
    for d, values in per_problem.items():
        ts.accuracy[(1, d, "majority")] = values.astype(float)
    return ts


def test_the_threshold_law_wins_on_a_step_and_finds_its_critical_depth():
    rng = np.random.default_rng(2)
    critical = rng.choice([4, 5], size=400)  # problems solved from depth 4 or 5 on
    step = per_problem_surface({d: (d >= critical) & (rng.random(400) < 0.95) for d in range(1, 11)})
    law = fit_depth_law(step, bootstrap=100)
    assert law.chosen == "threshold" and law.held_out["threshold"] < law.held_out["saturating"]
    assert 3.5 < law.critical < 5.0 and law.critical_interval[0] <= law.critical <= law.critical_interval[1]
    smooth = per_problem_surface({d: rng.random(400) < 0.8 - 0.6 * math.exp(-(d - 1) / 2) for d in range(1, 11)})
    assert fit_depth_law(smooth, bootstrap=20).chosen == "saturating"
    assert "5 or more rounds" in fit_depth_law(per_problem_surface({d: np.ones(3) for d in (1, 2, 3)})).reason


def test_forecast_command(rated_run, capsys, tmp_path):
    out, _ = rated_run
    assert main(["forecast", str(out), "--to", "256", "--bootstrap", "20"]) == 0
    shown = capsys.readouterr().out
    assert "coverage at 256" in shown and "samples for 90%" in shown and "backtest error at 32" in shown
    assert all(f"  {model}" in shown for model in ("beta", "beta2", "npmle", "brown"))
    assert main(["forecast", str(out), "--to", "256", "--model", "gamma"]) == 2
    assert "--model 'gamma': unknown coverage model" in capsys.readouterr().err
    assert main(["forecast", str(tmp_path / "none"), "--to", "8"]) == 2


def test_majority_plug_in_forecast(rated_run):
    from widthdepth.analysis.majority_forecast import frequencies_of, majority_at, observed_majority

    _, trace = rated_run
    everything = frequencies_of(trace.arrays)
    (ts,) = estimate_surface([trace]).traces
    assert observed_majority(everything) == pytest.approx(ts.mean(32, 1, "majority"))  # the surface's own estimate
    share_right = np.mean([votes[:-1][right].sum() / votes.sum() for votes, right in everything])
    assert majority_at(everything, [1], draws=20_000)[0] == pytest.approx(share_right, abs=0.01)  # k = 1: one draw
    one_sided = [(np.array([9, 1, 0]), np.array([True, False])), (np.array([1, 9, 0]), np.array([True, False]))]
    assert majority_at(one_sided, [101])[0] == pytest.approx(0.5, abs=0.01)  # the plurality answer wins outright
    summary = summarise(trace.arrays, to=[64, 128], bootstrap=5)
    assert len(summary.majority) == 2 and [m for m, _ in summary.majority_backtests] == [8, 4]


def test_the_mixture_s_gradient_is_its_likelihood_s():
    from scipy.optimize import approx_fprime

    from widthdepth.analysis.forecast import _beta_gradient, _beta_loglik

    rng = np.random.default_rng(3)
    groups = synthetic(rng, 300, 16, lambda r, n: r.beta(0.5, 4, n))[0].grouped()
    for alpha, beta in ((0.4, 3.0), (2.0, 0.7)):
        for which in (0, 1):
            def part(x):
                a, b = (math.exp(x[0]), beta) if which == 0 else (alpha, math.exp(x[0]))
                return float(np.sum(groups.problems * _beta_loglik(groups, a, b)))
            numeric = approx_fprime(np.array([math.log(alpha if which == 0 else beta)]), part, 1e-7)[0]
            assert float(np.sum(groups.problems * _beta_gradient(groups, alpha, beta)[which])) == \
                pytest.approx(numeric, rel=1e-4)


def test_a_run_whose_round_one_failed_still_gets_its_report(tmp_path):
    from widthdepth.config import RunConfig
    from widthdepth.report import write_report

    out = tmp_path / "failed"
    run(RunConfig(model="mock:", tasks=["chain:L=1"], plans=["parallel:8"], problems=4, out=str(out)),
        backend=MockBackend(script=by_rate, fail=1.0))
    (trace,) = load_grid_traces(Store.open(out))
    summary = summarise(trace.arrays, to=[16], bootstrap=5)
    assert math.isnan(summary.observed) and all(math.isnan(f.values[0]) for f in summary.forecasts.values())
    page = Path(write_report(str(out))["report"]).read_text()
    assert "no problem has all 8 chains at round 1" in page
