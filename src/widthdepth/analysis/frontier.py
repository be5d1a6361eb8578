"""Frontiers: the best accuracy reachable within each budget, and the allocation that reaches it.

Budgets are log-spaced over the costs of a surface's cells, in one of three units:
``generated_tokens`` and ``flops`` (total compute) or ``serial_tokens`` (latency). Strategies:

- ``width``: d = 1 (independent attempts only);
- ``depth``: w = 1 (one chain of rounds);
- ``hybrid``: w >= 2 and d >= 2;
- ``best``: any cell (the frontier proper).

Aggregators that a deployed system can use compete (majority, verifier best-of); coverage is an
oracle and competes only when asked (`include_oracle`). A verifier's cost is charged to best-of:
its FLOPs in the flops unit, its prompt + generated tokens in the generated-tokens unit.

    points = frontier(trace_surface, unit="serial_tokens")
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from widthdepth.analysis.estimators import defined_mean
from widthdepth.analysis.surface import TraceSurface
from widthdepth.cost import check_unit, pays_verification

STRATEGIES = ("width", "depth", "hybrid", "best")
BUDGET_POINTS = 12


@dataclass(frozen=True)
class Cell:
    w: int
    d: int
    aggregator: str
    accuracy: float
    cost: float

    @property
    def depth_share(self) -> float:
        """log d / log(w d): 0 is all width, 1 all depth, 0.5 for the single attempt (1, 1)."""
        total = math.log(self.w * self.d)
        return 0.5 if total == 0 else math.log(self.d) / total


@dataclass(frozen=True)
class FrontierPoint:
    budget: float
    strategy: str
    cell: Cell | None
    ci_low: float = math.nan
    ci_high: float = math.nan


def in_strategy(w: int, d: int, strategy: str) -> bool:
    return {"width": d == 1, "depth": w == 1, "hybrid": w >= 2 and d >= 2, "best": True}[strategy]


def _nanmean(values: np.ndarray) -> float:
    return defined_mean(values)


def cell_cost(ts: TraceSurface, w: int, d: int, aggregator: str, unit: str,
              problems: np.ndarray | None = None) -> float:
    """Mean cost of a cell per problem (over `problems`, indices into the trace's problems, if given)."""
    check_unit(unit)
    if problems is None:  # on all problems: each mean once per surface
        key = ("cell_cost", w, d, pays_verification(aggregator, unit), unit)
        if key not in ts.memo:
            ts.memo[key] = _cell_cost(ts, w, d, aggregator, unit, None)
        return ts.memo[key]
    return _cell_cost(ts, w, d, aggregator, unit, problems)


def _cell_cost(ts: TraceSurface, w: int, d: int, aggregator: str, unit: str, problems: np.ndarray | None) -> float:
    costs = ts.cost[(w, d)]
    pick = (lambda v: v) if problems is None else (lambda v: v[problems])
    value = _nanmean(pick(costs[unit]))
    if pays_verification(aggregator, unit):
        extra = _nanmean(pick(costs["verifier_flops" if unit == "flops" else "verifier_tokens"]))
        value += extra if math.isfinite(extra) else 0.0
    return value


def cells(ts: TraceSurface, unit: str, include_oracle: bool = False, problems: np.ndarray | None = None) -> list[Cell]:
    """Every cell with its mean accuracy and cost (over `problems` only, if given: the verdict chooses
    cells on one half of the problems and tests them on the other). The caller must not change the list."""
    key = ("cells", unit, include_oracle, None if problems is None else problems.tobytes())
    if key not in ts.memo:
        ts.memo[key] = _cells(ts, unit, include_oracle, problems)
    return ts.memo[key]


def _cells(ts: TraceSurface, unit: str, include_oracle: bool, problems: np.ndarray | None) -> list[Cell]:
    aggregators = [a for a in ts.aggregators if include_oracle or a != "coverage"]
    accuracy = _accuracy_means(ts, problems)
    cost = (lambda w, d, a: cell_cost(ts, w, d, a, unit)) if problems is None else _subset_costs(ts, unit, problems)
    out = []
    for (w, d) in ts.cost:
        for aggregator in aggregators:
            mean, price = accuracy[(w, d, aggregator)], cost(w, d, aggregator)
            if math.isfinite(mean) and math.isfinite(price):
                out.append(Cell(w, d, aggregator, mean, price))
    return out


def _accuracy_means(ts: TraceSurface, problems: np.ndarray | None) -> dict[tuple[int, int, str], float]:
    """Every cell's mean accuracy, on all problems (each as `TraceSurface.mean` gives it) or on `problems`
    (all cells in one pass); every unit's cells share them."""
    key = ("accuracy", None if problems is None else problems.tobytes())
    if key not in ts.memo:
        if problems is None:
            ts.memo[key] = {cell: ts.mean(*cell) for cell in ts.accuracy}
        else:
            ts.memo[key] = dict(zip(ts.accuracy, _column_means(np.stack(list(ts.accuracy.values()), axis=1)[problems])))
    return ts.memo[key]


def _subset_costs(ts: TraceSurface, unit: str, problems: np.ndarray):
    """(w, d, aggregator) -> mean cost on `problems`, as `cell_cost` gives it, every cell in one pass."""
    cells_wd = list(ts.cost)
    base = dict(zip(cells_wd, _column_means(np.stack([ts.cost[c][unit] for c in cells_wd], axis=1)[problems])))
    extra_column = "verifier_flops" if unit == "flops" else "verifier_tokens"
    extra = dict(zip(cells_wd, _column_means(np.stack([ts.cost[c][extra_column] for c in cells_wd], axis=1)[problems])))

    def cost(w: int, d: int, aggregator: str) -> float:
        value = base[(w, d)]
        if pays_verification(aggregator, unit) and math.isfinite(extra[(w, d)]):
            value += extra[(w, d)]
        return value
    return cost


def _column_means(values: np.ndarray) -> list[float]:
    """Mean of each column over its defined rows (NaN where none)."""
    defined = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(defined, values, 0.0).sum(axis=0) / defined.sum(axis=0)).tolist()


def budgets_for(costs: list[float], points: int = BUDGET_POINTS) -> list[float]:
    """`points` budgets log-spaced from the cheapest to the dearest positive, finite cost (the
    frontier's budgets, and a policy's levels)."""
    positive = [c for c in costs if math.isfinite(c) and c > 0]
    if not positive:
        return []
    low, high = min(positive), max(positive)
    if high <= low:
        return [low]
    return [float(b) for b in np.geomspace(low, high, points)]


def best_within(candidates: list[Cell], budget: float, strategy: str) -> Cell | None:
    fitting = [c for c in candidates if c.cost <= budget * (1 + 1e-9) and in_strategy(c.w, c.d, strategy)]
    if not fitting:
        return None
    return max(fitting, key=lambda c: (round(c.accuracy, 12), -c.cost, -c.w, -c.d))


def frontier(ts: TraceSurface, unit: str = "generated_tokens", budgets: list[float] | None = None,
             include_oracle: bool = False) -> list[FrontierPoint]:
    candidates = cells(ts, unit, include_oracle)
    budgets = budgets if budgets is not None else budgets_for([c.cost for c in candidates])
    points = []
    for budget in budgets:
        for strategy in STRATEGIES:
            best = best_within(candidates, budget, strategy)
            low = high = math.nan
            if best is not None:
                low, high = ts.cell_interval(best.w, best.d, best.aggregator)
            points.append(FrontierPoint(budget, strategy, best, low, high))
    return points


def iso_cost_cells(ts: TraceSurface, unit: str, budget: float, tolerance: float = math.sqrt(2)) -> list[Cell]:
    """Iso-compute (or iso-latency) view: the cells whose cost is within a factor `tolerance` of `budget`,
    best aggregator each, ordered from all-width to all-depth."""
    best: dict[tuple[int, int], Cell] = {}
    for c in cells(ts, unit):
        if budget / tolerance <= c.cost <= budget * tolerance:
            if (c.w, c.d) not in best or c.accuracy > best[(c.w, c.d)].accuracy:
                best[(c.w, c.d)] = c
    return sorted(best.values(), key=lambda c: (c.depth_share, c.cost))
