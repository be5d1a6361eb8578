"""Fitting a policy: training problems split into quantile bins of the predictor, and a mean budget
allocated across bins — a multiple-choice knapsack solved greedily along each bin's convex hull of
cost against accuracy, so easy problems can stop at the probe and hard ones get more.

    policy = fit_policy(records[:200], predictor="agreement", probe=4, bins=3, unit="flops")
"""

from __future__ import annotations

import math

import numpy as np

from widthdepth.allocation.records import ProblemRecord
from widthdepth.analysis.frontier import budgets_for
from widthdepth.errors import WidthdepthError
from widthdepth.plans.policy import Choice, Level, Policy, short_key

BUDGET_LEVELS = 12


def quantile_edges(values: list[float], bins: int) -> list[float]:
    """Inner bin edges at the training values' quantiles; ties merge bins (a predictor with few
    distinct values gets fewer bins). A value equal to an edge goes to the upper bin."""
    values = sorted(v for v in values if math.isfinite(v))
    if bins < 1:
        raise WidthdepthError(f"--bins {bins}: must be at least 1")
    if not values:
        raise WidthdepthError("no training problem has a predictor value to bin")
    edges: list[float] = []
    for q in range(1, bins):
        edge = values[min(len(values) - 1, math.ceil(q * len(values) / bins))] if values else 0.0
        if edge > values[0] and (not edges or edge > edges[-1]):
            edges.append(float(edge))
    return edges


def _hull(points: list[tuple[float, float, Choice]]) -> list[tuple[float, float, Choice]]:
    """The upper-left concave hull of (cost, accuracy): the only cells a compute-optimal allocation uses."""
    points = sorted(points, key=lambda p: (p[0], -p[1]))
    frontier: list[tuple[float, float, Choice]] = []
    for p in points:
        if frontier and p[1] <= frontier[-1][1]:
            continue
        while len(frontier) >= 2:
            (c1, a1, _), (c2, a2, _) = frontier[-2], frontier[-1]
            if (a2 - a1) * (p[0] - c1) <= (p[1] - a1) * (c2 - c1):  # frontier[-1] is under the chord
                frontier.pop()
            else:
                break
        frontier.append(p)
    return frontier


def allocate(tables: list[dict[Choice, tuple[float, float]]], weights: list[float],
             budgets: list[float]) -> list[tuple[float, list[Choice], float, float]]:
    """For each budget: one cell per bin maximising the weighted mean accuracy with weighted mean
    cost within the budget — greedy upgrades along each bin's hull, steepest first."""
    hulls = [_hull([(c, a, cell) for cell, (a, c) in table.items() if math.isfinite(a) and math.isfinite(c)])
             for table in tables]
    if any(not hull for hull in hulls):
        raise WidthdepthError("a difficulty bin has no plan estimable on all its problems; use fewer --bins")
    state = [0] * len(hulls)
    steps = []
    for b, hull in enumerate(hulls):
        for i in range(1, len(hull)):
            slope = (hull[i][1] - hull[i - 1][1]) / max(hull[i][0] - hull[i - 1][0], 1e-300)
            steps.append((-slope, b, i))
    steps.sort()
    path = [list(state)]
    for _, b, i in steps:  # within a bin slopes fall, so its steps come in order
        state[b] = max(state[b], i)
        path.append(list(state))
    out = []
    for budget in budgets:
        best = path[0]
        for candidate in path:
            if sum(w * hulls[b][s][0] for b, (w, s) in enumerate(zip(weights, candidate))) <= budget * (1 + 1e-9):
                best = candidate
        cost = sum(w * hulls[b][s][0] for b, (w, s) in enumerate(zip(weights, best)))
        accuracy = sum(w * hulls[b][s][1] for b, (w, s) in enumerate(zip(weights, best)))
        out.append((budget, [hulls[b][s][2] for b, s in enumerate(best)], accuracy, cost))
    return out


def _bin_tables(records: list[ProblemRecord], bins_of: list[int], n_bins: int,
                which: str) -> tuple[list[dict[Choice, tuple[float, float]]], list[float]]:
    tables, weights = [], []
    for b in range(n_bins):
        members = [r for r, bb in zip(records, bins_of) if bb == b]
        weights.append(len(members) / len(records))
        table = {}
        if members:
            for cell in getattr(members[0], which):
                values = np.array([getattr(r, which)[cell] for r in members])
                if np.isfinite(values).all():
                    table[cell] = (float(values[:, 0].mean()), float(values[:, 1].mean()))
        tables.append(table)
    return tables, weights


def budget_levels(records: list[ProblemRecord], points: int = BUDGET_LEVELS) -> list[float]:
    """Log-spaced mean budgets from the probe alone to the largest cell (costs only: no gold used)."""
    return budgets_for([float(np.mean([r.adaptive[c][1] for r in records])) for c in records[0].adaptive], points)


def fit_policy(records: list[ProblemRecord], predictor: str, probe: int, bins: int, unit: str,
               budgets: list[float] | None = None, oracle: bool = False) -> Policy:
    """Bins on the training problems' predictor values (or their oracle difficulty), then the
    allocation per budget level. An oracle policy runs no probe: its cells are fixed plans."""
    if not records:
        raise WidthdepthError("no training problems to fit a policy on")
    values = [r.oracle if oracle else r.predictors[predictor] for r in records]
    edges = quantile_edges(values, bins)
    bins_of = [int(np.searchsorted(edges, v, side="right")) for v in values]
    tables, weights = _bin_tables(records, bins_of, len(edges) + 1, "fixed" if oracle else "adaptive")
    levels = [Level(budget, plans, accuracy, cost) for budget, plans, accuracy, cost in
              allocate(tables, weights, budgets or budget_levels(records))]
    if budgets is None:  # a saved policy only keeps levels it can keep (judging uses given budgets as they come)
        levels = [level for level in levels if level.train_cost <= level.budget * (1 + 1e-9)]
    return Policy("oracle" if oracle else predictor, 0 if oracle else probe, unit, edges, weights, levels,
                  sorted(short_key(r.key) for r in records))
