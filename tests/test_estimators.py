"""Every estimator against brute-force enumeration of all subsets (and chain orders for ties)."""

import itertools
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widthdepth.analysis.estimators import (best_of_at_k, best_of_with_fixed, expected_max_at_k,
                                            expected_max_with_fixed, majority_at_k, majority_with_fixed, mean_at_k,
                                            pass_at_k)


def subsets(n, k):
    return list(itertools.combinations(range(n), k))


def brute_pass(correct, k):
    return sum(any(correct[i] for i in s) for s in subsets(len(correct), k)) / math.comb(len(correct), k)


def brute_majority(answers, gold, k):
    total = 0.0
    for s in subsets(len(answers), k):
        votes = Counter(answers[i] for i in s if answers[i] is not None)
        if not votes:
            continue
        top = max(votes.values())
        tied = [a for a, v in votes.items() if v == top]
        total += sum(a in gold for a in tied) / len(tied)
    return total / math.comb(len(answers), k)


def brute_best_of(scores, correct, k):
    total = 0.0
    for s in subsets(len(scores), k):
        scored = [i for i in s if scores[i] is not None]
        if not scored:
            continue
        top = max(scores[i] for i in scored)
        tied = [i for i in scored if scores[i] == top]
        total += sum(correct[i] for i in tied) / len(tied)
    return total / math.comb(len(scores), k)


def brute_max(values, k):
    return sum(max(values[i] for i in s) for s in subsets(len(values), k)) / math.comb(len(values), k)


small = st.integers(1, 9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=9), small)
def test_pass_at_k(correct, k):
    expected = brute_pass(correct, k) if k <= len(correct) else math.nan
    assert pass_at_k(correct, k) == pytest.approx(expected, nan_ok=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from("abcd")), min_size=1, max_size=9), small,
       st.sets(st.sampled_from("abcd"), max_size=2))
def test_majority_at_k(answers, k, gold):
    expected = brute_majority(answers, gold, k) if k <= len(answers) else math.nan
    assert majority_at_k(answers, gold, k) == pytest.approx(expected, nan_ok=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from([0.1, 0.5, 0.5, 0.9])), st.booleans()),
                min_size=1, max_size=9), small)
def test_best_of_at_k(pairs, k):
    scores, correct = [p[0] for p in pairs], [p[1] and p[0] is not None for p in pairs]
    expected = brute_best_of(scores, correct, k) if k <= len(pairs) else math.nan
    assert best_of_at_k(scores, correct, k) == pytest.approx(expected, nan_ok=True)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=9), small)
def test_expected_max_and_mean(values, k):
    if k > len(values):
        assert math.isnan(expected_max_at_k(values, k)) and math.isnan(mean_at_k(values, k))
        return
    assert expected_max_at_k(values, k) == pytest.approx(brute_max(values, k))
    brute_sum = sum(sum(values[i] for i in s) for s in subsets(len(values), k)) / math.comb(len(values), k)
    assert mean_at_k(values, k) == pytest.approx(brute_sum)


def test_full_subset_equals_the_plain_aggregate():
    assert majority_at_k(["1", "1", "2"], {"1"}, 3) == 1.0
    assert majority_at_k(["1", "2"], {"1"}, 2) == 0.5  # a tie of two, split evenly
    assert pass_at_k([False, True], 2) == 1.0


def test_majority_scales_to_large_n():
    answers = ["1"] * 40 + ["2"] * 30 + [None] * 10 + [str(i) for i in range(3, 23)]
    value = majority_at_k(answers, {"1"}, 32)
    assert 0.5 < value <= 1.0


# -- with some attempts always in the subset (an adaptive plan's probe) ------------------------------
answer = st.sampled_from(["a", "b", "c", None])
score = st.sampled_from([None, 0.1, 0.5, 0.9])


def brute_with_fixed(fixed, pool, k, judge):
    runs = [judge(list(fixed) + [pool[i] for i in s]) for s in subsets(len(pool), k)]
    return sum(runs) / len(runs)


def majority_of(gold):
    def judge(answers):
        votes = Counter(a for a in answers if a is not None)
        if not votes:
            return 0.0
        top = max(votes.values())
        tied = [a for a, v in votes.items() if v == top]
        return sum(a in gold for a in tied) / len(tied)
    return judge


def best_of_judge(items):
    scored = [(s, c) for s, c in items if s is not None]
    if not scored:
        return 0.0
    top = max(s for s, _ in scored)
    tied = [c for s, c in scored if s == top]
    return sum(tied) / len(tied)


@settings(max_examples=300, deadline=None)
@given(st.lists(answer, max_size=3), st.lists(answer, min_size=1, max_size=7), st.data())
def test_majority_with_fixed(fixed, pool, data):
    k = data.draw(st.integers(0 if fixed else 1, len(pool)))
    gold = data.draw(st.sampled_from([{"a"}, {"b"}, {"a", "b"}]))
    assert majority_with_fixed(fixed, pool, gold, k) == pytest.approx(brute_with_fixed(fixed, pool, k, majority_of(gold)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(score, st.booleans()), max_size=3), st.lists(st.tuples(score, st.booleans()), min_size=1,
                                                                        max_size=7), st.data())
def test_best_of_with_fixed(fixed, pool, data):
    k = data.draw(st.integers(0 if fixed else 1, len(pool)))
    value = best_of_with_fixed([s for s, _ in fixed], [c for _, c in fixed], [s for s, _ in pool], [c for _, c in pool], k)
    assert value == pytest.approx(brute_with_fixed(fixed, pool, k, best_of_judge))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5), st.lists(st.integers(0, 5), min_size=1, max_size=7), st.data())
def test_expected_max_with_fixed(fixed_max, values, data):
    k = data.draw(st.integers(0, len(values)))
    assert expected_max_with_fixed(fixed_max, values, k) == pytest.approx(
        brute_with_fixed([fixed_max], values, k, max))
