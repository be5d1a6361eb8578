"""Replicas as Ray actors (`execute.ray_pool`) on a local Ray cluster started by the test: the store and
outcomes of one ordinary run, also when a replica is killed mid-chunk."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.test_chunk import dispatched, keys, snapshot, text_config
from widthdepth.backends import BackendOptions, load_backend
from widthdepth.backends.mock import MockBackend
from widthdepth.config import RunConfig
from widthdepth.runner import run

ray = pytest.importorskip("ray")
from widthdepth.execute.ray_pool import RayPool  # noqa: E402  (needs ray)


@pytest.fixture(scope="module")
def cluster():
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED", "RAY_ADDRESS")}
    os.environ.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    os.environ.pop("RAY_ADDRESS", None)
    temp = tempfile.mkdtemp(prefix="wdray", dir="/tmp")  # short: Ray's socket paths have a length limit
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning",
             _temp_dir=temp)
    yield
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def ray_pool(replicas, config, families):  # noqa: ANN001, ANN201
    return RayPool(replicas, config, families, cpus=1)


class KillingPool(RayPool):
    """A `RayPool` whose first chunk's actor is killed right after the chunk is sent (Ray's own kill)."""

    kills = 0

    def __init__(self, replicas, config, families) -> None:  # noqa: ANN001
        super().__init__(replicas, config, families, cpus=1)

    def submit(self, replica, chunk, sink):  # noqa: ANN001, ANN201
        future = super().submit(replica, chunk, sink)
        if KillingPool.kills == 0:
            KillingPool.kills += 1
            ray.kill(self.actors[replica])
        return future


def test_ray_replicas_give_the_store_and_outcomes_of_one_run(tmp_path, cluster):
    result = run(text_config(tmp_path / "whole"), backend=MockBackend())
    done = dispatched(text_config(tmp_path / "ray"), MockBackend, replicas=2, size=3, make_pool=ray_pool)
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "whole")
    assert [keys(outcome) for outcome, _, _ in done] == [keys(o) for o in result.plan_runs]


def test_a_replica_killed_mid_chunk_is_replaced_and_the_store_is_the_same(tmp_path, cluster):
    def config(out):  # noqa: ANN001
        return RunConfig(model="builtin:reasoner", tasks=["chain:L=3"], problems=128, out=str(out),
                         plans=["grid:4x3", "beam:2,2,steps=4"])

    reasoner = load_backend("builtin:reasoner", BackendOptions(0, None, None))
    try:
        result = run(config(tmp_path / "whole"), backend=reasoner)
    finally:
        reasoner.close()
    done = dispatched(config(tmp_path / "ray"), lambda: load_backend("builtin:reasoner", BackendOptions(0, None, None)),
                      replicas=2, size=64, make_pool=KillingPool)
    assert KillingPool.kills == 1
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "whole")
    assert [keys(outcome) for outcome, _, _ in done] == [keys(o) for o in result.plan_runs + result.methods]
