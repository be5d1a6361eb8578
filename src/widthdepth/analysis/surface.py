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
import warnings
from dataclasses import dataclass, field

import numpy as np

from widthdepth.analysis.aggregators import AGGREGATORS, CONFIDENCE_AGGREGATORS
from widthdepth.analysis.confidence import confidence_curves
from widthdepth.analysis.estimators import (best_of_curve, bootstrap_indices, expected_max_at_k, majority_curve, mean_at_k,
                                            pass_at_k, percentile_interval)
from widthdepth.analysis.traces import GridTrace, ProblemTrace
from widthdepth.cost import attempt_flops
from widthdepth.specs import stable_int


COST_COLUMNS = ("prompt_tokens", "generated_tokens", "flops", "serial_tokens", "wall_seconds",
                "verifier_tokens", "verifier_flops")
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
            self._intervals[key] = self.interval(self.accuracy[key])
        return self._intervals[key]

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
        return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan

    def bootstrap_means(self, values: np.ndarray) -> np.ndarray:
        """The mean of `values` (one per problem, NaN where undefined) over every bootstrap resample."""
        with warnings.catch_warnings():  # a resample of only undefined problems has no mean: dropped below
            warnings.simplefilter("ignore", category=RuntimeWarning)
            means = np.nanmean(values[self.resamples], axis=1)
        return means[np.isfinite(means)]

    def interval(self, values: np.ndarray) -> tuple[float, float]:
        if not np.isfinite(values).any():
            return math.nan, math.nan
        means = self.bootstrap_means(values)
        return percentile_interval(means)

    def rows(self) -> list[dict]:
        if self._rows is None:
            self._rows = self._make_rows()
        return self._rows

    def _make_rows(self) -> list[dict]:
        out = []
        t = self.trace
        for (w, d), costs in self.cost.items():
            cost_means = {c: float(np.nanmean(v)) if np.isfinite(v).any() else math.nan for c, v in costs.items()}
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
    first = trace.problems[0].structure if trace.problems else {}
    for key in (("size", "L") if first.get("family") == "search" else ("L", "size")):
        if isinstance(first.get(key), (int, float)):
            return float(first[key])
    return math.nan


def _round_attempts(problem: ProblemTrace, d: int) -> list[list]:
    """The chains that reached round d without a failure, each cut to its first d rounds."""
    return [chain[:d] for chain in problem.chains if len(chain) >= d and not any(a.failed for a in chain[:d])]


def confident(trace: GridTrace) -> bool:
    """Every attempt of the trace reports its confidence: the confidence aggregators apply."""
    attempts = [a for p in trace.problems for c in p.chains for a in c if not a.failed]
    return bool(attempts) and all(a.confidence is not None for a in attempts)


def _confidence_cells(trace: GridTrace, problem: ProblemTrace, d: int, final: list, accuracy: dict,
                      variance: dict) -> None:
    curves = confidence_curves([a.final_answer for a in final], [a.confidence for a in final], problem.gold,
                               CONFIDENCE_AGGREGATORS, seed=stable_int("confidence", problem.key, d))
    for aggregator, (mean, var) in curves.items():
        for w in range(1, trace.plan.chains + 1):
            accuracy[(w, aggregator)] = float(mean[w - 1]) if w <= len(final) else math.nan
            variance[(w, aggregator)] = float(var[w - 1]) if w <= len(final) else math.nan


def _problem_cells(trace: GridTrace, problem: ProblemTrace, d: int, with_confidence: bool = False) -> tuple[dict, dict]:
    chains = _round_attempts(problem, d)
    final = [c[-1] for c in chains]
    answers = [a.final_answer for a in final]
    correct = [bool(a.correct) for a in final]
    verifications = [trace.verifications.get(a.key) for a in final]
    scores = [v.score if v else None for v in verifications]
    accuracy, cost, variance = {}, {}, {}
    if with_confidence:
        _confidence_cells(trace, problem, d, final, accuracy, variance)
    # per-chain totals up to round d (they do not depend on w)
    later_prompts = [sum(a.prompt_tokens for a in c[1:]) for c in chains]
    all_prompts = [sum(a.prompt_tokens for a in c) for c in chains]
    generated_per_chain = [sum(a.completion_tokens for a in c) for c in chains]
    wall_per_chain = [sum(a.wall_seconds for a in c) for c in chains]
    exact = [sum(a.flops for a in c) for c in chains if all(a.flops is not None for a in c)]
    serial = [a.serial_tokens for a in final]
    verifier_per_chain = [v.prompt_tokens + v.completion_tokens if v else 0 for v in verifications]
    first_prompt = chains[0][0].prompt_tokens if chains else 0
    majority = majority_curve(answers, problem.gold)
    best = best_of_curve(answers, scores, problem.gold) if trace.verifier else None
    for w in range(1, trace.plan.chains + 1):
        accuracy[(w, "majority")] = float(majority[w]) if w < len(majority) else math.nan
        accuracy[(w, "coverage")] = pass_at_k(correct, w)
        if best is not None:
            accuracy[(w, "best_of")] = float(best[w]) if w < len(best) else math.nan
        if trace.shares_prompt_prefix:
            prompt = (first_prompt if len(chains) >= w else math.nan) + mean_at_k(later_prompts, w)
        else:
            prompt = mean_at_k(all_prompts, w)
        generated = mean_at_k(generated_per_chain, w)
        verifier_tokens = mean_at_k(verifier_per_chain, w)
        flops = mean_at_k(exact, w) if chains and len(exact) == len(chains) else \
            attempt_flops(trace.n_params, prompt + generated)
        cost[w] = {
            "prompt_tokens": prompt, "generated_tokens": generated, "flops": flops,
            "serial_tokens": expected_max_at_k(serial, w),
            "wall_seconds": mean_at_k(wall_per_chain, w),
            "verifier_tokens": verifier_tokens,
            "verifier_flops": attempt_flops(trace.verifier_params, verifier_tokens),
        }
    return accuracy, cost, variance


def estimate_trace_surface(trace: GridTrace) -> TraceSurface:
    surface = TraceSurface(trace)
    n_problems = len(trace.problems)
    surface.resamples = bootstrap_indices(n_problems, BOOTSTRAP_SAMPLES, BOOTSTRAP_SEED)
    aggregators = surface.aggregators
    with_confidence = CONFIDENCE_AGGREGATORS[0] in aggregators
    for d in range(1, trace.plan.rounds + 1):
        per_problem = [_problem_cells(trace, p, d, with_confidence) for p in trace.problems]
        for w in range(1, trace.plan.chains + 1):
            for aggregator in aggregators:
                surface.accuracy[(w, d, aggregator)] = np.array(
                    [acc[(w, aggregator)] for acc, _, _ in per_problem], dtype=float)
                if aggregator in CONFIDENCE_AGGREGATORS:
                    surface.mc_variance[(w, d, aggregator)] = np.array(
                        [var[(w, aggregator)] for _, _, var in per_problem], dtype=float)
            surface.cost[(w, d)] = {c: np.array([cost[w][c] for _, cost, _ in per_problem], dtype=float)
                                    for c in COST_COLUMNS}
    return surface


@dataclass
class Surface:
    traces: list[TraceSurface]

    def frame(self):  # -> pandas.DataFrame
        import pandas as pd

        return pd.DataFrame([row for t in self.traces for row in t.rows()])


def estimate_surface(traces: list[GridTrace]) -> Surface:
    return Surface([estimate_trace_surface(t) for t in traces])
