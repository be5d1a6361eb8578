"""Every estimator against brute force: all subsets AND all chain orders, judged by the run's own
aggregators (`widthdepth.analysis.aggregators`), not by a second copy of the estimator's convention."""

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widthdepth.analysis.aggregators import best_of, majority
from widthdepth.analysis.estimators import (best_of_at_k, best_of_curve, best_of_with_fixed, expected_max_at_k,
                                            expected_max_with_fixed, majority_at_k, majority_curve,
                                            majority_with_fixed, mean_at_k, pass_at_k)


def subsets(n, k):
    return list(itertools.combinations(range(n), k))


def runtime_average(fixed, pool, k, judge):
    """The mean of `judge` over every k-subset of `pool` in every order, after the fixed items in theirs:
    what the runtime scores, averaged over all ways a run could have drawn and ordered its chains."""
    values = [judge(list(fixed) + [pool[i] for i in order]) for order in itertools.permutations(range(len(pool)), k)]
    return sum(values) / len(values)


def majority_judge(gold):
    return lambda answers: float(majority(answers) in gold)


def best_of_judge(gold):
    return lambda items: float(best_of([a for a, _ in items], [s for _, s in items]) in gold)


def brute_pass(correct, k):
    return sum(any(correct[i] for i in s) for s in subsets(len(correct), k)) / math.comb(len(correct), k)


def brute_max(values, k):
    return sum(max(values[i] for i in s) for s in subsets(len(values), k)) / math.comb(len(values), k)


small = st.integers(1, 7)
answer = st.sampled_from(["a", "b", "c", None])
score = st.sampled_from([None, 0, 1, 1, 2, 0.5])  # discrete: ties on score are common (judges, 0/1 checkers)
gold_sets = st.sampled_from([{"a"}, {"b"}, {"a", "b"}, set()])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=9), st.integers(1, 9))
def test_pass_at_k(correct, k):
    expected = brute_pass(correct, k) if k <= len(correct) else math.nan
    assert pass_at_k(correct, k) == pytest.approx(expected, nan_ok=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(answer, min_size=1, max_size=7), small, gold_sets)
def test_majority_at_k_equals_the_runtime_rule(answers, k, gold):
    expected = runtime_average([], answers, k, majority_judge(gold)) if k <= len(answers) else math.nan
    assert majority_at_k(answers, gold, k) == pytest.approx(expected, nan_ok=True)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(answer, score), min_size=1, max_size=7), small, gold_sets)
def test_best_of_at_k_equals_the_runtime_rule(pairs, k, gold):
    answers, scores = [a for a, _ in pairs], [s for _, s in pairs]
    expected = runtime_average([], pairs, k, best_of_judge(gold)) if k <= len(pairs) else math.nan
    assert best_of_at_k(answers, scores, gold, k) == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize("answers,scores,expected", [
    # the case: "0" and "1" tie on score 1; "0" has two votes in the subset, so it wins
    ([None, "0", "1", None, "0"], [None, 1, 1, None, 0], 1.0),
    (["1", "0"], [1, 1], 0.5),  # a full tie: the lower chain, each first in half the orders
    (["0", "1", "1"], [1, 1, None], 0.0),  # an unscored attempt still votes for its answer
    (["0", "0", "1"], [1, 0, 1], 1.0),
    (["0", None], [0, 5], 1.0),  # a score without an answer never wins
    (["1", "0"], [float("nan"), 1], 1.0),  # a NaN score is no score, at run time and here
])
def test_best_of_tied_scores_full_width(answers, scores, expected):
    assert best_of_at_k(answers, scores, {"0"}, len(answers)) == expected
    if expected in (0.0, 1.0):  # no tie left to chain order: the run in its own order agrees
        assert (best_of(answers, scores) == "0") == (expected == 1.0)


def test_full_subset_equals_the_plain_aggregate():
    assert majority_at_k(["1", "1", "2"], {"1"}, 3) == 1.0
    assert majority_at_k(["1", "2"], {"1"}, 2) == 0.5  # a tie of two: each first in half the orders
    assert pass_at_k([False, True], 2) == 1.0


def test_curves_equal_the_single_k_functions():
    answers = ["1", "2", None, "1", "3", "2", "1", None, "4"]
    scores = [0.5, 0.9, 0.9, 0.5, None, 0.9, 0.1, None, 0.5]
    gold = {"1"}
    curve_m, curve_b = majority_curve(answers, gold), best_of_curve(answers, scores, gold)
    assert math.isnan(curve_m[0]) and math.isnan(curve_b[0])
    for k in range(1, len(answers) + 1):
        assert curve_m[k] == pytest.approx(majority_at_k(answers, gold, k))
        assert curve_b[k] == pytest.approx(best_of_at_k(answers, scores, gold, k))


def test_large_n_matches_sampled_runtime():
    """At n = 48 (too many orders to enumerate) the exact value agrees with 20,000 sampled orders."""
    import random

    rng = random.Random(3)
    answers = [rng.choice(["1", "2", "3", None]) for _ in range(48)]
    scores = [rng.choice([None, 1, 2, 3]) for _ in range(48)]
    k = 12
    hits_m = hits_b = 0
    for _ in range(20000):
        order = rng.sample(range(48), k)
        hits_m += majority([answers[i] for i in order]) == "1"
        hits_b += best_of([answers[i] for i in order], [scores[i] for i in order]) == "1"
    assert majority_at_k(answers, {"1"}, k) == pytest.approx(hits_m / 20000, abs=0.015)
    assert best_of_at_k(answers, scores, {"1"}, k) == pytest.approx(hits_b / 20000, abs=0.015)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=9), st.integers(1, 9))
def test_expected_max_and_mean(values, k):
    if k > len(values):
        assert math.isnan(expected_max_at_k(values, k)) and math.isnan(mean_at_k(values, k))
        return
    assert expected_max_at_k(values, k) == pytest.approx(brute_max(values, k))
    brute_sum = sum(sum(values[i] for i in s) for s in subsets(len(values), k)) / math.comb(len(values), k)
    assert mean_at_k(values, k) == pytest.approx(brute_sum)


# -- with some attempts always in the subset, ahead in chain order (an adaptive plan's probe) ----------

@settings(max_examples=400, deadline=None)
@given(st.lists(answer, max_size=3), st.lists(answer, min_size=1, max_size=6), st.data())
def test_majority_with_fixed_equals_the_runtime_rule(fixed, pool, data):
    k = data.draw(st.integers(0 if fixed else 1, len(pool)))
    gold = data.draw(gold_sets)
    assert majority_with_fixed(fixed, pool, gold, k) == pytest.approx(
        runtime_average(fixed, pool, k, majority_judge(gold)))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(answer, score), max_size=3), st.lists(st.tuples(answer, score), min_size=1, max_size=6),
       st.data())
def test_best_of_with_fixed_equals_the_runtime_rule(fixed, pool, data):
    k = data.draw(st.integers(0 if fixed else 1, len(pool)))
    gold = data.draw(gold_sets)
    value = best_of_with_fixed([a for a, _ in fixed], [s for _, s in fixed], [a for a, _ in pool],
                               [s for _, s in pool], gold, k)
    assert value == pytest.approx(runtime_average(fixed, pool, k, best_of_judge(gold)))


def test_fixed_answers_win_ties_by_coming_first():
    # the probe said "b"; one drawn "a" ties it: the runtime keeps "b", the first seen
    assert majority_with_fixed(["b"], ["a"], {"b"}, 1) == 1.0
    assert best_of_with_fixed(["b"], [1], ["a"], [1], {"b"}, 1) == 1.0


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5), st.lists(st.integers(0, 5), min_size=1, max_size=7), st.data())
def test_expected_max_with_fixed(fixed_max, values, data):
    k = data.draw(st.integers(0, len(values)))
    expected = sum(max([fixed_max] + [values[i] for i in s]) for s in subsets(len(values), k)) / math.comb(len(values), k)
    assert expected_max_with_fixed(fixed_max, values, k) == pytest.approx(expected)
