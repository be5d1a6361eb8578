"""A folder's surface read and estimated by worker processes (`analysis.stored.open_surface`) is the one
the report's own process makes: the same cells, intervals and Monte Carlo errors, in the same order."""

from __future__ import annotations

import numpy as np
import pytest

from widthdepth.analysis.stored import open_surface
from widthdepth.config import make_config
from widthdepth.errors import WidthdepthError
from widthdepth.runner import run


@pytest.fixture(scope="module")
def reasoner_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stored") / "run"
    run(make_config({"model": "builtin:reasoner", "tasks": ["chain:L=2", "search:kind=subset,n=6", "chain:L=4"],
                     "plans": ["grid:8x3"], "problems": 12, "out": str(folder)}))
    return folder


def test_workers_give_the_surface_one_process_gives(reasoner_folder):
    alone, shared = open_surface(reasoner_folder, workers=1), open_surface(reasoner_folder, workers=2)
    tasks = [ts.trace.task.split(",")[0] for ts in alone.traces]
    assert tasks == ["chain:L=2", "search:kind=subset", "chain:L=4"]
    assert [ts.trace.task for ts in shared.traces] == [ts.trace.task for ts in alone.traces]
    frame = alone.frame()
    assert len(frame) == 3 * 8 * 3 * 5 and "weighted" in set(frame.aggregator)  # confidences and a verifier
    assert shared.frame().equals(frame)  # accuracy, intervals, Monte Carlo errors, costs (NaN where NaN)
    for a, b in zip(alone.traces, shared.traces):
        assert a.accuracy.keys() == b.accuracy.keys()
        assert all(np.array_equal(a.accuracy[k], b.accuracy[k], equal_nan=True) for k in a.accuracy)
        assert np.array_equal(a.resamples, b.resamples)


def test_a_folder_without_a_store_is_one_clear_error(tmp_path):
    with pytest.raises(WidthdepthError, match="no store at"):
        open_surface(tmp_path / "nothing", workers=2)
