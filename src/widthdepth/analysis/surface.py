"""The surface: for every w <= N, d <= D and aggregator of one grid run, estimated accuracy with a
95% bootstrap interval over problems, and mean cost — all from ONE run of the largest cell.

Per problem, round d's attempts of the chains that reached it are the sample; each cell (w, d) is
the exact average over all w-subsets of them (`widthdepth.analysis.estimators`), so no cell is ever
generated separately. Costs follow `widthdepth.cost`: generated tokens, wall seconds and verifier
tokens are w times the per-chain mean; the round-1 prompt is counted once where the backend shares
it; serial tokens are the expected longest chain of a w-subset; FLOPs are exact where the backend
reported them (latent reasoners), else 2 x parameters x tokens.

    surface = estimate_surface(load_grid_traces(store))
    surface.frame()          # one row per (task, plan, w, d, aggregator)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from widthdepth.analysis.aggregators import AGGREGATORS, CONFIDENCE_AGGREGATORS
from widthdepth.analysis.estimators import (bootstrap_counts, bootstrap_indices, defined_mean, resampled_intervals,
                                            resampled_means)
from widthdepth.analysis.rounds import COST_COLUMNS, Context, round_cells
from widthdepth.analysis.traces import GridTrace
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20240


@dataclass
class TraceSurface:
    """One grid run's surface: per-problem values kept for paired comparisons."""

    trace: GridTrace
    accuracy: dict[tuple[int, int, str], np.ndarray] = field(default_factory=dict)
    """(w, d, aggregator) -> per-problem estimated accuracy (NaN where fewer than w chains)."""
    cost: dict[tuple[int, int], dict[str, np.ndarray]] = field(default_factory=dict)
    resamples: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=int))
    """Bootstrap problem indices, shared by every cell so differences are paired."""
    mc_variance: dict[tuple[int, int, str], np.ndarray] = field(default_factory=dict)
    """(w, d, aggregator) -> per-problem variance of a Monte Carlo estimate (confidence aggregators)."""
    _intervals: dict[tuple[int, int, str], tuple[float, float]] = field(default_factory=dict, repr=False)
    _rows: list[dict] | None = field(default=None, repr=False)
    _aggregators: tuple[str, ...] | None = field(default=None, repr=False)
    memo: dict = field(default_factory=dict, repr=False)
    """Values derived from the surface and asked for again and again (mean costs, the cells of a unit):
    `frontier` keeps them here. The surface does not change once estimated."""

    @property
    def family(self) -> str:
        return _family(self.trace.task)

    @property
    def structure(self) -> float:
        return _structure_value(self.trace)

    def cell_interval(self, w: int, d: int, aggregator: str) -> tuple[float, float]:
        key = (w, d, aggregator)
        if key not in self._intervals:
            self.make_intervals()
        return self._intervals[key]

    def make_intervals(self) -> None:
        """Every cell's interval, at once (`cell_interval` asks for them when first asked for one)."""
        self._intervals.update(self._every_interval())

    def _every_interval(self, columns: int = 256) -> dict[tuple[int, int, str], tuple[float, float]]:
        """Every cell's interval: the resample counts times the cells' values, `columns` cells at a time."""
        keys, out = list(self.accuracy), {}
        for start in range(0, len(keys), columns):
            part = keys[start:start + columns]
            values = np.stack([self.accuracy[k] for k in part], axis=1)
            low, high = resampled_intervals(values, self.resamples, resampled_means(self.counts, values))
            out.update(zip(part, zip(low.tolist(), high.tolist())))
        return out

    @property
    def counts(self) -> np.ndarray:
        """How often each problem is drawn in each bootstrap resample (`estimators.bootstrap_counts`)."""
        if "counts" not in self.memo:
            self.memo["counts"] = bootstrap_counts(self.resamples, self.resamples.shape[1])
        return self.memo["counts"]

    @property
    def aggregators(self) -> tuple[str, ...]:
        if self._aggregators is None:  # whether the trace has confidences is a pass over all its attempts: once
            exact = AGGREGATORS if self.trace.verifier else ("majority", "coverage")
            self._aggregators = exact + (CONFIDENCE_AGGREGATORS if confident(self.trace) else ())
        return self._aggregators

    def mc_error(self, w: int, d: int, aggregator: str) -> float:
        """The Monte Carlo standard error of a cell's mean accuracy (0 for the exact estimators)."""
        variance = self.mc_variance.get((w, d, aggregator))
        if variance is None or not np.isfinite(variance).any():
            return 0.0
        return float(math.sqrt(np.nansum(variance)) / np.isfinite(variance).sum())

    def mean(self, w: int, d: int, aggregator: str) -> float:
        values = self.accuracy[(w, d, aggregator)]
        return defined_mean(values)

    def bootstrap_means(self, values: np.ndarray) -> np.ndarray:
        """The mean of `values` (one per problem, NaN where undefined) over every bootstrap resample
        (a resample of only undefined problems has no mean: left out)."""
        means = resampled_means(self.counts, values)
        return means[np.isfinite(means)]

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        """The 95% bootstrap interval of the mean of `values` (one per problem, NaN where undefined)."""
        column = values[:, None]
        low, high = resampled_intervals(column, self.resamples, resampled_means(self.counts, column))
        return float(low[0]), float(high[0])

    def rows(self) -> list[dict]:
        if self._rows is None:
            self._rows = self._make_rows()
        return self._rows

    def _make_rows(self) -> list[dict]:
        out = []
        t = self.trace
        for (w, d), costs in self.cost.items():
            cost_means = {c: defined_mean(v) for c, v in costs.items()}
            for aggregator in self.aggregators:
                values = self.accuracy[(w, d, aggregator)]
                low, high = self.cell_interval(w, d, aggregator)
                out.append({
                    "model": t.model, "task": t.task, "plan": t.plan.spec, "mode": t.plan.mode,
                    "family": self.family, "structure": self.structure, "w": w, "d": d,
                    "aggregator": aggregator, "accuracy": self.mean(w, d, aggregator), "ci_low": low,
                    "ci_high": high, "problems": int(np.isfinite(values).sum()),
                    "mc_error": self.mc_error(w, d, aggregator), **cost_means})
        return out


def _family(task: str) -> str:
    return task.split(":", 1)[0]


def _structure_value(trace: GridTrace) -> float:
    """The structure dial of the task: L for chain, the search-space size for search."""
    structures = trace.arrays.structures
    first = structures[0] if structures else {}
    for key in (("size", "L") if first.get("family") == "search" else ("L", "size")):
        if isinstance(first.get(key), (int, float)):
            return float(first[key])
    return math.nan


def confident(trace: GridTrace) -> bool:
    """Every attempt of the trace reports its confidence: the confidence aggregators apply."""
    arrays = trace.arrays
    stored = arrays.present & ~arrays.failed
    return bool(stored.any()) and bool(np.isfinite(arrays.confidence[stored]).all())


def estimate_trace_surface(trace: GridTrace) -> TraceSurface:
    surface = TraceSurface(trace)
    arrays = trace.arrays
    surface.resamples = bootstrap_indices(len(arrays.keys), BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED)
    aggregators = surface.aggregators
    context = Context(trace.plan.chains, bool(trace.verifier), CONFIDENCE_AGGREGATORS[0] in aggregators,
                      trace.shares_prompt_prefix, trace.n_params, trace.verifier_params)
    for d in range(1, trace.plan.rounds + 1):
        accuracy, cost, variance = round_cells(arrays, d, context)
        for w in range(1, trace.plan.chains + 1):
            for aggregator in aggregators:
                surface.accuracy[(w, d, aggregator)] = accuracy[aggregator][:, w - 1].copy()
                if aggregator in variance:
                    surface.mc_variance[(w, d, aggregator)] = variance[aggregator][:, w - 1].copy()
            surface.cost[(w, d)] = {c: cost[c][:, w - 1].copy() for c in COST_COLUMNS}
    return surface


@dataclass
class Surface:
    traces: list[TraceSurface]

    def frame(self):  # -> pandas.DataFrame
        import pandas as pd

        return pd.DataFrame([row for t in self.traces for row in t.rows()])


def estimate_surface(traces: list[GridTrace]) -> Surface:
    return Surface([estimate_trace_surface(t) for t in traces])
