"""Methods on the grid's frontier: each method (early stopping, search) is one point per experiment —
its accuracy and mean cost per problem — set against the best grid cell of the same experiment (model,
task, seed, sampling settings) at matched compute and at matched latency.

A method cannot be estimated from subsets of a grid: its uncertainty comes from its problems and from its
own sampling, so its accuracy carries a 95% bootstrap interval over problems, and a method run R times
(`run --repeats R`: the same problems, a sampling seed per repeat) counts each problem as the mean of
its R outcomes, so the interval holds the seed's noise too. Against the grid, the comparison is paired
by problem and selection-aware like the verdict's (`heldout`), cross-fitted: the grid's best cell within
the method's mean cost is chosen on one half of the problems and the paired difference (method minus
that cell) measured on the other half, then the halves swap, so every problem is tested against a
cell chosen without it; the difference is the mean over all problems, with a 95% bootstrap interval
over problems. "Beats" and "loses to" need that interval to exclude 0; otherwise the method is
"within the noise of" the grid.

    for c in compare_methods(trace_surface, points, "flops"):
        print(c.sentence())
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.analysis.frontier import Cell, best_within, cells
from widthdepth.analysis.heldout import MIN_TESTED, split_problems
from widthdepth.analysis.estimators import percentile_interval
from widthdepth.analysis.surface import TraceSurface
from widthdepth.analysis.traces import Scope
from widthdepth.store import Store


@dataclass(frozen=True)
class MethodPoints:
    """One method's outcomes on one experiment, aligned with the trace's problems (NaN: no outcome)."""

    plan: str
    correct: np.ndarray
    cost: dict[str, np.ndarray]
    """unit -> cost per problem (generated_tokens, flops, serial_tokens, ...)."""
    repeat_accuracy: tuple[float, ...] = ()
    """The accuracy of each repeat on its own (one entry per repeat; `correct` is their mean per problem)."""

    @property
    def repeats(self) -> int:
        return max(1, len(self.repeat_accuracy))

    @property
    def problems(self) -> int:
        return int(np.isfinite(self.correct).sum())

    def mean_cost(self, unit: str) -> float:
        values = self.cost[unit][np.isfinite(self.correct)]
        return float(values.mean()) if len(values) else math.nan


@dataclass(frozen=True)
class MethodComparison:
    task: str
    plan: str
    unit: str
    problems: int
    accuracy: float
    ci_low: float
    ci_high: float
    cost: float
    """The method's mean cost per problem in `unit`: the budget the grid's cell must fit in."""
    grid_cell: str | None
    """The best grid cell within `cost` on all problems ("w×d aggregator"), or None when none fits."""
    grid_accuracy: float
    held_out_cell: str | None
    """The best grid cell within `cost` chosen on each half ("A / B" where the halves chose differently)."""
    held_out_difference: float
    """Method minus the cell chosen on the other half, paired by problem, mean over all problems."""
    low: float
    high: float
    """95% bootstrap interval of `held_out_difference`."""
    tested: int
    repeat_accuracy: tuple[float, ...] = ()
    """Each repeat's own accuracy where the method ran more than once (`accuracy` pools them)."""

    @property
    def outcome(self) -> str:
        if self.held_out_cell is None:
            return "below every grid cell"
        if self.tested < MIN_TESTED or not math.isfinite(self.low):
            return "too few problems to compare with"
        return "beats" if self.low > 0 else "loses to" if self.high < 0 else "is within the noise of"

    @property
    def significant(self) -> bool:
        return self.outcome in ("beats", "loses to")

    def sentence(self) -> str:
        head = (f"{self.task}: {self.plan} {self.accuracy:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}]"
                f"{self.repeats_note()} at {self.cost:,.3g} per problem")
        if self.held_out_cell is None:
            return f"{head}: cheaper than every grid cell, nothing to compare with"
        return (f"{head} {self.outcome} the grid's best within that budget ({self.grid_cell}, "
                f"{self.grid_accuracy:.2f}); held out: {self.held_out_difference:+.2f} "
                f"[{self.low:+.2f}, {self.high:+.2f}] against {self.held_out_cell} chosen on the other half, "
                f"{self.tested} problems")

    def repeats_note(self) -> str:
        """Where the method ran more than once, ' over R repeats (each a–b)'; else ''."""
        runs = self.repeat_accuracy
        return f" over {len(runs)} repeats (each {min(runs):.2f}–{max(runs):.2f})" if len(runs) > 1 else ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": self.outcome, "significant": self.significant}


def _label(cell: Cell | None) -> str | None:
    return None if cell is None else f"{cell.w}×{cell.d} {cell.aggregator}"


def compare(ts: TraceSurface, method: MethodPoints, unit: str) -> MethodComparison:
    cost = method.mean_cost(unit)
    accuracy = float(np.nanmean(method.correct)) if method.problems else math.nan
    ci = ts.interval(method.correct)
    best = best_within(cells(ts, unit), cost, "best")
    split = split_problems(ts)
    paired = np.full(len(method.correct), math.nan)
    chosen: list[Cell] = []
    for choose, test in ((split.choose, split.test), (split.test, split.choose)):  # cross-fitted: each half tests
        cell = best_within(cells(ts, unit, problems=choose), cost, "best")
        if cell is not None:
            chosen.append(cell)
            paired[test] = (method.correct - ts.accuracy[(cell.w, cell.d, cell.aggregator)])[test]
    difference, low, high, tested = math.nan, math.nan, math.nan, int(np.isfinite(paired).sum())
    if tested:
        difference = float(np.nanmean(paired))
        with np.errstate(all="ignore"), warnings.catch_warnings():  # resamples of undefined problems only
            warnings.simplefilter("ignore", category=RuntimeWarning)
            means = np.nanmean(paired[ts.resamples], axis=1)
        if np.isfinite(means).any():
            low, high = percentile_interval(means[np.isfinite(means)])
    labels = list(dict.fromkeys(_label(c) for c in chosen))
    return MethodComparison(ts.trace.task, method.plan, unit, method.problems, accuracy, ci[0], ci[1], cost,
                            _label(best), best.accuracy if best else math.nan, " / ".join(labels) or None, difference,
                            low, high, tested, method.repeat_accuracy if method.repeats > 1 else ())


def compare_methods(ts: TraceSurface, methods: list[MethodPoints], unit: str) -> list[MethodComparison]:
    return [compare(ts, m, unit) for m in methods]


def method_points(store: Store, scope: Scope | None = None) -> dict[tuple, list[dict[str, Any]]]:
    """The store's method points by experiment (model, task, seed, sampling as sorted items) and plan."""
    return group_points(store.method_points(), scope)


def group_points(points: list[dict[str, Any]], scope: Scope | None = None) -> dict[tuple, list[dict[str, Any]]]:
    """Method points (`Store.method_points`) by experiment and plan, those of `scope` only if given."""
    out: dict[tuple, list[dict[str, Any]]] = {}
    for point in points:
        if scope is not None and (point["problem_key"] not in scope.problem_keys or not scope.holds(
                point["model"], point["task"], point["plan"], point["seed"], point["sampling"])):
            continue
        key = (point["model"], point["task"], point["seed"], tuple(sorted(point["sampling"].items())), point["plan"])
        out.setdefault(key, []).append(point)
    return out


def methods_for(ts: TraceSurface, points: dict[tuple, list[dict[str, Any]]]) -> list[MethodPoints]:
    """The methods run on the same experiment as the trace, aligned with its problems; a method's repeats
    pooled: each problem's outcome and cost are its mean over the repeats that finished it."""
    t = ts.trace
    experiment = (t.model, t.task, t.seed, tuple(sorted(t.sampling.items())))
    index = {key: i for i, key in enumerate(t.arrays.keys)}
    out = []
    for key, rows in sorted(points.items()):
        if key[:4] != experiment:
            continue
        runs = sorted({row.get("repeat", 0) for row in rows})
        hits = np.zeros((len(runs), len(index)))
        done = np.zeros((len(runs), len(index)), dtype=bool)
        units = {unit: np.zeros(len(index)) for unit in rows[0]["cost"]}
        for row in rows:
            i = index.get(row["problem_key"])
            if i is None:
                continue
            r = runs.index(row.get("repeat", 0))
            hits[r, i], done[r, i] = float(row["correct"]), True
            for unit, value in row["cost"].items():
                units[unit][i] += value
        count = done.sum(axis=0)
        if not count.any():
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            correct = np.where(count > 0, hits.sum(axis=0) / count, math.nan)
            cost = {unit: np.where(count > 0, total / count, math.nan) for unit, total in units.items()}
        by_run = tuple(float(hits[r][done[r]].mean()) for r in range(len(runs)) if done[r].any())
        out.append(MethodPoints(key[4], correct, cost, by_run))
    return out


def open_method_points(folder: str | Path, scope: Scope | None = None) -> dict[tuple, list[dict[str, Any]]]:
    store = Store.open(folder, create=False)
    try:
        return method_points(store, scope)
    finally:
        store.close()
