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
    """`_pick` of weighted votes for the first k of each order, for every k: (rows, n) labels. ids and
    weights are each row's own, already in the row's order. Drawing a chain changes only its answer's
    total (added in the same order as a running sum) and lowest chain, so that answer either overtakes
    the leader — more weight, or as much and a lower chain — or the leader stays."""
    rows, n = orders.shape
    if labels == 0:
        return np.full(orders.shape, -1)
    big = np.iinfo(np.int64).max
    votes, first = np.zeros((rows, labels)), np.full((rows, labels), big)
    leader = np.full(rows, -1)
    out = np.empty((rows, n), dtype=np.int64)
    totals, lows = votes.reshape(-1), first.reshape(-1)
    for k in range(n):
        at = np.flatnonzero(ids[:, k] >= 0)
        answer = ids[at, k]
        cell, lead = at * labels + answer, at * labels + np.maximum(leader[at], 0)
        total = totals[cell] = totals[cell] + weights[at, k]
        lowest = lows[cell] = np.minimum(lows[cell], orders[at, k])
        held = leader[at] >= 0
        lead_votes, lead_first = np.where(held, totals[lead], 0.0), np.where(held, lows[lead], big)
        ahead = (total > 0) & ((total > lead_votes) | ((total == lead_votes) & (lowest <= lead_first)))
        leader[at[ahead]] = answer[ahead]
        out[:, k] = leader
    return out


def confidence_curves(answers: Sequence[str | None], confidences: Sequence[float | None],
                      correct_answers: frozenset[str] | set[str], aggregators: Sequence[str], seed: int,
                      samples: int = SAMPLES) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """aggregator -> (estimated accuracy at k = 1..n, variance of that estimate)."""
    n = len(answers)
    if n == 0:  # no chain reached this round (a killed or failed run): nothing to estimate
        return {aggregator: (np.zeros(0), np.zeros(0)) for aggregator in aggregators}
    labels = sorted({a for a in answers if a is not None})
    valid = [a is not None and c is not None for a, c in zip(answers, confidences)]
    ids = np.array([[labels.index(a) if ok else -1 for a, ok in zip(answers, valid)]], dtype=np.int64)
    conf = np.array([[float(c) if ok else -math.inf for c, ok in zip(confidences, valid)]])
    right = np.array([[a in correct_answers for a in labels] + [False]])
    return {name: (mean[0], variance[0]) for name, (mean, variance) in
            confidence_batch(ids, conf, right, [seed], aggregators, samples).items()}


def confidence_batch(ids: np.ndarray, conf: np.ndarray, right: np.ndarray, seeds: Sequence[int],
                     aggregators: Sequence[str], samples: int = SAMPLES,
                     cells: int = 1 << 20) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`confidence_curves` for many problems of n chains each, at once: row r's chains have answer ids
    ids[r] (-1: no answer or no confidence) with confidences conf[r] (-inf there), right[r, i] says
    whether answer i is a gold one (its last column False, for -1), and seeds[r] draws its orders. Rows
    are taken `cells` array elements at a time. aggregator -> (means, variances), each (rows, n)."""
    rows, n = ids.shape
    out = {a: (np.zeros((rows, n)), np.zeros((rows, n))) for a in aggregators}
    # every chain gives one answer with a confidence: every subset picks it, every order is right or wrong
    unanimous = (ids == 0).all(axis=1)
    for mean, _ in out.values():
        mean[unanimous] = right[unanimous, :1]
    hopeless = ~right.any(axis=1)  # no answer is right: no subset is (means and variances stay 0)
    drawn = np.flatnonzero(~unanimous & ~hopeless)
    labels = right.shape[1]  # per part: rows x samples x chains (x labels, where chains are sorted per subset)
    step = max(1, cells // (samples * (n * labels if n > MASK_BITS else max(n, labels))))
    for start in range(0, len(drawn), step):
        part = drawn[start:start + step]
        for aggregator, (mean, variance) in _confidence_rows(ids[part], conf[part], right[part],
                                                             [seeds[i] for i in part], aggregators, samples).items():
            out[aggregator][0][part], out[aggregator][1][part] = mean, variance
    return out


def _confidence_rows(ids: np.ndarray, conf: np.ndarray, right: np.ndarray, seeds: Sequence[int],
                     aggregators: Sequence[str], samples: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rows, n = ids.shape
    labels = right.shape[1] - 1
    orders = np.concatenate([random_orders(n, samples, seed) for seed in seeds])  # (rows * samples, n)
    repeat = np.repeat(np.arange(rows), samples)
    ids_r, conf_r, right_r = ids[repeat], conf[repeat], right[repeat]
    valid_r = ids_r >= 0
    out = {}
    for aggregator in aggregators:
        hits = np.zeros((rows * samples, n), dtype=bool)
        if aggregator == "weighted":  # every prefix of every order at once: running totals and first chains
            choice = _prefix_weighted(orders, np.take_along_axis(ids_r, orders, axis=1),
                                      np.exp(np.take_along_axis(conf_r, orders, axis=1)), labels)
            hits = np.take_along_axis(right_r, np.where(choice < 0, labels, choice), axis=1)
        elif n <= MASK_BITS:
            hits = _filtered_hits(orders, ids, conf, right, samples, filter_share(aggregator))
        for k in range(1, n + 1) if aggregator != "weighted" and n > MASK_BITS else ():
            subset = np.sort(orders[:, :k], axis=1)  # chain order inside the subset
            keep = math.ceil(filter_share(aggregator) * k)
            ranked = np.take_along_axis(subset, np.lexsort((subset, -np.take_along_axis(conf_r, subset, axis=1)),
                                                           axis=1), axis=1)[:, :keep]
            kept = np.sort(ranked, axis=1)
            valid = np.take_along_axis(valid_r, kept, axis=1)
            choice = _pick(np.where(valid, np.take_along_axis(ids_r, kept, axis=1), -1), np.where(valid, 1.0, 0.0),
                           kept, labels)
            hits[:, k - 1] = right_r[np.arange(rows * samples), np.where(choice < 0, labels, choice)]
        hits = hits.reshape(rows, samples, n).astype(float)
        mean, variance = hits.mean(axis=1), hits.var(axis=1, ddof=1) / samples
        own = np.take_along_axis(right, np.where(ids < 0, labels, ids), axis=1)
        mean[:, 0], variance[:, 0] = own.mean(axis=1), 0.0  # one chain: its own answer, averaged exactly
        out[aggregator] = (mean, variance)
    return out


MASK_BITS = 52
"""Chains up to this many: `filtered` tracks each sample's sets as bit masks, one step per chain drawn."""


def _bit_index(bits: np.ndarray) -> np.ndarray:
    """The index of the single set bit of each value (uint64)."""
    return np.bitwise_count(bits - np.uint64(1)).astype(np.int64)


def _filtered_hits(orders: np.ndarray, ids: np.ndarray, conf: np.ndarray, right: np.ndarray, samples: int,
                   share: float) -> np.ndarray:
    """Whether `filtered:share` is right on the first k chains of each order, for every k: (rows, n).

    Chains are ranked once per problem by confidence (ties: the lower chain first), so the kept set of
    the first k chains is the ceil(share·k) best ranked among them. Drawing chain k either adds the best
    ranked chain not yet kept (the kept count grew) or swaps the drawn chain for the worst kept one (if
    it ranks better); votes per answer and each answer's lowest kept chain follow the one or two changes.
    The winner has the most votes, then the lowest chain, as `_pick` decides."""
    problems, n = ids.shape
    labels = right.shape[1] - 1
    rows = len(orders)
    row = np.arange(rows)
    of = np.repeat(np.arange(problems), samples)
    by_rank = np.lexsort((np.broadcast_to(np.arange(n), (problems, n)), -conf), axis=1)  # chain of each rank
    rank = np.argsort(by_rank, axis=1)
    label_of = np.where(ids < 0, labels, ids)  # `labels`: a column that never wins
    one = np.uint64(1)
    chain_masks = np.zeros((problems, labels + 1), dtype=np.uint64)  # per answer, its chains (bit = chain)
    for chain in range(n):
        chain_masks[np.arange(problems), label_of[:, chain]] |= one << np.uint64(chain)
    chain_masks = chain_masks[of]
    drawn_rank = np.take_along_axis(rank[of], orders, axis=1).astype(np.uint64)
    by_rank_r, label_r = by_rank[of], label_of[of]
    present = np.zeros(rows, dtype=np.uint64)
    kept = np.zeros(rows, dtype=np.uint64)  # bit = rank
    kept_chains = np.zeros(rows, dtype=np.uint64)  # bit = chain
    votes = np.zeros((rows, labels + 1), dtype=np.int64)
    key = np.full((rows, labels + 1), -1, dtype=np.int64)  # votes, then the lowest kept chain: larger wins
    leader = np.full(rows, labels)  # the answer with the largest key (`labels`: none, its key stays -1)
    hits = np.zeros((rows, n), dtype=bool)

    def move(at: np.ndarray, ranks: np.ndarray, step: int) -> np.ndarray:
        return _move(votes, key, kept_chains, chain_masks, at, by_rank_r, label_r, ranks, step, labels)

    previous = 0
    for k in range(1, n + 1):
        present |= one << drawn_rank[:, k - 1]
        keep = math.ceil(share * k)
        if keep > previous:
            enter = present & ~kept
            enter &= (~enter + one)  # its lowest bit: the best ranked not kept
            kept |= enter
            at, added, fallen = row, move(row, _bit_index(enter), +1), np.zeros(0, dtype=np.int64)
        else:
            worst = np.frexp(kept.astype(float))[1].astype(np.int64) - 1
            at = row[drawn_rank[:, k - 1].astype(np.int64) < worst]
            kept[at] = (kept[at] & ~(one << worst[at].astype(np.uint64))) | (one << drawn_rank[at, k - 1])
            dropped = move(at, worst[at], -1)
            added = move(at, drawn_rank[at, k - 1].astype(np.int64), +1)
            fallen = at[dropped == leader[at]]  # the leader lost a vote: any answer may lead now
        overtakes = key[at, added] > key[at, leader[at]]
        leader[at[overtakes]] = added[overtakes]
        leader[fallen] = key[fallen].argmax(axis=1)
        previous = keep
        hits[:, k - 1] = (key[row, leader] >= 0) & right[of, leader]
    return hits


def _move(votes: np.ndarray, key: np.ndarray, kept_chains: np.ndarray, chain_masks: np.ndarray, at: np.ndarray,
          by_rank: np.ndarray, label: np.ndarray, ranks: np.ndarray, step: int, labels: int) -> np.ndarray:
    """Rows `at` keep (+1) or drop (-1) the chain of rank `ranks`: its answer's votes and lowest kept chain.
    Returns the answers that changed. (Flat indices into the row-major arrays: faster than pairs.)"""
    n, width = by_rank.shape[1], labels + 1
    chain = by_rank.ravel()[at * n + ranks]
    answer = label.ravel()[at * n + chain]
    cell = at * width + answer
    bit = np.uint64(1) << chain.astype(np.uint64)
    kept_chains[at] = kept_chains[at] | bit if step > 0 else kept_chains[at] & ~bit
    counts = votes.reshape(-1)
    counts[cell] += step
    lowest = kept_chains[at] & chain_masks.reshape(-1)[cell]
    lowest &= (~lowest + np.uint64(1))
    count = counts[cell]
    key.reshape(-1)[cell] = np.where((count > 0) & (answer < labels), count * 64 + 63 - _bit_index(lowest), -1)
    return answer
