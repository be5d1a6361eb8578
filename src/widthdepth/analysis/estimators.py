"""Unbiased estimators over subsets: what w of the N chains of one run would have scored.

Each function takes one problem's N attempts (at one round) and a subset size k, and returns what
the run's own aggregator (`widthdepth.analysis.aggregators`) scores on a random k-subset of them in
a random chain order, exactly averaged over all subsets and orders (failed attempts are dropped
first; NaN where fewer than k remain). Where the aggregator breaks a tie by chain order, the
average over orders is what is computed, so a cell's estimate equals, case by case, the mean of the
runtime rule over every way the run could have ordered its chains.

- `pass_at_k` (coverage): 1 - C(n-c, k) / C(n, k).
- `majority_at_k`: the most frequent answer; a tie goes to the answer seen first (over orders: each
  tied answer equally often). Exact by dynamic programming over answer counts (multivariate
  hypergeometric): for each correct answer with t votes in the subset, count the ways every other
  answer stays at or below t, tracking how many tie.
- `best_of_at_k`: the highest verifier score; a tie on score goes to the answer with more votes in
  the whole subset, then to the lowest chain (over orders: in proportion to the tied attempts). Per
  score level S taken as the subset's top: the attempts above S are out, and a dynamic programme over
  the other answers that reach S counts the ways each stays at or below the winner's votes, tracking
  the tied attempts. Attempts without an answer or a score never win.
- `expected_max_at_k`: E[max of k values] by the rank formula (serial tokens of the longest chain).
- `*_with_fixed`: the same with some attempts always in the subset and ahead of the drawn ones in
  chain order, in the order given (an adaptive plan's probe: chains 0..p-1), and k drawn from the
  others. `majority_at_k` and `best_of_at_k` are these with nothing fixed.
- `*_curve`: every k = 0..n at once (what the surface needs), at the cost of about one k.

    >>> pass_at_k([True, False, False, False], 2)
    0.5
    >>> best_of_at_k([None, "0", "1", None, "0"], [None, 1, 1, None, 0], {"0"}, 5)  # "0" has more votes
    1.0
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from functools import lru_cache

import numpy as np


def _comb(n: int, k: int) -> int:
    return math.comb(n, k) if 0 <= k <= n else 0


def _binomials(n: int) -> np.ndarray:
    """C(n, j) for j = 0..n as floats."""
    return np.array([math.comb(n, j) for j in range(n + 1)], dtype=float)


def _normalise(numerators: np.ndarray, n: int, allow_zero: bool) -> np.ndarray:
    """Divide the count of winning (subset, order) weights by C(n, k); NaN where k is not a size."""
    out = numerators[: n + 1] / _binomials(n)
    if not allow_zero:
        out[0] = math.nan
    return out


def pass_at_k(correct: Sequence[bool], k: int) -> float:
    n, c = len(correct), sum(bool(x) for x in correct)
    if k < 1 or n < k:
        return math.nan
    return 1.0 - _comb(n - c, k) / _comb(n, k)


# -- majority ------------------------------------------------------------------------------------------

def majority_at_k(answers: Sequence[str | None], correct_answers: set[str] | frozenset[str], k: int) -> float:
    """Expected accuracy of majority vote over a random k-subset; None answers abstain."""
    return majority_with_fixed([], answers, correct_answers, k)


def majority_with_fixed(fixed: Sequence[str | None], answers: Sequence[str | None],
                        correct_answers: set[str] | frozenset[str], k: int) -> float:
    """Majority vote over the fixed answers (first, in their order) plus a random k-subset of the
    others in random order (exact)."""
    return _at(_majority_cached(tuple(answers), frozenset(correct_answers), tuple(fixed)), k)


@lru_cache(maxsize=4096)
def _majority_cached(answers: tuple, correct_answers: frozenset, fixed: tuple) -> np.ndarray:
    """One curve serves every k: callers asking k by k (adaptive allocation's cells) reuse it."""
    return majority_curve(answers, correct_answers, fixed)


def majority_curve(answers: Sequence[str | None], correct_answers: set[str] | frozenset[str],
                   fixed: Sequence[str | None] = ()) -> np.ndarray:
    """`majority_with_fixed` for every k = 0..n (NaN at k = 0 when nothing is fixed)."""
    n = len(answers)
    counts = Counter(a for a in answers if a is not None)
    fixed_counts = Counter(a for a in fixed if a is not None)
    first = _first_positions(fixed)
    abstain = n - sum(counts.values())
    by_drawn = np.zeros(n + 1)  # weight of winning subsets by how many non-abstaining attempts they draw
    for answer in (set(counts) | set(fixed_counts)) & set(correct_answers):
        m_a, f_a = counts.get(answer, 0), fixed_counts.get(answer, 0)
        others = [_Rival(counts.get(b, 0), 0, fixed_counts.get(b, 0), first.get(b)) for b in
                  set(counts) | set(fixed_counts) if b != answer]
        for t in range(max(0, 1 - f_a), m_a + 1):
            table = _rival_table(others, f_a + t, first.get(answer), level=False)
            for (s, e), ways in table.items():
                win = 1.0 if answer in first else 1.0 / (e + 1)  # e tied answers, none seen in the fixed part
                by_drawn[t + s] += math.comb(m_a, t) * ways * win
    return _normalise(np.convolve(by_drawn, _binomials(abstain))[: n + 1], n, allow_zero=bool(fixed))


# -- verifier best-of ----------------------------------------------------------------------------------

def best_of_at_k(answers: Sequence[str | None], scores: Sequence[float | None],
                 correct_answers: set[str] | frozenset[str], k: int) -> float:
    """Expected accuracy of verifier best-of (`aggregators.best_of`) over a random k-subset."""
    return best_of_with_fixed([], [], answers, scores, correct_answers, k)


def best_of_with_fixed(fixed_answers: Sequence[str | None], fixed_scores: Sequence[float | None],
                       answers: Sequence[str | None], scores: Sequence[float | None],
                       correct_answers: set[str] | frozenset[str], k: int) -> float:
    """Verifier best-of over the fixed attempts (first, in their order) plus a random k-subset of the
    others in random order (exact)."""
    return _at(_best_of_cached(tuple(answers), tuple(scores), frozenset(correct_answers), tuple(fixed_answers),
                               tuple(fixed_scores)), k)


@lru_cache(maxsize=4096)
def _best_of_cached(answers: tuple, scores: tuple, correct_answers: frozenset, fixed_answers: tuple,
                    fixed_scores: tuple) -> np.ndarray:
    return best_of_curve(answers, scores, correct_answers, fixed_answers, fixed_scores)


def best_of_curve(answers: Sequence[str | None], scores: Sequence[float | None],
                  correct_answers: set[str] | frozenset[str], fixed_answers: Sequence[str | None] = (),
                  fixed_scores: Sequence[float | None] = ()) -> np.ndarray:
    """`best_of_with_fixed` for every k = 0..n (NaN at k = 0 when nothing is fixed)."""
    n = len(answers)
    fixed = [(a, _score(s)) for a, s in zip(fixed_answers, fixed_scores)]
    pool = [(a, _score(s)) for a, s in zip(answers, scores)]
    at_level: dict[float, list[str]] = {}  # the scored attempts' answers, by score
    for a, s in pool:
        if a is not None and s is not None:
            at_level.setdefault(s, []).append(a)
    if not fixed and all(len(set(answers_at)) == 1 for answers_at in at_level.values()):
        return _best_of_by_rank(at_level, n, correct_answers)
    fixed_top = max((s for a, s in fixed if a is not None and s is not None), default=None)
    levels = {s for s in at_level if fixed_top is None or s > fixed_top}
    if fixed_top is not None:
        levels.add(fixed_top)
    fixed_counts = Counter(a for a in fixed_answers if a is not None)
    numerators = np.zeros(n + 1)
    for level in levels:  # the level taken as the subset's top score
        at_top = [i for i, (a, s) in enumerate(pool) if a is not None and s is not None and s == level]
        above = {i for i, (a, s) in enumerate(pool) if a is not None and s is not None and s > level}
        g = Counter(pool[i][0] for i in at_top)
        below = Counter(a for i, (a, s) in enumerate(pool) if a is not None and i not in above and
                        (s is None or s < level))
        first = _first_positions([a if s is not None and s == level else None for a, s in fixed]) \
            if level == fixed_top else {}
        candidates = set(g) | set(first)
        filler = n - len(above) - sum(g[c] + below[c] for c in candidates)
        by_drawn = np.zeros(n + 1)
        for answer in candidates & set(correct_answers):
            _best_of_answer(answer, candidates, g, below, fixed_counts, first, by_drawn)
        numerators += np.convolve(by_drawn, _binomials(filler))[: n + 1]
    return _normalise(numerators, n, allow_zero=bool(fixed_answers))


def _score(score: float | None) -> float | None:
    """A NaN score is no score, as in `aggregators.best_of`."""
    return None if score is None or score != score else score


def _best_of_by_rank(at_level: dict[float, list[str]], n: int, correct_answers) -> np.ndarray:
    """The common case (continuous scores): one answer per score level, so the top level's answer
    wins whatever the votes. A subset's top lies in the level at ranks i..j (0-based, best first,
    attempts without answer or score last) in C(n-i, k) - C(n-j-1, k) of its subsets."""
    numerators, i = np.zeros(n + 1), 0
    for level in sorted(at_level, reverse=True):
        size = len(at_level[level])
        if at_level[level][0] in correct_answers:
            numerators += _binomials_padded(n - i, n) - _binomials_padded(n - i - size, n)
        i += size
    return _normalise(numerators, n, allow_zero=False)


def _binomials_padded(m: int, n: int) -> np.ndarray:
    """C(m, k) for k = 0..n (zero beyond m)."""
    out = np.zeros(n + 1)
    out[: m + 1] = _binomials(m)[: n + 1]
    return out


def _best_of_answer(answer: str, candidates: set[str], g: Counter, below: Counter, fixed_counts: Counter,
                    first: dict[str, int], by_drawn: np.ndarray) -> None:
    """Add to by_drawn[m] the (subset, order) weight with which `answer` wins at this score level
    drawing m attempts from the level's candidate answers (the rest is filler)."""
    g_a, r_a, f_a = g.get(answer, 0), below.get(answer, 0), fixed_counts.get(answer, 0)
    rivals = [_Rival(below.get(b, 0), g.get(b, 0), fixed_counts.get(b, 0), first.get(b)) for b in candidates
              if b != answer]
    tables: dict[int, dict] = {}
    for x in range(0 if answer in first else 1, g_a + 1):  # the answer's own attempts at the top score
        for y in range(r_a + 1):  # ... and below it
            votes = f_a + x + y
            if votes not in tables:
                tables[votes] = _rival_table(rivals, votes, first.get(answer), level=True)
            ways_a = math.comb(g_a, x) * math.comb(r_a, y)
            for (s, e), ways in tables[votes].items():
                # tied with answers that reach the top only in drawn attempts: the earliest drawn
                # top attempt decides, each of the x + e equally likely to come first
                win = 1.0 if answer in first else x / (x + e)
                by_drawn[x + y + s] += ways_a * ways * win


# -- the rivals' dynamic programme, shared by majority and best-of --------------------------------------

class _Rival:
    """Another answer: m attempts drawable below the top (majority: all its attempts), top attempts
    drawable at the top score (best-of only), fixed votes, first fixed position at the top (or None)."""

    __slots__ = ("m", "top", "fixed", "first")

    def __init__(self, m: int, top: int, fixed: int, first: int | None):
        self.m, self.top, self.fixed, self.first = m, top, fixed, first


def _rival_table(rivals: list[_Rival], votes: int, own_first: int | None, level: bool) -> dict[tuple[int, int], int]:
    """`_rival_tables` of these rivals (the counts are whole numbers, so the rivals' order does not
    matter and one table serves every problem whose rivals look alike). The caller must not change it."""
    shape = tuple(sorted((r.m, r.top, r.fixed, -1 if r.first is None else r.first) for r in rivals))
    return _rival_tables(shape, votes, own_first, level)


@lru_cache(maxsize=1 << 16)
def _rival_tables(shape: tuple, votes: int, own_first: int | None, level: bool) -> dict[tuple[int, int], int]:
    """{(s, e): ways} to draw s attempts from the rivals so that the answer with `votes` votes wins the
    tie-breaks decided by the fixed part, e counting the drawn top attempts (best-of; majority: the
    answers) it ties with where chain order among drawn attempts decides. Empty when it cannot win.

    A rival seen in the fixed part before the answer (or at all, when the answer is not there) wins
    a tie, so it must stay below `votes`; one seen after it loses ties. With `level` (best-of), a
    rival without a fixed top attempt competes only if at least one of its top attempts is drawn."""
    table: dict[tuple[int, int], int] = {(0, 0): 1}
    for rival in (_Rival(m, top, fixed, None if first < 0 else first) for m, top, fixed, first in shape):
        beats = rival.first is not None and (own_first is None or rival.first < own_first)
        cap = votes - 1 if beats else votes
        tracks = own_first is None and rival.first is None  # ties with it are settled by drawn order
        options: Counter = Counter()
        must_compete = not level or rival.first is not None
        for x in range(rival.top + 1):
            for y in range(rival.m + 1):
                competes = must_compete or x > 0
                total = rival.fixed + x + y
                if competes and total > cap:
                    continue
                tie = (x if level else 1) if competes and tracks and total == votes else 0
                options[(x + y, tie)] += math.comb(rival.top, x) * math.comb(rival.m, y)
        if not options:
            return {}
        merged: Counter = Counter()
        for (s, e), ways in table.items():
            for (ds, de), more in options.items():
                merged[(s + ds, e + de)] += ways * more
        table = merged
    return table


def _first_positions(ordered: Sequence[Hashable | None]) -> dict:
    first: dict = {}
    for position, answer in enumerate(ordered):
        if answer is not None:
            first.setdefault(answer, position)
    return first


def _at(curve: np.ndarray, k: int) -> float:
    return float(curve[k]) if 0 <= k < len(curve) else math.nan


# -- costs ---------------------------------------------------------------------------------------------

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


def bootstrap_indices(n: int, samples: int, seed: int) -> np.ndarray:
    """`samples` bootstrap resamples of n problems (rows of indices), seeded: every surface, verdict
    and allocation interval is reproducible, and resamples shared between cells pair them."""
    return np.random.default_rng(seed).integers(0, max(n, 1), size=(samples, n))


def defined_mean(values: np.ndarray) -> float:
    """The mean of the values that are not NaN (NaN where none): what `np.nanmean` gives, bit for bit,
    without its overhead (the surface asks for thousands of them)."""
    missing = np.isnan(values)
    count = values.size - int(missing.sum())
    return float(np.where(missing, 0.0, values).sum() / count) if count else math.nan


def bootstrap_counts(resamples: np.ndarray, n: int) -> np.ndarray:
    """How often each of n problems is drawn in each resample: (samples, n). A resample's mean of any
    per-problem values is then one product (`resampled_means`), for every cell at once."""
    samples = len(resamples)
    flat = (resamples + (np.arange(samples) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=samples * n).reshape(samples, n).astype(float)


def resampled_means(counts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The mean over each resample of values (n, or n × columns; NaN: undefined there, left out), NaN
    where a resample drew only undefined problems: (samples,) or (samples, columns)."""
    defined = np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (counts @ np.where(defined, values, 0.0)) / (counts @ defined)


def resampled_intervals(values: np.ndarray, resamples: np.ndarray, means: np.ndarray,
                        tolerance: float = 1e-9) -> tuple[np.ndarray, np.ndarray]:
    """Per column of `values` (problems × cells), `percentile_interval` of the defined ones of
    `np.nanmean(values[resamples], axis=1)`, bit for bit, from `means`: the same means as one product of
    counts (`resampled_means`), equal up to the last bits, being summed in another order. Only the
    resamples whose mean lies next to an interval's order statistics are averaged again draw by draw:
    the others rank the same either way. (lows, highs); NaN where a column has no defined value."""
    cells = values.shape[1]
    low, high = np.full(cells, math.nan), np.full(cells, math.nan)
    whole = np.isfinite(means).all(axis=0) & np.isfinite(values).any(axis=0)
    for cell in np.flatnonzero(~whole & np.isfinite(values).any(axis=0)):  # resamples of undefined problems only
        defined = np.isfinite(means[:, cell])
        (low[cell],), (high[cell],) = resampled_intervals(values[:, cell:cell + 1], resamples[defined],
                                                          means[defined, cell:cell + 1], tolerance)
    whole = np.flatnonzero(whole)
    if len(whole):
        exact = means[:, whole]
        at = (len(means) - 1) * np.array([0.025, 0.975])
        ends = np.sort(exact, axis=0)[np.unique(np.concatenate([np.floor(at), np.ceil(at)]).astype(int))]
        near = (np.abs(exact[:, :, None] - ends.T[None]) <= tolerance).any(axis=2)
        near[:, _sums_exactly(values[:, whole])] = False
        for j, cell in enumerate(whole):  # those resamples' means again, from their draws
            rows = np.flatnonzero(near[:, j])
            exact[rows, j] = np.nanmean(values[:, cell][resamples[rows]], axis=1)
        low[whole], high[whole] = np.percentile(exact, [2.5, 97.5], axis=0)
    return low, high


def _sums_exactly(values: np.ndarray, bits: int = 20) -> np.ndarray:
    """Per column, whether every sum of its values (NaN left out) over problems drawn with repeats is exact
    in floating point: all are whole multiples of 2^-bits (0 or 1, halves, quarters: most cells) and no
    sum reaches 2^53 of those. Then any order of adding gives the same mean, the product's as well."""
    scaled = values * 2.0 ** bits
    defined = np.isfinite(scaled)
    whole = np.where(defined, scaled == np.round(scaled), True).all(axis=0)
    return whole & (np.where(defined, np.abs(scaled), 0.0).max(axis=0) * len(values) < 2.0 ** 53)


def percentile_interval(means: np.ndarray) -> tuple[float, float]:
    """The 95% percentile interval of bootstrap means."""
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))
