"""Judging adaptive allocation on problems it was not fitted on: a fitted policy on the held-out
problems, or k-fold cross-validation; against fixed plans (width only, depth only, hybrids, any)
picked on the same held-out problems, and gold-binned allocation.

Gold-binned allocation (`oracle` in the code and JSON) bins by gold pass@1 — the share of a problem's
round-1 attempts that are right — with no probe to pay for: it knows how hard each problem is, not
whether the attempts a plan keeps are right, so it is a reference, not a bound; adaptive can beat it,
because its probe sees the very attempts its plan keeps.

    evaluation = evaluate(policy, records)          # or cross_validate(records, "confidence", 1, 3, "flops", 5)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.allocation.fit import budget_levels, fit_policy
from widthdepth.allocation.records import ProblemRecord
from widthdepth.analysis.estimators import bootstrap_indices, percentile_interval
from widthdepth.analysis.frontier import in_strategy
from widthdepth.errors import WidthdepthError
from widthdepth.jsonsafe import json_safe
from widthdepth.plans.policy import Choice, Policy, short_key
from widthdepth.specs import stable_hash

BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 20241


@dataclass
class CurvePoint:
    budget: float
    cost: float
    accuracy: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    plans: list[Choice] = field(default_factory=list)


@dataclass
class Evaluation:
    unit: str
    predictor: str
    probe: int
    problems: int
    adaptive: list[CurvePoint]
    oracle: list[CurvePoint]
    baselines: dict[str, list[CurvePoint]]
    """width_majority, width_best_of, depth, hybrid, best_fixed: Pareto points of fixed plans on the
    held-out problems (chosen on them: the baselines' best case)."""
    ratios: list[dict[str, float]]
    """Per adaptive point: the compute each baseline needs for the same accuracy, over adaptive's."""
    folds: int = 0
    width_matched: list[dict[str, Any]] = field(default_factory=list)
    """Per width-only plan: its cost and accuracy, the compute adaptive needs for that accuracy, and
    the ratio (the comparison at equal accuracy, finite wherever adaptive reaches width's accuracy)."""

    def to_json(self) -> dict[str, Any]:
        def points(curve: list[CurvePoint]) -> list[dict]:
            return [{"budget": p.budget, "cost": p.cost, "accuracy": p.accuracy, "ci_low": p.ci_low,
                     "ci_high": p.ci_high, "plans": [list(c) for c in p.plans]} for p in curve]

        return {"unit": self.unit, "predictor": self.predictor, "probe": self.probe, "problems": self.problems,
                "folds": self.folds, "adaptive": points(self.adaptive), "oracle": points(self.oracle),
                "baselines": {k: points(v) for k, v in self.baselines.items()}, "ratios": self.ratios,
                "width_matched": self.width_matched}


BASELINES = {  # fixed plans by the verdict's own strategy rules (`analysis.frontier.in_strategy`)
    "width_majority": lambda w, d, a: in_strategy(w, d, "width") and a == "majority",
    "width_best_of": lambda w, d, a: in_strategy(w, d, "width") and a == "best_of",
    "depth": lambda w, d, a: in_strategy(w, d, "depth"),
    "hybrid": lambda w, d, a: in_strategy(w, d, "hybrid"),
    "best_fixed": lambda w, d, a: True,
}


def _pareto(points: list[CurvePoint]) -> list[CurvePoint]:
    out: list[CurvePoint] = []
    for p in sorted(points, key=lambda p: (p.cost, -p.accuracy)):
        if not out or p.accuracy > out[-1].accuracy + 1e-12:
            out.append(p)
    return out


def needed_cost(curve: list[CurvePoint], accuracy: float) -> float:
    """The cost at which a Pareto curve first reaches `accuracy`, log-linear between its points;
    inf where it never does."""
    for i, p in enumerate(curve):
        if p.accuracy >= accuracy - 1e-12:
            if i == 0:
                return p.cost
            q = curve[i - 1]
            t = (accuracy - q.accuracy) / (p.accuracy - q.accuracy)
            return float(math.exp(math.log(q.cost) + t * (math.log(p.cost) - math.log(q.cost))))
    return math.inf


def _interval(values: np.ndarray) -> tuple[float, float]:
    return percentile_interval(values[bootstrap_indices(len(values), BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED)].mean(axis=1))


def _apply(level_plans: list[tuple[float, list[Choice]]], records: list[ProblemRecord], bins_of: list[int],
           which: str) -> list[tuple[np.ndarray, np.ndarray, list[Choice]]]:
    """Per level: the per-problem accuracy and cost of the plan each problem's bin gets."""
    out = []
    for _, plans in level_plans:
        chosen = [getattr(r, which)[plans[b]] for r, b in zip(records, bins_of)]
        out.append((np.array([c[0] for c in chosen]), np.array([c[1] for c in chosen]), plans))
    return out


def _curve(budgets: list[float], per_level: list[tuple[np.ndarray, np.ndarray, list[Choice]]]) -> list[CurvePoint]:
    curve = []
    for budget, (accuracy, cost, plans) in zip(budgets, per_level):
        low, high = _interval(accuracy)
        curve.append(CurvePoint(budget, float(cost.mean()), float(accuracy.mean()), low, high, plans))
    return curve


def _held_out(policy: Policy, records: list[ProblemRecord]) -> list[tuple[np.ndarray, np.ndarray, list[Choice]]]:
    oracle = policy.predictor == "oracle"
    values = [r.oracle if oracle else r.predictors[policy.predictor] for r in records]
    bins_of = [policy.bin_of(v) for v in values]
    return _apply([(lv.budget, lv.plans) for lv in policy.levels], records, bins_of, "fixed" if oracle else "adaptive")


def _finish(unit: str, predictor: str, probe: int, test: list[ProblemRecord], budgets: list[float],
            adaptive: list[tuple[np.ndarray, np.ndarray, list[Choice]]],
            oracle: list[tuple[np.ndarray, np.ndarray, list[Choice]]], folds: int = 0) -> Evaluation:
    baselines = {}
    for name, keep in BASELINES.items():
        points = []
        for cell in test[0].fixed:
            if not keep(*cell):
                continue
            values = np.array([r.fixed[cell] for r in test])
            if np.isfinite(values).all():
                low, high = _interval(values[:, 0])
                points.append(CurvePoint(math.nan, float(values[:, 1].mean()), float(values[:, 0].mean()),
                                         low, high, [cell]))
        if points:
            baselines[name] = _pareto(points)
    adaptive_curve = _curve(budgets, adaptive)
    ratios = []
    for point in adaptive_curve:
        row = {"budget": point.budget, "cost": point.cost, "accuracy": point.accuracy}
        for name, curve in baselines.items():
            row[name] = needed_cost(curve, point.accuracy) / point.cost
        width = [row[n] for n in ("width_majority", "width_best_of") if n in row]
        row["width"] = min(width) if width else math.nan
        ratios.append(row)
    adaptive_front = _pareto(adaptive_curve)
    width_front = _pareto([p for n in ("width_majority", "width_best_of") for p in baselines.get(n, [])])
    matched = []
    for point in width_front:
        needs = needed_cost(adaptive_front, point.accuracy)
        w, d, aggregator = point.plans[0]
        matched.append({"w": w, "d": d, "aggregator": aggregator, "cost": point.cost, "accuracy": point.accuracy,
                        "adaptive_cost": needs, "ratio": point.cost / needs})
    return Evaluation(unit, predictor, probe, len(test), adaptive_curve, _curve(budgets, oracle), baselines,
                      ratios, folds, matched)


def evaluate(policy: Policy, records: list[ProblemRecord]) -> Evaluation:
    """The policy on the problems it was not fitted on (an error if there are none), against
    gold-binned allocation at the same budgets: fitted on the policy's training problems where
    they are in `records`, else by 5-fold cross-validation over the held-out problems."""
    fitted = set(policy.fitted_on)
    test = [r for r in records if short_key(r.key) not in fitted]
    if not test:
        raise WidthdepthError("every problem here was used to fit the policy: evaluate it on other problems "
                              "(a run with another --seed, or `allocate fit --holdout`)")
    raise_if_incompatible(policy, test)
    budgets = [lv.budget for lv in policy.levels]
    train = [r for r in records if short_key(r.key) in fitted]
    if train:
        oracle = _held_out(fit_policy(train, "oracle", 0, policy.bins, policy.unit, budgets, oracle=True), test)
    elif len(test) >= 2:
        oracle = _cross_validated(test, "oracle", 0, policy.bins, policy.unit, min(5, len(test)), 0, budgets,
                                  oracle=True)
    else:
        oracle = []
    return _finish(policy.unit, policy.predictor, policy.probe, test, budgets, _held_out(policy, test), oracle)


def raise_if_incompatible(policy: Policy, records: list[ProblemRecord]) -> None:
    cells = set(records[0].adaptive)
    missing = [p for lv in policy.levels for p in lv.plans if p not in cells]
    if missing:
        w, d, a = missing[0]
        raise WidthdepthError(f"the policy's plan {w}x{d} {a} is outside this run's grid; evaluate it on a "
                              f"run of {policy.grid or 'the grid it was fitted on'}")


def split(records: list[ProblemRecord], holdout: float, seed: int) -> tuple[list[ProblemRecord], list[ProblemRecord]]:
    """(train, test): a problem is held out when its hash with `seed` falls below `holdout`."""
    if not 0.0 < holdout < 1.0:
        raise WidthdepthError(f"--holdout {holdout:g}: must be between 0 and 1 (a share of the problems)")
    test = [r for r in records if int(stable_hash(seed, r.key)[:8], 16) / 16 ** 8 < holdout]
    keys = {r.key for r in test}
    train = [r for r in records if r.key not in keys]
    if not train or not test:
        raise WidthdepthError(f"--holdout {holdout:g}: {len(records)} problems leave an empty split; "
                              "use more problems or --folds")
    return train, test


def fold_assignment(keys: list[str], folds: int, seed: int) -> list[int]:
    """The fold of each record, by problem: records of one problem (the same problem in runs with
    another seed) share a fold, so no problem is trained on and judged at once."""
    distinct = sorted(set(keys), key=lambda key: stable_hash(seed, key))
    fold_of_key = {key: n % folds for n, key in enumerate(distinct)}
    return [fold_of_key[key] for key in keys]


def cross_validate(records: list[ProblemRecord], predictor: str, probe: int, bins: int, unit: str,
                   folds: int, seed: int = 0) -> Evaluation:
    """k-fold: every problem is judged by a policy fitted on the other folds (same budget levels),
    and so is the gold-binned allocation."""
    problems = len({r.key for r in records})
    if folds < 2 or folds > problems:
        message = f"--folds {folds}: must be between 2 and the number of problems ({problems})"
        left_out = getattr(records, "left_out", 0)
        raise WidthdepthError(message + (f"; {left_out} more were left out because their grid is incomplete "
                                         "(rerun the grid's `widthdepth run` command to complete it)" if left_out else ""))
    budgets = budget_levels(records)
    adaptive = _cross_validated(records, predictor, probe, bins, unit, folds, seed, budgets)
    oracle = _cross_validated(records, "oracle", 0, bins, unit, folds, seed, budgets, oracle=True)
    return _finish(unit, predictor, probe, records, budgets, adaptive, oracle, folds)


def _cross_validated(records: list[ProblemRecord], predictor: str, probe: int, bins: int, unit: str, folds: int,
                     seed: int, budgets: list[float], oracle: bool = False) -> list[tuple[np.ndarray, np.ndarray, list[Choice]]]:
    fold_of = fold_assignment([r.key for r in records], folds, seed)
    out = [(np.zeros(len(records)), np.zeros(len(records)), []) for _ in budgets]
    for f in range(folds):
        test_idx = [i for i in range(len(records)) if fold_of[i] == f]
        train = [records[i] for i in range(len(records)) if fold_of[i] != f]
        policy = fit_policy(train, predictor, probe, bins, unit, budgets, oracle=oracle)
        for level, (accuracy, cost, _) in zip(out, _held_out(policy, [records[i] for i in test_idx])):
            level[0][test_idx], level[1][test_idx] = accuracy, cost
    return out


def save_evaluation(evaluation: Evaluation, folder: str | Path, policy_path: str = "") -> Path:
    path = Path(folder) / "allocation.json"
    data = evaluation.to_json()
    data["policy"] = policy_path

    path.write_text(json.dumps(json_safe(data), indent=1) + "\n")
    return path
