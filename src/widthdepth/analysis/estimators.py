"""Unbiased estimators over subsets: what w of the N chains of one run would have scored.

Each function takes one problem's N attempts (at one round) and a subset size k, and returns the
exact average over all C(n, k) subsets of the attempts that exist (failed attempts are dropped
first; NaN where fewer than k remain). Chains are exchangeable, so averaging over subsets also
averages over the order of the chains: ties that the aggregators break by chain order are split
evenly here, which is their average over orders.

- `pass_at_k` (coverage): 1 - C(n-c, k) / C(n, k).
- `best_of_at_k` (verifier best-of): the rank formula — the subsets whose best-scored attempt lies
  in a group of equal scores at ranks i..j number C(n-i+1, k) - C(n-j, k); the group's mean
  correctness is what such a subset scores. Attempts without an answer or score rank last and score 0.
- `majority_at_k`: exact, by dynamic programming over answer counts (multivariate hypergeometric):
  for each correct answer class with t votes in the subset, count the ways the other classes stay
  at or below t, tracking how many tie at t (a tie of T classes scores 1/T).
- `expected_max_at_k`: E[max of k values] by the rank formula (serial tokens of the longest chain).
- `*_with_fixed`: the same with some attempts always in the subset (an adaptive plan's probe) and
  k drawn from the others; `majority_at_k` and `best_of_at_k` are these with nothing fixed.

    >>> pass_at_k([True, False, False, False], 2)
    0.5
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def _comb(n: int, k: int) -> int:
    return math.comb(n, k) if 0 <= k <= n else 0


def pass_at_k(correct: Sequence[bool], k: int) -> float:
    n, c = len(correct), sum(bool(x) for x in correct)
    if k < 1 or n < k:
        return math.nan
    return 1.0 - _comb(n - c, k) / _comb(n, k)


def best_of_at_k(scores: Sequence[float | None], correct: Sequence[bool], k: int) -> float:
    return best_of_with_fixed([], [], scores, correct, k)


def best_of_with_fixed(fixed_scores: Sequence[float | None], fixed_correct: Sequence[bool],
                       scores: Sequence[float | None], correct: Sequence[bool], k: int) -> float:
    """Verifier best-of over the fixed attempts plus a random k-subset of the others: the expected
    correctness of the best-scored attempt, ties split evenly (unscored attempts rank last, score 0)."""
    n = len(scores)
    if k < 0 or n < k or (k == 0 and not fixed_scores):
        return math.nan
    top = max((s for s in fixed_scores if s is not None), default=-math.inf)
    top_n = sum(1 for s in fixed_scores if s is not None and s == top)
    top_correct = sum(bool(c) for s, c in zip(fixed_scores, fixed_correct) if s is not None and s == top)
    ranked = sorted(((-math.inf if s is None else s, bool(c)) for s, c in zip(scores, correct)), key=lambda x: -x[0])
    total, i = 0.0, 0
    while i < n:  # score levels of the others, best first
        j = i
        while j + 1 < n and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        level, g = ranked[i][0], j - i + 1
        h = sum(c for _, c in ranked[i:j + 1])
        if level == -math.inf:
            break
        if level > top:  # the subset's best lies in this group: C(n-i, k) - C(n-j-1, k) subsets
            total += (_comb(n - i, k) - _comb(n - j - 1, k)) * h / g
        elif level == top:  # tied with the fixed best: uniform over the fixed and the drawn tied ones
            for drawn in range(1, min(g, k) + 1):
                total += _comb(g, drawn) * _comb(n - j - 1, k - drawn) * (top_correct + drawn * h / g) / (top_n + drawn)
        else:
            break
        i = j + 1
    if top > -math.inf:  # nothing drawn at or above the fixed best: the fixed best group wins
        total += _comb(sum(1 for s, _ in ranked if s < top), k) * top_correct / top_n
    return total / _comb(n, k)


def majority_at_k(answers: Sequence[str | None], correct_answers: set[str] | frozenset[str], k: int) -> float:
    """Expected accuracy of majority vote over a random k-subset; None answers abstain."""
    return majority_with_fixed([], answers, correct_answers, k)


def majority_with_fixed(fixed: Sequence[str | None], answers: Sequence[str | None],
                        correct_answers: set[str] | frozenset[str], k: int) -> float:
    """Majority vote over the fixed answers plus a random k-subset of the others (exact): for each
    correct answer class with t drawn votes, count the ways every other class stays at or below its
    total, tracking how many tie (a tie of T classes scores 1/T; no votes at all scores 0)."""
    n = len(answers)
    if k < 0 or n < k or (k == 0 and not fixed):
        return math.nan
    counts = Counter(a for a in answers if a is not None)
    fixed_counts = Counter(a for a in fixed if a is not None)
    abstain = n - sum(counts.values())
    total = 0.0
    for answer in set(counts) | set(fixed_counts):
        if answer not in correct_answers:
            continue
        m_c, f_c = counts.get(answer, 0), fixed_counts.get(answer, 0)
        others = [(counts.get(a, 0), fixed_counts.get(a, 0)) for a in set(counts) | set(fixed_counts) if a != answer]
        for t in range(max(0, 1 - f_c), min(m_c, k) + 1):
            votes = f_c + t
            table = _others_table(others, votes, k - t)
            if table is None:
                continue  # a class beats this one on its fixed votes alone
            for s in range(k - t + 1):
                rest = k - t - s  # filled with abstentions
                if rest > abstain:
                    continue
                for e, ways in enumerate(table[s]):
                    if ways:
                        total += _comb(m_c, t) * ways * _comb(abstain, rest) / (e + 1)
    return total / _comb(n, k)


def _others_table(others: list[tuple[int, int]], votes: int, limit: int) -> list[list[int]] | None:
    """table[s][e]: ways to draw s items from the other classes (drawn m, fixed f each) so that every
    class ends at or below `votes`, with e classes exactly at it. None when a fixed count alone is over."""
    table = [[0] * (len(others) + 1) for _ in range(limit + 1)]
    table[0][0] = 1
    for m, f in others:
        if f > votes:
            return None
        new = [[0] * (len(others) + 1) for _ in range(limit + 1)]
        for s in range(limit + 1):
            for e in range(len(others) + 1):
                ways = table[s][e]
                if not ways:
                    continue
                for x in range(min(m, votes - f, limit - s) + 1):
                    new[s + x][e + (f + x == votes)] += ways * _comb(m, x)
        table = new
    return table


def expected_max_at_k(values: Sequence[float], k: int) -> float:
    n = len(values)
    if k < 1 or n < k:
        return math.nan
    ranked = sorted(values, reverse=True)
    return sum(v * _comb(n - i - 1, k - 1) for i, v in enumerate(ranked)) / _comb(n, k)


def expected_max_with_fixed(fixed_max: float, values: Sequence[float], k: int) -> float:
    """E[max(fixed_max, max of a random k-subset of values)]; fixed_max alone when k = 0."""
    n = len(values)
    if k < 0 or n < k:
        return math.nan
    if k == 0:
        return fixed_max
    ranked = sorted(values, reverse=True)
    return sum(max(v, fixed_max) * _comb(n - i - 1, k - 1) for i, v in enumerate(ranked)) / _comb(n, k)


def mean_at_k(values: Sequence[float], k: int) -> float:
    """Sum over a random k-subset, on average: k times the mean (NaN where n < k)."""
    n = len(values)
    if k < 1 or n < k:
        return math.nan
    return k * sum(values) / n
