"""`--executor ray` on a real Ray cluster started by the test (`ray start --head` on 127.0.0.1, two CPUs):
the store of one local run — from the command, on the built-in reasoner and on SmolLM2, with a replica's
process killed mid-run, and resumed across executors after the driver was interrupted or killed; start-up
problems are one line, exit 2, no store."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

import widthdepth.execute
from tests.test_chunk import dispatched, keys, snapshot, text_config
from widthdepth.backends import BackendOptions, load_backend
from widthdepth.backends.mock import MockBackend
from widthdepth.cli import main
from widthdepth.config import RunConfig
from widthdepth.runner import run

ray = pytest.importorskip("ray")
from widthdepth.execute.ray_pool import RayPool  # noqa: E402  (needs ray)

QUIET = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
REASONER = ["--model", "builtin:reasoner", "--tasks", "chain:L=3", "--plan", "grid:4x3", "--problems", "1024",
            "--chunk", "64"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head():
    """A Ray head of two CPUs in a session of its own; this process connected to it. Yields its address."""
    saved = {k: os.environ.get(k) for k in (*QUIET, "RAY_ADDRESS")}
    os.environ.update(QUIET)
    os.environ.pop("RAY_ADDRESS", None)
    temp = tempfile.mkdtemp(prefix="wdray", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = free_port()
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ray"), "start", "--head", "--block",
                                f"--port={port}", "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false",
                                "--disable-usage-stats", f"--temp-dir={temp}", "--node-ip-address=127.0.0.1"],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    for _ in range(300):
        try:
            ray.init(address=address, log_to_driver=False, logging_level="warning")
            break
        except (ConnectionError, RuntimeError):
            time.sleep(0.2)
    yield address
    ray.shutdown()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # whatever of the cluster is left
        except ProcessLookupError:
            pass
        shutil.rmtree(temp, ignore_errors=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "widthdepth.cli", "run", *args]


def attempts_in(folder) -> int:  # noqa: ANN001
    try:
        with sqlite3.connect(f"file:{folder}/widthdepth.sqlite?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT count(*) FROM attempts").fetchone()[0]
    except sqlite3.Error:
        return 0


def until(condition, seconds: float = 120) -> None:  # noqa: ANN001
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def reasoner_local(tmp_path_factory):
    """The reasoner's store from one uninterrupted local run of `REASONER`."""
    out = tmp_path_factory.mktemp("local") / "run"
    assert main(["run", *REASONER, "--out", str(out)]) == 0
    return snapshot(out)


def test_the_command_on_ray_gives_the_store_of_a_local_run(tmp_path, head, reasoner_local):
    done = subprocess.run(command(*REASONER, "--out", str(tmp_path / "ray"), "--executor", f"ray:{head}"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "generated 12288 attempts" in " ".join(done.stdout.split())
    assert snapshot(tmp_path / "ray") == reasoner_local


def test_smollm2_on_ray_gives_the_store_of_a_local_run(tmp_path, head):
    smollm = ["--model", "llamacpp:smollm2-135m", "--tasks", "chain:L=1", "--plan", "grid:2x2", "--problems", "3",
              "max_tokens=24", "--chunk", "1"]
    assert main(["run", *smollm, "--out", str(tmp_path / "local"), "--threads", "2"]) == 0
    done = subprocess.run(command(*smollm, "--out", str(tmp_path / "ray"), "--executor", f"ray:{head}"),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert snapshot(tmp_path / "ray")["attempts"] and snapshot(tmp_path / "ray") == snapshot(tmp_path / "local")


def test_a_replica_process_killed_mid_run_is_replaced_and_the_store_is_the_same(tmp_path, head, reasoner_local):
    out = tmp_path / "ray"
    process = subprocess.Popen(command(*REASONER, "--out", str(out), "--executor", f"ray:{head}"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    until(lambda: attempts_in(out) > 0)  # parts have come back: the replicas are mid-chunk
    busy = subprocess.run(["pgrep", "-f", "ray::Replica"], capture_output=True, text=True).stdout.split()
    assert busy
    os.kill(int(busy[0]), signal.SIGKILL)  # the worker process, as a lost node would
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert attempts_in(out) == 12288 and snapshot(out) == reasoner_local


@pytest.mark.parametrize("first, then, stop", [("local", "ray", signal.SIGINT), ("ray", "local", signal.SIGKILL)])
def test_a_run_resumes_across_executors(tmp_path, head, reasoner_local, first, then, stop):
    out = tmp_path / "run"
    executor = {"local": "local", "ray": f"ray:{head}"}
    process = subprocess.Popen(command(*REASONER, "--out", str(out), "--executor", executor[first]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    until(lambda: attempts_in(out) > 0)
    process.send_signal(stop)  # Ctrl-C, or a driver lost outright
    process.wait(timeout=60)
    assert 0 < attempts_in(out) < 12288
    done = subprocess.run(command(*REASONER, "--out", str(out), "--executor", executor[then]),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert snapshot(out) == reasoner_local


def test_start_up_problems_are_one_line_exit_2_and_no_store(tmp_path, head, capsys, monkeypatch):
    port = free_port()
    cases = [(["--executor", f"ray:127.0.0.1:{port}"], f"no Ray cluster answers at 127.0.0.1:{port}"),
             (["--executor", "ray", "--replica-cpus", "64"], "the cluster holds 0 replicas of 64 CPUs"),
             (["--executor", "ray", "--replicas", "3"], "the cluster holds 2 replicas of 1 CPUs"),
             (["--executor", "ray", "--model", f"openai:m@http://127.0.0.1:{port}/v1"],
              "on a replica: --model openai:m"),
             (["--executor", "nowhere"], "executor: Value error, expected local, ray")]
    for options, message in cases:
        out = tmp_path / "never"
        assert main(["run", "--model", "builtin:reasoner", "--tasks", "chain:L=2", "--out", str(out), *options]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not (out / "widthdepth.sqlite").exists()
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed
    monkeypatch.delitem(sys.modules, "widthdepth.execute.ray_pool")
    monkeypatch.delattr(widthdepth.execute, "ray_pool")
    assert main(["run", "--model", "builtin:reasoner", "--out", str(tmp_path / "never"), "--executor", "ray"]) == 2
    assert "Ray is not installed; pip install 'widthdepth[ray]'" in capsys.readouterr().err


def ray_pool(replicas, config, families):  # noqa: ANN001, ANN201
    return RayPool(replicas, config, families, cpus=1)


class KillingPool(RayPool):
    """A `RayPool` whose first chunk's actor is killed right after the chunk is sent (Ray's own kill)."""

    kills = 0

    def __init__(self, replicas, config, families) -> None:  # noqa: ANN001
        super().__init__(replicas, config, families, cpus=1)

    def submit(self, replica, chunk, sink, report):  # noqa: ANN001, ANN201
        future = super().submit(replica, chunk, sink, report)
        if KillingPool.kills == 0:
            KillingPool.kills += 1
            ray.kill(self.actors[replica])
        return future


def test_ray_replicas_give_the_store_and_outcomes_of_one_run(tmp_path, head):
    result = run(text_config(tmp_path / "whole"), backend=MockBackend())
    done = dispatched(text_config(tmp_path / "ray"), MockBackend, replicas=2, size=3, make_pool=ray_pool)
    assert snapshot(tmp_path / "ray") == snapshot(tmp_path / "whole")
    assert [keys(outcome) for outcome, _, _ in done] == [keys(o) for o in result.plan_runs]


def test_an_actor_killed_by_ray_mid_chunk_is_replaced_and_the_store_is_the_same(tmp_path, head):
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
