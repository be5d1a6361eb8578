"""`openai:` with native n against a real server process that honours n (tests/nserver.py, on
127.0.0.1), seeded as vLLM's V1 engine does (choice i: seed + i) and as a server that seeds a request
once: a resumed run, or one that asks for some chains of a request, must store exactly what an
uninterrupted run stores, whichever the server."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from widthdepth.config import RunConfig
from widthdepth.runner import run
from widthdepth.store import DB_NAME


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["per-choice", "one"])
def server(request):
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "nserver.py"), str(port), request.param])
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/models", timeout=1).close()
            break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, "nserver.py did not start"
            time.sleep(0.1)
    yield request.param, url
    process.terminate()
    process.wait(timeout=10)


def stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
        return json.load(response)


def texts(out: Path) -> dict[str, str]:
    db = sqlite3.connect(out / DB_NAME)
    try:
        return dict(db.execute("SELECT key, text FROM attempts"))
    finally:
        db.close()


def test_resumed_and_partial_requests_store_what_an_uninterrupted_run_stores(server, tmp_path):
    seeding, url = server
    model = f"openai:toy@{url}"
    config = RunConfig(model=model, tasks=["chain:L=1"], plans=["parallel:8"], problems=3, seed=4, max_tokens=16,
                       verifier="none", out=str(tmp_path / "whole"))
    before = stats(url)
    assert run(config).generated == 24
    served = {k: stats(url)[k] - before[k] for k in ("requests", "choices")}
    whole = texts(tmp_path / "whole")
    assert len(set(whole.values())) > 12  # samples differ: the comparison below can fail

    # another plan first (chains 0-2 stored), then the full plan: chains 3-7 go as one request of 5
    config = config.model_copy(update={"out": str(tmp_path / "grown"), "plans": ["parallel:3"]})
    run(config)
    assert run(config.model_copy(update={"plans": ["parallel:8"]})).generated == 15
    assert texts(tmp_path / "grown") == whole

    # a run that lost some chains of each request (as a kill, or a failed sample, leaves it) resumes to the same
    db = sqlite3.connect(tmp_path / "grown" / DB_NAME)
    with db:
        db.execute("DELETE FROM attempts WHERE w IN (1, 2, 6)")
    db.close()
    assert run(config.model_copy(update={"plans": ["parallel:8"]})).generated == 9
    assert texts(tmp_path / "grown") == whole

    # after the start-up check (1 request) and the seeding probe (3 requests, 4 choices): native n where
    # the server seeds choice i with seed + i (one request per problem), one request per sample where not
    assert served == ({"requests": 1 + 3 + 3, "choices": 1 + 4 + 24} if seeding == "per-choice"
                      else {"requests": 1 + 3 + 24, "choices": 1 + 4 + 24})
