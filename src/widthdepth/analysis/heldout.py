"""Selection-aware significance for the verdict: cells chosen on one half of the problems, tested
on the other, with intervals simultaneous over every comparison of a verdict.

The verdict takes the best cell of each strategy within a budget and compares the winner with the
others. Testing those picks on the problems that picked them inflates significance (the winner's
curse: with every cell equally good, the best of many looks better than it is). So the problems are
split into two fixed halves by a hash of their keys. On the *choosing* half the best cell of each
strategy within the budget is chosen again and the strategies ranked; on the *testing* half, which
played no part in the choice, the paired difference between the chosen winner's cell and each other
strategy's chosen cell is measured, with a bootstrap over the testing half's problems. (The budgets
themselves are spaced over the costs of all problems: a cost, not an accuracy, of the testing half.)

Each claim is one-sided ("the winner is better"), its direction fixed on the choosing half before
the testing half is looked at. Every comparison of one verdict (all its tasks and budgets, one
unit) shares one critical value: the 95% quantile of the bootstrap's largest studentized shortfall
over all of them (max-T; tasks have independent problems, so their resamples are paired by index).
The lower bounds then hold for all comparisons at once with probability about 95%: the chance
that *any* significant sentence of a verdict names a winner that is not truly better is about 5%
at most, however many tasks and budgets it has.

    split = split_problems(trace_surface)
    test = held_out_test(trace_surface, split, cells(trace_surface, "flops", problems=split.choose), 2e7)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from widthdepth.analysis.estimators import bootstrap_indices
from widthdepth.analysis.frontier import Cell, best_within
from widthdepth.analysis.surface import BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED, TraceSurface
from widthdepth.specs import stable_hash

COMPARED = ("width", "depth", "hybrid")
LEVEL = 0.95
MIN_TESTED = 10
"""Fewest testing-half problems with both cells defined for a comparison to be made: below that the
bootstrap of a mean of 0/1 differences is too coarse (a false "significant" 6-12% of the time with
2-6 problems, measured; 5.5% with 32), and a constant difference would have no spread at all."""
ONE_NORMAL = 1.644854


@dataclass(frozen=True)
class Split:
    choose: np.ndarray
    """Indices of the problems that choose the cells."""
    test: np.ndarray
    """Indices of the problems that test them."""
    resamples: np.ndarray
    """Bootstrap resamples of the testing half (problem indices), BOOTSTRAP_SAMPLES rows."""


def split_problems(ts: TraceSurface) -> Split:
    """Two fixed halves by a hash of each problem's key: the same store always splits the same way."""
    keys = ts.trace.arrays.keys
    order = sorted(range(len(keys)), key=lambda i: stable_hash("verdict-split", keys[i]))
    half = (len(keys) + 1) // 2
    choose, test = np.array(sorted(order[:half]), dtype=int), np.array(sorted(order[half:]), dtype=int)
    picks = bootstrap_indices(len(test), BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED + 1)
    return Split(choose, test, test[picks] if len(test) else np.zeros((BOOTSTRAP_SAMPLES, 0), dtype=int))


@dataclass(frozen=True)
class Comparison:
    """The chosen winner's cell against another strategy's chosen cell, on the testing half."""

    against: str
    difference: float
    """Mean paired difference in accuracy (winner minus the other) over the testing half."""
    means: np.ndarray
    """The same mean over each bootstrap resample of the testing half."""

    @property
    def se(self) -> float:
        """The bootstrap standard error; 0 when every tested problem differs alike (rounding noise
        included), so such a comparison is decided by its sign, with at least MIN_TESTED problems."""
        finite = self.means[np.isfinite(self.means)]
        if len(finite) < 2:
            return math.nan
        se = float(np.std(finite))
        return 0.0 if se < 1e-12 else se


@dataclass(frozen=True)
class HeldOutTest:
    winner: str | None
    """The strategy the choosing half ranks first (None: nothing fits, or one cell only)."""
    cells: dict[str, str]
    """strategy -> "w×d aggregator" of the cell the choosing half picks."""
    comparisons: dict[str, Comparison]
    """other strategy -> its comparison with the winner."""


def label(cell: Cell) -> str:
    return f"{cell.w}×{cell.d} {cell.aggregator}"


def ranked_strategies(candidates: list[Cell], budget: float) -> tuple[list[str], dict[str, Cell]]:
    """Strategies by their best cell within the budget, most accurate first; a cell that is the best
    of two strategies (1×1 is both width and depth) counts once."""
    best = {s: best_within(candidates, budget, s) for s in COMPARED}
    present = {s: c for s, c in best.items() if c is not None}
    ranked: list[str] = []
    for strategy in sorted(present, key=lambda s: (-present[s].accuracy, present[s].cost)):
        if all(present[strategy] != present[other] for other in ranked):
            ranked.append(strategy)
    return ranked, present


def held_out_test(ts: TraceSurface, split: Split, chosen_from: list[Cell], budget: float) -> HeldOutTest:
    """Rank the strategies on the choosing half (`chosen_from`: `cells(ts, unit, problems=split.choose)`)
    and measure the winner against each other strategy on the testing half."""
    ranked, present = ranked_strategies(chosen_from, budget)
    chosen = {s: label(c) for s, c in present.items()}
    tied = len(ranked) >= 2 and present[ranked[0]].accuracy - present[ranked[1]].accuracy < 1e-12
    if len(ranked) < 2 or tied or len(split.test) < MIN_TESTED:
        return HeldOutTest(None, chosen, {})
    winner = present[ranked[0]]
    comparisons = {}
    for other in ranked[1:]:
        cell = present[other]
        diff = ts.accuracy[(winner.w, winner.d, winner.aggregator)] - ts.accuracy[(cell.w, cell.d, cell.aggregator)]
        if np.isfinite(diff[split.test]).sum() < MIN_TESTED:
            continue  # not testable: the claim against this strategy stays unconfirmed
        with warnings.catch_warnings():  # a resample of only undefined problems has no mean
            warnings.simplefilter("ignore", category=RuntimeWarning)
            means = np.nanmean(diff[split.resamples], axis=1)
            observed = float(np.nanmean(diff[split.test]))
        comparisons[other] = Comparison(other, observed, means)
    return HeldOutTest(ranked[0], chosen, comparisons)


def critical_value(comparisons: list[Comparison], level: float = LEVEL) -> float:
    """The one-sided max-T critical value: the `level` quantile over bootstrap resamples of the largest
    (observed - resampled) / se among all comparisons (1.645 for a single normal one). Each claim is
    one-sided (the winner is better), its direction fixed on the other half before this half is seen."""
    usable = [c for c in comparisons if math.isfinite(c.difference) and math.isfinite(c.se) and c.se > 0]
    if not usable:
        return ONE_NORMAL
    deviations = np.stack([(c.difference - c.means) / c.se for c in usable])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        worst = np.nanmax(deviations, axis=0)
    worst = worst[np.isfinite(worst)]
    return float(np.quantile(worst, level)) if len(worst) else ONE_NORMAL


def lower_bound(comparison: Comparison, critical: float) -> float:
    """The simultaneous lower confidence bound of one comparison (NaN where the testing half cannot say)."""
    se = comparison.se
    if not (math.isfinite(comparison.difference) and math.isfinite(se)):
        return math.nan
    return comparison.difference - critical * se
