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
    n = len(scores)
    if k < 1 or n < k:
        return math.nan
    ranked = sorted(((-math.inf if s is None else s, bool(c)) for s, c in zip(scores, correct)),
                    key=lambda x: -x[0])
    total, i = 0.0, 0
    while i < n:
        j = i
        while j + 1 < n and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        group = ranked[i:j + 1]
        ways = _comb(n - i, k) - _comb(n - j - 1, k)  # best item of the subset falls in ranks i..j (0-based)
        if ranked[i][0] != -math.inf:
            total += ways * sum(c for _, c in group) / len(group)
        i = j + 1
    return total / _comb(n, k)


def majority_at_k(answers: Sequence[str | None], correct_answers: set[str] | frozenset[str], k: int) -> float:
    """Expected accuracy of majority vote over a random k-subset; None answers abstain."""
    n = len(answers)
    if k < 1 or n < k:
        return math.nan
    counts = Counter(a for a in answers if a is not None)
    abstain = n - sum(counts.values())
    total = 0.0
    for answer, m_c in counts.items():
        if answer not in correct_answers:
            continue
        others = [m for a, m in counts.items() if a != answer]
        for t in range(1, min(m_c, k) + 1):
            ways_c = _comb(m_c, t)
            # table[s][e]: ways to pick s items from the other classes, each class <= t, e classes == t
            table = _others_table(others, t, k - t)
            for s in range(0, k - t + 1):
                rest = k - t - s  # filled with abstentions
                if rest > abstain:
                    continue
                ways_rest = _comb(abstain, rest)
                for e, ways in enumerate(table[s]):
                    if ways:
                        total += ways_c * ways * ways_rest / (e + 1)
    return total / _comb(n, k)


def _others_table(others: list[int], t: int, limit: int) -> list[list[int]]:
    table = [[0] * (len(others) + 1) for _ in range(limit + 1)]
    table[0][0] = 1
    for m in others:
        new = [[0] * (len(others) + 1) for _ in range(limit + 1)]
        for s in range(limit + 1):
            for e in range(len(others) + 1):
                ways = table[s][e]
                if not ways:
                    continue
                for x in range(0, min(m, t, limit - s) + 1):
                    new[s + x][e + (x == t)] += ways * _comb(m, x)
        table = new
    return table


def expected_max_at_k(values: Sequence[float], k: int) -> float:
    n = len(values)
    if k < 1 or n < k:
        return math.nan
    ranked = sorted(values, reverse=True)
    return sum(v * _comb(n - i - 1, k - 1) for i, v in enumerate(ranked)) / _comb(n, k)


def mean_at_k(values: Sequence[float], k: int) -> float:
    """Sum over a random k-subset, on average: k times the mean (NaN where n < k)."""
    n = len(values)
    if k < 1 or n < k:
        return math.nan
    return k * sum(values) / n
