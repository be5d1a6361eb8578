"""`--verifier reward:URL`: a served reward model over HTTP — against a real server process started by
the test, directly and through the fault-injecting proxy."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from faultproxy import FaultProxy
from rewardserver import rule

from widthdepth.cli import main
from widthdepth.closing import closing_table
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.runner import prepare, run
from widthdepth.store import DB_NAME
from widthdepth.verifiers.reward import parse_reward

KEY = "reward-key-31"


def start_server(port_holder: list, key: str | None = None) -> subprocess.Popen:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(Path(__file__).parent / "rewardserver.py"), str(port)]
                               + ([key] if key else []))
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    port_holder.append(url)
    return process


@pytest.fixture(scope="module")
def server():
    holder: list = []
    process = start_server(holder, KEY)
    yield holder[0]
    process.terminate()
    process.wait(timeout=10)


def verifications(out) -> dict[str, tuple]:
    db = sqlite3.connect(Path(out) / DB_NAME)
    try:
        rows = db.execute("SELECT v.attempt_key, v.verifier, v.score, a.final_answer, v.prompt_tokens "
                          "FROM verifications v JOIN attempts a ON a.key = v.attempt_key").fetchall()
    finally:
        db.close()
    return {r[0]: r[1:] for r in rows}


def config(tmp_path, verifier: str) -> RunConfig:
    return RunConfig(model="mock:", tasks=["chain:L=1"], plans=["parallel:4"], problems=5, seed=2,
                     verifier=verifier, out=str(tmp_path / "out"))


@pytest.mark.parametrize("path,fmt", [("/score", "json"), ("/prm", "json"), ("/predict", "tei")])
def test_scores_come_from_the_server_and_drive_best_of(server, tmp_path, path, fmt):
    result = run(config(tmp_path, f"reward:{server}{path},format={fmt},name=rm,params=1e6"), api_key=KEY)
    stored = verifications(tmp_path / "out")
    assert len(stored) == 20
    for verifier, score, answer, tokens in stored.values():
        assert verifier == "reward:rm" and 0.0 <= score <= 1.0 and tokens > 0
        if fmt == "tei":  # logits 4 / -3 through the logistic function
            assert score == pytest.approx(1 / (1 + 2.718281828459045 ** (-4.0 if rule(answer) > 0.5 else 3.0)))
        else:
            assert score == pytest.approx(rule(answer))
    assert not result.verification_failures
    assert all(row.best_of is not None for row in closing_table(result))


def test_failures_are_left_unverified_and_a_rerun_fills_them(server, tmp_path):
    proxy = FaultProxy(server, {"500": 0.15, "429": 0.1, "drop": 0.1, "malformed": 0.15, "hang": 0.05},
                       seed=3, hang_seconds=4.0, retry_after="0").start()
    try:
        faulty = run(config(tmp_path, f"reward:{proxy.url}/score,name=rm,retries=1,timeout=1"), api_key=KEY)
    finally:
        proxy.stop()
    first = verifications(tmp_path / "out")
    assert faulty.verification_failures and len(first) + len(faulty.verification_failures) == 20
    assert all(a == f"Bearer {KEY}" for a in proxy.authorizations)
    again = run(config(tmp_path, f"reward:{server}/score,name=rm"), api_key=KEY)
    after = verifications(tmp_path / "out")
    assert len(after) == 20 and not again.verification_failures
    assert all(after[k] == v for k, v in first.items())  # what was stored stays as it was
    assert again.generated == 0  # the attempts themselves were not generated again


def test_bad_specs_and_a_refused_key_are_one_line_errors(server, tmp_path, capsys):
    for spec, message in (("reward:ftp://x", "expected reward:http"), ("reward:http://h:1/s,format=xml", "format="),
                          ("reward:http://h:1/s,key=abc", "would be stored"), ("reward:http://h:1/s,bogus=1", "bogus"),
                          ("reward:http://h:1/s,retries=-1", "retries")):
        with pytest.raises(WidthdepthError, match=message):
            parse_reward(spec)
        with pytest.raises(WidthdepthError):
            prepare(config(tmp_path, spec))
    code = main(["run", "--model", "mock:", "--tasks", "chain:L=1", "--plan", "parallel:2", "--problems", "1",
                 "--verifier", f"reward:{server}/score", "--out", str(tmp_path / "k"), "--api-key", "wrong"])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and error.startswith("error: --verifier reward:") and "API key" in error


def test_a_served_process_reward_model_scores_steps_and_guides_search(server, tmp_path):
    """format=steps sends the solution's lines and takes the minimum of the per-step scores; it scores
    unfinished solutions, so beam search runs on it (the test server's /steps is an exact process reward
    for chains, read off the question) and finds what single chains miss."""
    from test_search import one_step

    from widthdepth.backends.mock import MockBackend
    from widthdepth.store import Store

    verifier = f"reward:{server}/steps,format=steps,name=prm"
    config = RunConfig(model="mock:", tasks=["chain:L=4"], plans=["parallel:8", "beam:4,2"], problems=12,
                       verifier=verifier, max_tokens=200, out=str(tmp_path / "out"))
    result = run(config, backend=MockBackend(script=one_step), api_key=KEY)
    assert not result.verification_failures
    store = Store.open(tmp_path / "out")
    beam = [a for a in store.attempts() if a.mode == "beam"]
    scored = [store.get_verification(a.key, "reward:prm") for a in beam]
    assert all(v is not None for v in scored) and {v.score for v in scored} <= {0.05, 0.9, 0.95}
    partial = next(v for a, v in zip(beam, scored) if a.d == 2)  # "Start: x" then "Step 1: ..."
    assert len(__import__("json").loads(partial.prompt)["steps"]) == 2
    store.close()
    (method,) = result.methods
    one_chain = sum(c[0][0].correct for c in result.plan_runs[0].chains.values()) / 12
    assert method.accuracy >= 0.9 > one_chain + 0.3


def test_a_step_prm_that_answers_the_wrong_number_of_scores_is_malformed():
    from widthdepth.verifiers.reward import RewardVerifier

    verifier = RewardVerifier(parse_reward("reward:http://127.0.0.1:1/steps,format=steps"))
    assert verifier.scores_partial and verifier._score({"scores": [0.9, 0.2]}, 2) == 0.2
    with pytest.raises(ValueError, match="expected 3 step scores"):
        verifier._score({"scores": [0.9, 0.2]}, 3)
