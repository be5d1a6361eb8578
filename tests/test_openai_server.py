"""The openai: backend against a real OpenAI-compatible server: llama-cpp-python's server, started by
the test on 127.0.0.1, serving the embedded SmolLM2 — directly, and through a proxy that injects
faults (errors, rate limits with Retry-After, hangs past the timeout, dropped connections,
malformed JSON)."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter

import pytest
from faultproxy import FAULTS, FaultProxy
from servers import llama_cpp_server

from widthdepth.backends import BackendOptions, GenerationRequest, load_backend
from widthdepth.cli import main
from widthdepth.closing import closing_table
from widthdepth.config import RunConfig
from widthdepth.runner import run
from widthdepth.store import DB_NAME

pytestmark = pytest.mark.model

KEY = "test-secret-7f3a"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """llama-cpp-python's OpenAI-compatible server with SmolLM2, requiring an API key."""
    process = llama_cpp_server(tmp_path_factory.mktemp("server"), key=KEY)
    yield process.url
    process.stop(timeout=20)


def config(tmp_path, url, **values) -> RunConfig:
    values.setdefault("tasks", ["chain:L=1"])
    values.setdefault("plans", ["grid:3x2"])
    return RunConfig(model=f"openai:smollm2@{url}/v1", problems=3, seed=5, max_tokens=24, out=str(tmp_path / "out"),
                     **values)


def attempts(out) -> list[tuple]:
    db = sqlite3.connect(out / DB_NAME)
    try:
        return db.execute("SELECT key, problem_key, w, d, status, error, text FROM attempts ORDER BY key").fetchall()
    finally:
        db.close()


def test_a_grid_runs_through_the_openai_backend(server, tmp_path):
    result = run(config(tmp_path, server), api_key=KEY)
    assert result.model == "openai:smollm2" and result.generated == 3 * 3 * 2
    rows = attempts(tmp_path / "out")
    assert len(rows) == 18 and {r[4] for r in rows} == {"ok"}
    assert all(r[6] for r in rows)  # real text
    db = sqlite3.connect(tmp_path / "out" / DB_NAME)
    counts = db.execute("SELECT prompt_tokens, completion_tokens FROM attempts").fetchall()
    db.close()
    assert all(p > 0 and c > 0 for p, c in counts)  # from the server's usage
    # the key went to the server, never to the store or the saved config
    for path in (tmp_path / "out").iterdir():
        assert KEY.encode() not in path.read_bytes(), path.name
    # a rerun of the same command reads everything back
    assert run(config(tmp_path, server), api_key=KEY).generated == 0


def test_n_is_checked_and_split_where_the_server_ignores_it(server):
    backend = load_backend(f"openai:smollm2@{server}/v1", BackendOptions(api_key=KEY))
    try:
        request = GenerationRequest(messages=(("user", "Say a colour."),), n=3, max_tokens=8, temperature=0.9, seed=40)
        samples = sorted(backend.generate([request]), key=lambda s: s.sample_index)
        assert [s.sample_index for s in samples] == [0, 1, 2]  # llama-cpp-python returns one choice for n=3
        assert backend._native_n is False
        alone = list(backend.generate([GenerationRequest(messages=request.messages, n=1, max_tokens=8,
                                                         temperature=0.9, seed=41)]))
        assert alone[0].completion.text == samples[1].completion.text  # sample i is seed + i
    finally:
        backend.close()


def test_replicas_share_the_servers_concurrency(server):
    """`--executor ray`: each openai: replica keeps its share of `concurrency` in flight, at least one."""
    for replicas, share in ((1, 10), (4, 2), (32, 1)):
        backend = load_backend(f"openai:smollm2@{server}/v1,concurrency=10", BackendOptions(api_key=KEY,
                                                                                          replicas=replicas))
        try:
            assert backend.settings.concurrency == share
        finally:
            backend.close()


def test_a_wrong_key_stops_the_run_in_one_line(server, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "--model", f"openai:smollm2@{server}/v1", "--tasks", "chain:L=1", "--plan", "parallel:2",
                 "--problems", "1", "--out", str(out), "--api-key", "wrong"])
    error = capsys.readouterr().err
    assert code == 2, error
    last = error.strip().splitlines()[-1]  # (above it: the progress bar's last frame)
    assert last.startswith("error: --model openai:smollm2") and "API key" in last and "HTTP 401" in last
    assert not (out / DB_NAME).exists()  # refused before any store was made


def test_faults_leave_every_attempt_stored_once_or_failed_and_a_rerun_fills_them(server, tmp_path):
    # every kind of fault at least once (the schedule), then each at its rate
    proxy = FaultProxy(server, {"500": 0.08, "429": 0.08, "hang": 0.04, "drop": 0.08, "drop_after": 0.06,
                                "malformed": 0.08}, seed=1, hang_seconds=9.0, retry_after="1",
                       schedule=["forward"] + list(FAULTS)).start()
    try:
        faulty = config(tmp_path, proxy.url, plans=["grid:4x2"])
        faulty = faulty.model_copy(update={"model": f"{faulty.model},timeout=6,retries=1,concurrency=2"})
        started = time.monotonic()
        first = run(faulty, api_key=KEY)
        elapsed = time.monotonic() - started
    finally:
        proxy.stop()
    assert all(proxy.counts[f] >= 1 for f in FAULTS), proxy.counts
    assert all(a == f"Bearer {KEY}" for a in proxy.authorizations)
    rows = attempts(tmp_path / "out")
    cells = Counter((r[1], r[2], r[3]) for r in rows)
    assert all(n == 1 for n in cells.values()), "an attempt was stored twice"
    failed = [r for r in rows if r[4] == "failed"]
    ok = [r for r in rows if r[4] == "ok"]
    assert failed, "with retries=1 some attempts should have failed for good"
    assert all(r[5] for r in failed)  # with their reason
    # round 1 is 3 problems x 4 chains; a chain whose round 1 failed has no round 2 yet
    assert {(r[1], r[2]) for r in rows if r[3] == 1} == {(p, w) for p in {r[1] for r in rows} for w in range(4)}
    assert first.generated == len(rows) and elapsed < 240
    assert closing_table(first)[-1].failed == len(failed)  # counted apart in the closing table
    # the same command, now without faults: the failed ones are filled in, nothing done twice
    second = run(config(tmp_path, server, plans=["grid:4x2"]).model_copy(
        update={"model": f"openai:smollm2@{server}/v1,concurrency=2"}), api_key=KEY)
    after = attempts(tmp_path / "out")
    assert len(after) == 3 * 4 * 2 and {r[4] for r in after} == {"ok"}
    kept = {r[0]: r for r in after}
    assert all(kept[r[0]] == r for r in ok), "a stored attempt changed"
    assert second.reused == len(ok) and second.generated == 24 - len(ok)
