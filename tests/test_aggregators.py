from hypothesis import given
from hypothesis import strategies as st

from widthdepth.analysis.aggregators import best_of, coverage, majority

answers = st.lists(st.one_of(st.none(), st.sampled_from(["1", "2", "3"])), max_size=8)


def test_majority_tie_goes_to_first_seen():
    assert majority(["5", "3", "3", "5"]) == "5"
    assert majority([None, "4"]) == "4"
    assert majority([None, None]) is None


@given(answers)
def test_majority_is_a_most_frequent_answer(values):
    choice = majority(values)
    present = [v for v in values if v is not None]
    if not present:
        assert choice is None
    else:
        assert present.count(choice) == max(present.count(v) for v in present)


def test_best_of_uses_scores_then_votes_then_chain_order():
    assert best_of(["1", "2", "3"], [0.2, 0.9, 0.5]) == "2"
    assert best_of(["1", "2", "2"], [0.9, 0.9, 0.1]) == "2"  # tie on score: the more frequent answer
    assert best_of(["1", "2"], [0.5, 0.5]) == "1"  # full tie: lowest chain
    assert best_of(["1", None], [None, 1.0]) is None


def test_coverage_is_any_correct():
    assert coverage([False, None, True])
    assert not coverage([False, None])
