"""Confidence-aware aggregators on the surface: `weighted` and `filtered:η` (`analysis.aggregators`) have
no closed form over k-subsets, so a cell's accuracy is a Monte Carlo average over random k-subsets of a
problem's chains — the first k of `SAMPLES` random orders, the same orders for every k — with the
estimator's own standard error beside it. It is unbiased for the exact average over all k-subsets
(each order's first k are a uniform k-subset); at k = 1 (each chain's own answer) it is the exact
average, and at k = n every order gives the whole set, so it is exact there too.

    mean, variance = confidence_curves(answers, confidences, gold, ("weighted",), seed=7)["weighted"]
    mean[k - 1]     # estimated accuracy of weighted voting over k chains

The vectorised rules below reproduce `aggregators.weighted` and `aggregators.filtered` (ties to the
answer of the lowest chain in the subset); `tests/test_confidence.py` checks them against those
functions on the same subsets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from widthdepth.analysis.aggregators import filter_share

SAMPLES = 128


def random_orders(n: int, samples: int, seed: int) -> np.ndarray:
    """`samples` random orders of range(n), one per row."""
    return np.argsort(np.random.default_rng(seed).random((samples, n)), axis=1)


def _pick(ids: np.ndarray, weights: np.ndarray, positions: np.ndarray, labels: int) -> np.ndarray:
    """Per row, the label with the largest total weight; ties to the smallest position; -1 where none.
    ids, weights, positions: (rows, k); ids -1 abstain."""
    if labels == 0:
        return np.full(len(ids), -1)
    onehot = ids[..., None] == np.arange(labels)
    votes = (onehot * weights[..., None]).sum(axis=1)
    first = np.where(onehot, positions[..., None], np.iinfo(np.int64).max).min(axis=1)
    top = votes.max(axis=1, initial=0.0)
    tied = (votes == top[:, None]) & (top[:, None] > 0)
    choice = np.where(tied, first, np.iinfo(np.int64).max).argmin(axis=1)
    return np.where(tied.any(axis=1), choice, -1)


def _prefix_weighted(orders: np.ndarray, ids: np.ndarray, weights: np.ndarray, labels: int) -> np.ndarray:
    """`_pick` of weighted votes for the first k of each order, for every k at once: (rows, n) labels."""
    if labels == 0:
        return np.full(orders.shape, -1)
    onehot = ids[orders][..., None] == np.arange(labels)  # (rows, n, labels)
    votes = np.cumsum(onehot * weights[orders][..., None], axis=1)
    big = np.iinfo(np.int64).max
    first = np.minimum.accumulate(np.where(onehot, orders[..., None], big), axis=1)
    top = votes.max(axis=2)
    tied = (votes == top[..., None]) & (top[..., None] > 0)
    choice = np.where(tied, first, big).argmin(axis=2)
    return np.where(tied.any(axis=2), choice, -1)


def confidence_curves(answers: Sequence[str | None], confidences: Sequence[float | None],
                      correct_answers: frozenset[str] | set[str], aggregators: Sequence[str], seed: int,
                      samples: int = SAMPLES) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """aggregator -> (estimated accuracy at k = 1..n, variance of that estimate)."""
    n = len(answers)
    if n == 0:  # no chain reached this round (a killed or failed run): nothing to estimate
        return {aggregator: (np.zeros(0), np.zeros(0)) for aggregator in aggregators}
    labels = sorted({a for a in answers if a is not None})
    valid = np.array([a is not None and c is not None for a, c in zip(answers, confidences)], dtype=bool)
    ids = np.array([labels.index(a) if ok else -1 for a, ok in zip(answers, valid)], dtype=np.int64)
    conf = np.array([float(c) if ok else -math.inf for c, ok in zip(confidences, valid)])
    right = np.array([a in correct_answers for a in labels] + [False])  # index -1: no answer
    orders = random_orders(n, samples, seed)
    out = {}
    for aggregator in aggregators:
        hits = np.zeros((samples, n))
        if aggregator == "weighted":  # every prefix of every order at once: running totals and first chains
            hits = right[_prefix_weighted(orders, ids, np.exp(conf), len(labels))]
        for k in range(1, n + 1) if aggregator != "weighted" else ():
            subset = np.sort(orders[:, :k], axis=1)  # chain order inside the subset
            if aggregator == "weighted":
                choice = _pick(ids[subset], np.exp(conf[subset]), subset, len(labels))
            else:
                keep = math.ceil(filter_share(aggregator) * k)
                ranked = np.take_along_axis(subset, np.lexsort((subset, -conf[subset]), axis=1), axis=1)[:, :keep]
                kept = np.sort(ranked, axis=1)
                choice = _pick(np.where(valid[kept], ids[kept], -1), np.where(valid[kept], 1.0, 0.0), kept, len(labels))
            hits[:, k - 1] = right[choice]
        mean, variance = hits.mean(axis=0), hits.var(axis=0, ddof=1) / samples
        mean[0], variance[0] = right[ids].mean(), 0.0  # one chain: its own answer, averaged exactly
        out[aggregator] = (mean, variance)
    return out
