"""How far to trust a coverage forecast: each model fitted on the run's first chains, scored on the rest.

A run of N chains is its own test: fit a model on the first N/4 (or N/8) chains of every problem,
forecast coverage at k = N, and compare with pass@N observed on all N chains. The report shows that
error next to every forecast, and `widthdepth forecast DIR --to K` prints it with the forecast.

    summary = summarise(trace.arrays, to=[4 * N], target=0.9)
    summary.backtests[0].error      # forecast - observed at N, from N/4 chains
    summary.samples["beta"]         # (k for 90% coverage, low, high)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from widthdepth.analysis.forecast import MODELS, Forecast, complete, counts_of, forecast, pass_at_k, samples_for
from widthdepth.analysis.majority_forecast import frequencies_of, majority_at, observed_majority

DIVISORS = (4, 8)


@dataclass(frozen=True)
class Backtest:
    model: str
    fitted_on: int
    """Chains per problem the model saw (the first ones)."""
    k: int
    forecast: float
    low: float
    high: float
    observed: float
    """pass@k on all the run's chains."""

    @property
    def error(self) -> float:
        return self.forecast - self.observed

    @property
    def covered(self) -> bool | None:
        """Whether the interval holds the observed value; None without an interval (no bootstrap)."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        return bool(self.low <= self.observed <= self.high)


def backtest(arrays, divisors: tuple[int, ...] = DIVISORS, models: tuple[str, ...] = MODELS, d: int = 1,
             bootstrap: int = 100, block: int = 0) -> list[Backtest]:
    """Each model fitted on chains [block·m, (block + 1)·m) with m = N / divisor, scored at k = N; both on the
    problems whose N chains all reached round `d` (pass@N is defined only there)."""
    chains, full = arrays.shape[1], complete(arrays, d)
    observed = pass_at_k(counts_of(arrays, d, problems=full), chains)
    out = []
    for divisor in divisors:
        m = chains // divisor
        if m < 2 or (block + 1) * m > chains:
            continue
        counts = counts_of(arrays, d, slice(block * m, (block + 1) * m), problems=full)
        for model in models:
            result = forecast(counts, model, [chains], bootstrap=bootstrap, seed=block)
            out.append(Backtest(model, m, chains, result.values[0], result.low[0], result.high[0], observed))
    return out


@dataclass
class Summary:
    chains: int
    observed: float
    """pass@N on the whole run."""
    forecasts: dict[str, Forecast] = field(default_factory=dict)
    backtests: list[Backtest] = field(default_factory=list)
    samples: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Per model: samples for the target coverage, with a 95% interval (inf: not within a million)."""
    target: float = 0.9
    majority: list[float] = field(default_factory=list)
    """The plug-in majority forecast at each k of `to` (`majority_forecast`)."""
    majority_observed: float = math.nan
    """Majority accuracy of all N chains (ties shared)."""
    majority_backtests: list[tuple[int, float]] = field(default_factory=list)
    """(chains fitted on, forecast at N) per divisor."""

    def best(self) -> str | None:
        """The model with the smallest mean absolute backtest error (ties: the order of `MODELS`)."""
        errors: dict[str, list[float]] = {}
        for b in self.backtests:
            errors.setdefault(b.model, []).append(abs(b.error))
        scored = {m: float(np.mean(e)) for m, e in errors.items() if all(math.isfinite(x) for x in e)}
        return min(scored, key=scored.get) if scored else None


def _samples(result: Forecast, target: float) -> tuple[float, float, float]:
    def k_of(fitted) -> float:
        k = samples_for(fitted, target)
        return math.inf if k is None else float(k)

    point = k_of(result.fitted)
    draws = [k_of(f) for f in result.resampled]
    if not draws:
        return point, math.nan, math.nan
    return point, float(np.percentile(draws, 2.5, method="lower")), float(np.percentile(draws, 97.5, method="higher"))


def summarise(arrays, to: list[int], target: float = 0.9, models: tuple[str, ...] = MODELS, bootstrap: int = 100,
              divisors: tuple[int, ...] = DIVISORS, backtest_bootstrap: int = 0) -> Summary:
    """Forecasts at each k in `to` from all the run's chains (intervals from `bootstrap` resamples), the
    backtests (their intervals from `backtest_bootstrap`; 0: errors only), and the samples for `target`."""
    counts = counts_of(arrays, 1)
    summary = Summary(arrays.shape[1], pass_at_k(counts, arrays.shape[1]), target=target)
    for model in models:
        result = forecast(counts, model, to, bootstrap=bootstrap)
        summary.forecasts[model] = result
        if result.fitted is not None:
            summary.samples[model] = _samples(result, target)
    summary.backtests = backtest(arrays, divisors, models, bootstrap=backtest_bootstrap)
    everything = frequencies_of(arrays)
    summary.majority, summary.majority_observed = majority_at(everything, to), observed_majority(everything)
    for divisor in divisors:
        m = summary.chains // divisor
        if m >= 2:
            first = frequencies_of(arrays, chains=slice(0, m))
            summary.majority_backtests.append((m, majority_at(first, [summary.chains])[0]))
    return summary
