"""A trace read straight from the store as arrays (`read_arrays`, what the report uses) equals the arrays
made from its attempt objects (`from_problems`, the linking `traces` has always done), field by field:
text runs with revise and extend chains and a self-verifier, a latent run with confidences, and a run
whose store holds another seed's and another plan's attempts beside it."""

from __future__ import annotations

import dataclasses

import numpy as np

from widthdepth.analysis.arrays import from_problems
from widthdepth.analysis.traces import open_traces
from widthdepth.runner import run


def assert_same_arrays(folder) -> int:
    traces = open_traces(folder)
    assert traces
    for trace in traces:
        stored = trace.arrays
        made = from_problems(trace.problems, trace.verifications, trace.plan.chains, trace.plan.rounds)
        for field in dataclasses.fields(stored):
            a, b = getattr(stored, field.name), getattr(made, field.name)
            if field.name == "labels":
                continue
            if field.name == "answer":  # ids are numbered in reading order: compare the answers they stand for
                a = [stored.labels[i] if i >= 0 else None for i in a.ravel()]
                b = [made.labels[i] if i >= 0 else None for i in b.ravel()]
                assert a == b, (trace.label, field.name)
            elif isinstance(a, np.ndarray):
                assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True), (trace.label, field.name)
            else:
                assert a == b, (trace.label, field.name)
        assert stored.present.any()
    return len(traces)


def test_text_chains_with_a_self_verifier(make_config):
    for plan in ("grid:3x3", "grid:3x3,mode=extend"):
        run(make_config(tasks=["chain:L=2", "search"], plans=[plan], problems=4, verifier="self"))
    assert assert_same_arrays(make_config().out) == 4
    trace = open_traces(make_config().out)[0]
    assert trace.verifier == "self:mock:" and trace.arrays.verified.any()


def test_a_latent_run_beside_another_seed_and_a_smaller_grid(make_config):
    config = dict(model="builtin:reasoner", tasks=["chain:L=4", "search:kind=subset,n=6"], problems=6)
    run(make_config(plans=["grid:6x4"], **config))
    run(make_config(plans=["grid:4x2"], seed=1, **config))
    assert assert_same_arrays(make_config().out) == 4
    trace = open_traces(make_config().out)[0]
    assert np.isfinite(trace.arrays.confidence[trace.arrays.present]).all()
