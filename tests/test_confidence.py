"""The confidence aggregators (`weighted`, `filtered:η`) and their Monte Carlo surface estimator: the
vectorised estimator must give exactly what the aggregators themselves give on the same subsets, and
be unbiased for the average over all subsets."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from widthdepth.analysis.aggregators import filtered, weighted
from widthdepth.analysis.confidence import confidence_curves, random_orders


def test_the_aggregators_by_hand():
    # weights exp(c): "3" gets e^-0.1 + e^-0.2 = 1.72, "5" gets e^0 = 1
    assert weighted(["3", "5", "3", None], [-0.1, 0.0, -0.2, 5.0]) == "3"
    assert weighted(["3", "5"], [-1.0, -0.5]) == "5"
    assert weighted(["3", "5"], [-1.0, -1.0]) == "3"  # a tie: the first answer
    assert weighted([None, "4"], [0.0, None]) is None  # no answer with a confidence
    # the ceil(0.5 * 4) = 2 most confident are chains 1 and 3 ("5", "5")
    assert filtered(["3", "5", "3", "5"], [-2.0, -0.1, -3.0, -0.2], 0.5) == "5"
    # a tie in confidence keeps the lower chain: chains 0 and 1 of three at equal confidence
    assert filtered(["7", "8", "8"], [-1.0, -1.0, -1.0], 0.5) == "7"


def _case(rng: random.Random, n: int, ties: bool = False) -> tuple[list, list]:
    """Answers and confidences; with `ties`, confidences on a coarse grid, so that many are equal."""
    answers = [rng.choice(["1", "2", "3", None]) for _ in range(n)]
    confidences = [None if rng.random() < 0.1 else -rng.random() * 3 for _ in range(n)]
    if ties:
        confidences = [None if c is None else round(c) / 2 for c in confidences]
    return answers, confidences


@pytest.mark.parametrize("aggregator", ["weighted", "filtered:0.5", "filtered:0.1"])
def test_the_estimator_gives_what_the_aggregator_gives_on_the_same_subsets(aggregator):
    rng = random.Random(3)
    for trial in range(40):
        n = rng.randint(1, 12)
        answers, confidences = _case(rng, n, ties=trial % 2 == 1)
        gold = frozenset({"2"})
        mean, _ = confidence_curves(answers, confidences, gold, [aggregator], seed=trial, samples=64)[aggregator]
        orders = random_orders(n, 64, trial)

        def rule(sub_answers, sub_conf):  # noqa: ANN001, ANN202
            if aggregator == "weighted":
                return weighted(sub_answers, sub_conf)
            return filtered(sub_answers, sub_conf, float(aggregator.split(":")[1]))

        for k in range(2, n + 1):
            hits = [rule([answers[i] for i in sorted(o[:k])], [confidences[i] for i in sorted(o[:k])]) in gold
                    for o in orders]
            assert mean[k - 1] == pytest.approx(np.mean(hits), abs=1e-12), (trial, k)
        exact_one = np.mean([a in gold and c is not None for a, c in zip(answers, confidences)])
        assert mean[0] == pytest.approx(exact_one)


@pytest.mark.parametrize("aggregator", ["weighted", "filtered:0.5"])
def test_the_estimate_is_unbiased_for_the_average_over_all_subsets(aggregator):
    rng = random.Random(11)
    answers, confidences = _case(rng, 6)
    gold = frozenset({"1"})
    mean, variance = confidence_curves(answers, confidences, gold, [aggregator], seed=5, samples=20_000)[aggregator]
    for k in range(1, 7):
        subsets = list(itertools.combinations(range(6), k))
        share = float(aggregator.split(":")[1]) if ":" in aggregator else 0
        exact = np.mean([(weighted([answers[i] for i in s], [confidences[i] for i in s]) if not share else
                          filtered([answers[i] for i in s], [confidences[i] for i in s], share)) in gold
                         for s in subsets])
        assert abs(mean[k - 1] - exact) <= 4 * math.sqrt(variance[k - 1]) + 1e-12, (k, mean[k - 1], exact)


def test_a_round_no_chain_reached_has_nothing_to_estimate():
    """A killed run's problem whose chains stop before this round: empty curves, not an error."""
    mean, variance = confidence_curves([], [], frozenset({"1"}), ["weighted"], seed=0)["weighted"]
    assert len(mean) == len(variance) == 0


def test_the_batch_equals_every_row_drawn_in_full():
    """`confidence_batch` skips drawing where the answer is known (one answer from every chain; no right
    answer at all) and takes rows a part at a time: the same means and variances, bit for bit, as
    drawing every row's orders."""
    from widthdepth.analysis.confidence import _confidence_rows, confidence_batch

    rng = np.random.default_rng(3)
    rows, n, labels = 40, 12, 4
    ids = rng.integers(-1, labels, (rows, n))
    ids[:8] = 0  # unanimous
    right = rng.random((rows, labels + 1)) < 0.4
    right[:, -1] = False
    right[8:16] = False  # no answer right
    conf = np.where(ids >= 0, rng.normal(size=(rows, n)), -np.inf)
    seeds = list(range(rows))
    names = ("weighted", "filtered:0.5")
    batch = confidence_batch(ids, conf, right, seeds, names, samples=32, cells=5000)
    full = _confidence_rows(ids, conf, right, seeds, names, samples=32)
    assert any(rows_right.any() for rows_right in right[16:])
    for name in names:
        np.testing.assert_array_equal(batch[name][0], full[name][0])
        np.testing.assert_array_equal(batch[name][1], full[name][1])
