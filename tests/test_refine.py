"""`refine:N,D`: chains that revise with the other chains' answers in view; its answer, what it shows each
chain, what it charges, its resume and its bad input."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from widthdepth.analysis.aggregators import majority
from widthdepth.backends.mock import MockBackend
from widthdepth.errors import WidthdepthError
from widthdepth.plans import load_plan
from widthdepth.runner import run
from widthdepth.store import Store
from tests.scripts import chain_gold, crashing_after


def follow_the_others(request, seed: int) -> str:  # noqa: ANN001
    """Round 1: right for one seed in three. A refine round adopts the others' most common answer."""
    text = request.messages[0][1]
    others = re.search(r"Other attempts answered: ([^.]*)\.", text)
    if others is None:
        gold = chain_gold(text)
        return f"{'w ' * (seed % 4)}Answer: {gold if seed % 3 == 0 else (gold + 1 + seed % 3) % 10}"
    answer, _ = Counter(others[1].split(", ")).most_common(1)[0]
    return f"{'w ' * (seed % 5)}Answer: {answer}"


def test_refine_shows_each_chain_the_others_answers_and_charges_every_round(make_config):
    config = make_config(tasks=["chain:L=2"], plans=["parallel:5", "refine:5,3"], problems=8)
    result = run(config, backend=MockBackend(script=follow_the_others))
    assert result.generated == 8 * 5 * 3  # round 1 is parallel:5's, stored once
    (method,) = result.methods
    store = Store.open(config.out)
    for outcome in method.outcomes:
        attempts = list(store.attempts(problem_key=outcome.problem_key))
        by_round = {d: sorted((a for a in attempts if a.d == d), key=lambda a: a.w) for d in (1, 2, 3)}
        for d in (2, 3):
            for a in by_round[d]:
                before = [b.final_answer for b in by_round[d - 1]]
                shown = re.search(r"Other attempts answered: ([^.]*)\.", a.prompt)[1].split(", ")
                assert shown == before[:a.w] + before[a.w + 1:] and a.mode == "refine"
                assert store.get_attempt(a.parent_key).w == a.w and store.get_attempt(a.parent_key).d == d - 1
        assert outcome.answer == majority([a.final_answer for a in by_round[3]])
        assert outcome.cost.generated_tokens == sum(a.completion_tokens for a in attempts)
        assert outcome.cost.serial_tokens == sum(max(a.completion_tokens for a in by_round[d]) for d in (1, 2, 3))
    store.close()


def test_a_crash_mid_refine_then_rerun_gives_the_uninterrupted_store(make_config, tmp_path):
    def config(name):  # noqa: ANN001, ANN202
        return make_config(tasks=["chain:L=2"], plans=["refine:4,3"], problems=5, out=str(tmp_path / name))

    run(config("whole"), backend=MockBackend(script=follow_the_others))
    with pytest.raises(KeyboardInterrupt):
        run(config("killed"), backend=MockBackend(script=crashing_after(follow_the_others, 30)))
    partial = Store.open(tmp_path / "killed")
    assert 0 < partial.counts()["attempts"] and not partial.method_points()  # it crashed mid-run
    partial.close()
    run(config("killed"), backend=MockBackend(script=follow_the_others))
    whole, killed = Store.open(tmp_path / "whole"), Store.open(tmp_path / "killed")
    assert killed.snapshot() == whole.snapshot() and len(whole.method_points()) == 5
    whole.close(), killed.close()


def test_bad_refine_plans(make_config):
    for bad, says in [("refine:1,3", "N=1 must be 2..256"), ("refine:4", "expected refine:N,D"),
                      ("refine:4,0", "D=0"), ("refine:4,2,mode=extend", "unknown parameter 'mode'")]:
        with pytest.raises(WidthdepthError, match=says):
            load_plan(bad)
    with pytest.raises(WidthdepthError, match="reads no text"):
        run(make_config(model="builtin:reasoner", tasks=["chain:L=2"], plans=["refine:4,2"]))
