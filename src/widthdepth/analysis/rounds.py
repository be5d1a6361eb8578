"""One round of a grid trace, every problem at once: per problem and w = 1..N, the estimated accuracy
of each aggregator and the mean cost — what `surface` stacks into the whole surface.

The problems are grouped by how many chains reached the round (usually all N) and each group is
computed as arrays. The numbers are those of the exact estimators (`estimators`) applied problem by
problem, bit for bit where the arithmetic allows it: the majority curve depends only on the answers'
vote counts and which are right, so one curve serves every problem with the same counts; best-of with
one answer per score level is a product with rank weights whose sums are whole numbers (exact in any
order; ties between answers on one score go to the exact per-problem programme); coverage and the
costs use the same integer sums and divisions.

    accuracy, cost, variance = round_cells(trace.arrays, d, context)
    accuracy["majority"][:, w - 1]     # per problem, majority vote over w chains at round d
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from widthdepth.analysis.aggregators import CONFIDENCE_AGGREGATORS
from widthdepth.analysis.arrays import TraceArrays
from widthdepth.analysis.confidence import confidence_batch
from widthdepth.analysis.estimators import best_of_curve, expected_max_at_k, majority_curve, pass_at_k
from widthdepth.specs import stable_int

COST_COLUMNS = ("prompt_tokens", "generated_tokens", "flops", "serial_tokens", "wall_seconds",
                "verifier_tokens", "verifier_flops")
EXACT = 2 ** 53
"""Whole numbers below this are exact as floats."""


@dataclass(frozen=True)
class Context:
    """What a round's numbers depend on besides the arrays."""

    chains: int
    verifier: bool
    confidence: bool
    shares_prompt_prefix: bool
    n_params: int
    verifier_params: int


def round_cells(arrays: TraceArrays, d: int, context: Context) -> tuple[dict, dict, dict]:
    """(accuracy, cost, variance) at round d: aggregator or cost column -> (problems, N) values for
    w = 1..N (NaN where fewer than w chains reached the round); variance for the Monte Carlo aggregators."""
    problems, big_n = len(arrays.keys), context.chains
    names = ["majority", "coverage"] + (["best_of"] if context.verifier else []) + \
        (list(CONFIDENCE_AGGREGATORS) if context.confidence else [])
    accuracy = {a: np.full((problems, big_n), math.nan) for a in names}
    variance = {a: np.full((problems, big_n), math.nan) for a in CONFIDENCE_AGGREGATORS if a in names}
    cost = {c: np.full((problems, big_n), math.nan) for c in COST_COLUMNS}
    reached = arrays.reached[:, :, d - 1]
    counts = reached.sum(axis=1)
    totals = _chain_totals(arrays, d)
    for n in sorted(set(counts.tolist()) - {0}):
        rows = np.flatnonzero(counts == n)
        group = _Group(rows, n, d - 1, reached[rows])
        group.totals = {name: group.chains(values) for name, values in totals.items()}
        _accuracy(arrays, group, d, context, accuracy, variance)
        _costs(arrays, group, context, cost)
    return accuracy, cost, variance


class _Group:
    """The problems whose round d was reached by exactly n chains."""

    def __init__(self, rows: np.ndarray, n: int, at: int, mask: np.ndarray) -> None:
        self.rows, self.n, self.at, self.mask = rows, n, at, mask
        self.totals: dict[str, np.ndarray] = {}
        """Per reached chain, sums over rounds 1..d."""

    def chains(self, values: np.ndarray) -> np.ndarray:
        """(P, N) -> (rows, n): the reached chains' values, in chain order."""
        return values[self.rows][self.mask].reshape(len(self.rows), self.n)

    def pick(self, values: np.ndarray) -> np.ndarray:
        """(P, N, D) -> (rows, n): the reached chains' values at round d."""
        return self.chains(values[:, :, self.at])


def _chain_totals(arrays: TraceArrays, d: int) -> dict[str, np.ndarray]:
    """Per (problem, chain), sums over rounds 1..d: prompts (all, and after round 1), generated tokens,
    wall seconds, exact FLOPs (NaN where a round has none)."""
    upto = slice(0, d)
    return {"all_prompts": arrays.prompt_tokens[:, :, upto].sum(axis=2),
            "later_prompts": arrays.prompt_tokens[:, :, 1:d].sum(axis=2),
            "generated": arrays.completion_tokens[:, :, upto].sum(axis=2),
            "wall": _sequential_sum(arrays.wall_seconds[:, :, upto]),
            "exact_flops": _sequential_sum(arrays.flops[:, :, upto]),
            "first_prompt": arrays.prompt_tokens[:, :, 0]}


def _sequential_sum(values: np.ndarray) -> np.ndarray:
    """Sum over the last axis left to right, as Python's `sum` adds (a NaN anywhere gives NaN)."""
    out = np.zeros(values.shape[:-1])
    for i in range(values.shape[-1]):
        out = out + values[..., i]
    return out


def _accuracy(arrays: TraceArrays, group: _Group, d: int, context: Context, accuracy: dict, variance: dict) -> None:
    n, rows, width = group.n, group.rows, min(group.n, context.chains)
    answers, right, correct = group.pick(arrays.answer), group.pick(arrays.right), group.pick(arrays.correct)
    for r, row in enumerate(rows):
        accuracy["majority"][row, :width] = _majority(_profile(answers[r], right[r]))[1:width + 1]
        accuracy["coverage"][row, :width] = _coverage(n, int(correct[r].sum()))[:width]
    if "best_of" in accuracy:
        accuracy["best_of"][rows, :width] = _best_of(answers, right, group.pick(arrays.score))[:, 1:width + 1]
    if "weighted" in accuracy:
        confidence = group.pick(arrays.confidence)
        ids, labels = _local_ids(answers, np.isfinite(confidence))
        right_by_label = _right_by_label(ids, right, labels)
        seeds = [stable_int("confidence", arrays.keys[row], d) for row in rows]
        curves = confidence_batch(ids, np.where(ids >= 0, confidence, -math.inf), right_by_label, seeds,
                                  CONFIDENCE_AGGREGATORS)
        for aggregator, (mean, var) in curves.items():
            accuracy[aggregator][rows, :width] = mean[:, :width]
            variance[aggregator][rows, :width] = var[:, :width]


def _profile(answers: np.ndarray, right: np.ndarray) -> tuple:
    """What a problem's majority curve depends on: the chains, and the vote counts of right and wrong answers."""
    votes = Counter(answers[answers >= 0].tolist())
    is_right = {a: bool(r) for a, r in zip(answers.tolist(), right.tolist()) if a >= 0}
    return (len(answers), tuple(sorted(c for a, c in votes.items() if is_right[a])),
            tuple(sorted(c for a, c in votes.items() if not is_right[a])))


@lru_cache(maxsize=65536)
def _majority(profile: tuple) -> np.ndarray:
    n, right_counts, wrong_counts = profile
    answers: list[int | None] = []  # whole numbers: their sets iterate in one order in every process
    for label, count in enumerate(right_counts + wrong_counts):
        answers += [label] * count
    answers += [None] * (n - len(answers))
    return majority_curve(answers, set(range(len(right_counts))))


@lru_cache(maxsize=4096)
def _coverage(n: int, c: int) -> np.ndarray:
    return np.array([pass_at_k([True] * c + [False] * (n - c), k) for k in range(1, n + 1)])


@lru_cache(maxsize=256)
def _rank_weights(n: int) -> np.ndarray:
    """W[i, k] = C(n - i - 1, k - 1) / C(n, k) numerators: the subsets of size k whose top is rank i."""
    return np.array([[math.comb(n - i - 1, k - 1) if k >= 1 else 0 for k in range(n + 1)] for i in range(n)],
                    dtype=float)


@lru_cache(maxsize=256)
def _binomial_row(n: int) -> np.ndarray:
    return np.array([math.comb(n, k) for k in range(n + 1)], dtype=float)


def _best_of(answers: np.ndarray, right: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Best-of curves (rows, n + 1) of a group; rows where two answers share a score go problem by problem."""
    rows, n = answers.shape
    eligible = (answers >= 0) & np.isfinite(scores)
    order = np.argsort(np.where(eligible, -scores, math.inf), axis=1, kind="stable")
    s, a, e = (np.take_along_axis(x, order, axis=1) for x in (scores, answers, eligible))
    tied = (e[:, 1:] & e[:, :-1] & (s[:, 1:] == s[:, :-1]) & (a[:, 1:] != a[:, :-1])).any(axis=1)
    wins = (np.take_along_axis(right, order, axis=1) & e).astype(float)
    out = wins @ _rank_weights(n) / _binomial_row(n) if n <= 56 else np.full((rows, n + 1), math.nan)
    out[:, 0] = math.nan
    for r in np.flatnonzero(tied if n <= 56 else np.ones(rows, dtype=bool)):
        ids = [int(x) if x >= 0 else None for x in answers[r]]
        out[r] = best_of_curve(ids, [float(x) if math.isfinite(x) else None for x in scores[r]],
                               {int(x) for x, ok in zip(answers[r], right[r]) if ok and x >= 0})
    return out


def _local_ids(answers: np.ndarray, confident: np.ndarray) -> tuple[np.ndarray, int]:
    """Answer ids renumbered 0.. within each row (-1 where no answer or no confidence), and the most labels."""
    ids = np.full(answers.shape, -1, dtype=np.int64)
    most = 0
    for r in range(len(answers)):
        seen: dict[int, int] = {}
        for i, (a, ok) in enumerate(zip(answers[r].tolist(), confident[r].tolist())):
            if a >= 0:
                label = seen.setdefault(a, len(seen))
                ids[r, i] = label if ok else -1
        most = max(most, len(seen))
    return ids, most


def _right_by_label(ids: np.ndarray, right: np.ndarray, labels: int) -> np.ndarray:
    out = np.zeros((len(ids), labels + 1), dtype=bool)
    rows, cols = np.nonzero(ids >= 0)
    out[rows, ids[rows, cols]] = right[rows, cols]
    return out


def _costs(arrays: TraceArrays, group: _Group, context: Context, cost: dict) -> None:
    n, rows, t = group.n, group.rows, group.totals
    width = min(n, context.chains)
    ks = np.arange(1, width + 1)
    mean = (lambda v: (ks * v.sum(axis=1, keepdims=True)) / n)  # mean_at_k: k times the mean, k = 1..width
    generated = mean(t["generated"])
    if context.shares_prompt_prefix:
        prompt = t["first_prompt"][:, :1] + mean(t["later_prompts"])
    else:
        prompt = mean(t["all_prompts"])
    exact = t["exact_flops"]
    flops = np.where(np.isfinite(exact).all(axis=1, keepdims=True), (ks * _sequential_sum(exact)[:, None]) / n,
                     2.0 * float(context.n_params) * (prompt + generated))
    verifier = mean(group.pick(arrays.verifier_tokens))
    values = {"prompt_tokens": prompt, "generated_tokens": generated, "flops": flops,
              "serial_tokens": _expected_max(group.pick(arrays.serial_tokens), width),
              "wall_seconds": (ks * _sequential_sum(t["wall"])[:, None]) / n,
              "verifier_tokens": verifier, "verifier_flops": 2.0 * float(context.verifier_params) * verifier}
    for column, value in values.items():
        cost[column][rows, :width] = value


def _expected_max(serial: np.ndarray, width: int) -> np.ndarray:
    """expected_max_at_k for k = 1..width, per row: whole-number sums by rank where they stay exact."""
    rows, n = serial.shape
    ranked = -np.sort(-serial, axis=1)
    weights = _rank_weights(n)[:, 1:width + 1].astype(np.int64)
    if n <= 56 and ranked.max(initial=0) * weights.sum(axis=0).max(initial=0) < EXACT:
        return (ranked @ weights) / _binomial_row(n)[1:width + 1]
    return np.array([[expected_max_at_k(row.tolist(), k) for k in range(1, width + 1)] for row in serial])
