"""DeepConf online (`deepconf:N`) on the shipped built-in LM through the batched llama.cpp decoder: the
floor from the warm-up chains, chains stopped as they decode exactly when their window falls under it,
the weighted vote of the rest, and every token charged."""

from __future__ import annotations

import numpy as np
import pytest

from widthdepth.analysis.aggregators import weighted
from widthdepth.backends.base import CONFIDENCE_WINDOW
from widthdepth.backends.llamacpp_batch import _Sequence
from widthdepth.backends.mock import MockBackend
from widthdepth.errors import WidthdepthError
from widthdepth.plans import load_plan
from widthdepth.runner import prepare, run
from widthdepth.store import Store


def test_the_window_mean_and_its_lowest():
    sequence = _Sequence(0, 0, np.random.default_rng(0), 100, 0)
    logprobs = [-0.1 * (i % 7) for i in range(40)]
    means = [sequence.observe(x) for x in logprobs]
    assert means[:CONFIDENCE_WINDOW - 1] == [None] * (CONFIDENCE_WINDOW - 1)
    full = [np.mean(logprobs[i - CONFIDENCE_WINDOW + 1:i + 1]) for i in range(CONFIDENCE_WINDOW - 1, 40)]
    assert means[CONFIDENCE_WINDOW - 1:] == pytest.approx(full)
    assert sequence.lowest == pytest.approx(min(full))


def test_plans_and_bad_input(make_config, tmp_path):
    assert load_plan("deepconf:16").warmup == 4 and load_plan("deepconf:8,warmup=2,keep=0.1").keep == 0.1
    for bad, says in [("deepconf:1", "from 2 to 4096"), ("deepconf:8,keep=0", "must be in"),
                      ("deepconf:8,warmup=8", "warmup=8 is out of range")]:
        with pytest.raises(WidthdepthError, match=says):
            load_plan(bad)
    config = make_config(tasks=["chain:L=2"], plans=["deepconf:8"])
    with pytest.raises(WidthdepthError, match="does not"):
        run(prepare(config), backend=MockBackend())
    assert not (tmp_path / "out").exists()


@pytest.mark.model
def test_chains_stop_when_their_window_falls_under_the_warm_up_floor(tmp_path):
    from widthdepth.config import RunConfig

    config = RunConfig(model="builtin:lm", tasks=["chain:L=6"], plans=["parallel:12", "deepconf:12,warmup=4"],
                       problems=10, max_tokens=256, out=str(tmp_path / "out"), verifier="none")
    result = run(config)
    (method,) = result.methods
    grid = result.plan_runs[0]
    assert result.generated == 10 * 12 + 10 * 8  # the warm-up is parallel:12's first four chains
    store = Store.open(tmp_path / "out")
    stopped = 0
    for outcome in method.outcomes:
        warm = [c[0] for c in grid.chains[outcome.problem_key][:4]]
        floor = outcome.detail["floor"]
        assert floor == round(float(np.quantile([a.lowest_confidence for a in warm], 0.1)), 6)
        parallel = {c[0].key for c in grid.chains[outcome.problem_key]}
        rest = [a for a in store.attempts(problem_key=outcome.problem_key) if a.w >= 4 and a.key not in parallel]
        assert len(rest) == 8
        for a in rest:
            if a.finish_reason == "low_confidence":  # stopped at the first window under the floor
                stopped += 1
                assert a.lowest_confidence < floor and a.completion_tokens >= CONFIDENCE_WINDOW
            elif a.completion_tokens >= CONFIDENCE_WINDOW:
                assert a.lowest_confidence >= floor
        kept = [a for a in warm + rest if a.finish_reason != "low_confidence" and a.lowest_confidence >= floor]
        assert outcome.answer == weighted([a.final_answer for a in kept], [a.lowest_confidence for a in kept])
        assert outcome.cost.generated_tokens == sum(a.completion_tokens for a in warm + rest)
    assert stopped > 0
    store.close()
