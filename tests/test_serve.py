"""`widthdepth serve` as a real process on 127.0.0.1 with the embedded SmolLM2, talked to by the official
`openai` client (sync, async, streaming) and by raw HTTP where a client cannot misbehave enough: keys,
bad requests, a client that leaves, SIGTERM, a full queue, many clients at once, a policy's budget,
and a proxy in front of a proxy (serve → openai: → llama_cpp.server)."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from servers import llama_cpp_server, widthdepth_serve

from widthdepth.cli import main
from widthdepth.store import DB_NAME

pytestmark = pytest.mark.model

KEY = "serve-secret-0b1d"
ASK = [{"role": "user", "content": "What is 3 + 4? Reply with the number."}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    server = widthdepth_serve(folder, "--api-key", KEY, "--plan", "parallel:2", "--max-tokens", "16",
                              "--context-length", "512", "--max-n", "4", "--max-attempts", "16")
    yield server
    assert server.stop() == 0, server.log()[-2000:]
    assert KEY not in server.log() and KEY not in (folder / "store" / DB_NAME).read_bytes().decode("latin-1")


def client(server, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, **options)


def rows(server, sql: str) -> list[tuple]:
    db = sqlite3.connect(server.log_path.parent / "store" / DB_NAME)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def post(server, path: str, data: bytes, key: str | None = KEY) -> tuple[int, dict, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(server.url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_the_official_client_sync_async_and_streaming(server):
    sync = client(server)
    assert [m.id for m in sync.models.list()] == ["llamacpp:smollm2-135m"]
    reply = sync.chat.completions.create(model="smollm2", messages=ASK, max_tokens=12)
    usage = reply.usage.model_dump()
    assert reply.choices[0].message.content and reply.choices[0].finish_reason in ("stop", "length")
    assert usage["widthdepth"]["plan"] == "grid:2x1" and usage["widthdepth"]["attempts"] == 2
    keys = usage["widthdepth"]["attempt_keys"]
    stored = rows(server, f"SELECT prompt_tokens, completion_tokens, text FROM attempts WHERE key IN {tuple(keys)}")
    assert usage["completion_tokens"] == sum(r[1] for r in stored)  # what the request really generated
    assert usage["prompt_tokens"] == stored[0][0]  # one prompt, evaluated once for both samples
    assert reply.choices[0].message.content in [r[2] for r in stored]

    prefixed = sync.chat.completions.create(model="grid:2x2/smollm2", messages=ASK, max_tokens=12, n=2, seed=7)
    assert len(prefixed.choices) == 2 and prefixed.usage.model_dump()["widthdepth"]["attempts"] == 8
    again = sync.chat.completions.create(model="grid:2x2/smollm2", messages=ASK, max_tokens=12, n=2, seed=7)
    assert [c.message.content for c in again.choices] == [c.message.content for c in prefixed.choices]
    assert again.usage.completion_tokens == 0 and again.usage.model_dump()["widthdepth"]["reused"] == 8  # from the store

    async def both() -> list:
        async_client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
        asks = [async_client.chat.completions.create(model="smollm2", messages=ASK, max_tokens=8,
                                                     extra_body={"widthdepth": {"plan": plan}})
                for plan in ("parallel:3", "early:4")]
        return await asyncio.gather(*asks)

    three, early = asyncio.run(both())
    assert three.usage.model_dump()["widthdepth"]["plan"] == "grid:3x1"
    assert early.usage.model_dump()["widthdepth"]["plan"].startswith("early:4")

    chunks = list(sync.chat.completions.create(model="smollm2", messages=ASK, max_tokens=8, stream=True,
                                               stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text and chunks[-2].choices[0].finish_reason in ("stop", "length") and chunks[-1].usage.total_tokens > 0
    assert len({c.id for c in chunks}) == 1

    completion = sync.completions.create(model="smollm2", prompt="The capital of France is", max_tokens=6)
    assert completion.choices[0].text and completion.usage.model_dump()["widthdepth"]["attempts"] == 2


def test_bad_requests_get_openai_errors_and_the_server_keeps_serving(server):
    status, headers, body = post(server, "/v1/chat/completions", json.dumps({"model": "m", "messages": ASK}).encode(), key=None)
    assert status == 401 and body["error"]["code"] == "invalid_api_key" and headers.get("www-authenticate") == "Bearer"
    assert post(server, "/v1/chat/completions", b"{}", key="wrong")[0] == 401
    status, _, body = post(server, "/v1/chat/completions", b'{"model": "m", "messages": [')
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    sync = client(server)
    with pytest.raises(openai.BadRequestError) as unknown:
        sync.chat.completions.create(model="smollm2", messages=ASK, extra_body={"widthdepth": {"plan": "wide:4"}})
    assert unknown.value.body["code"] == "unknown_plan" and "valid: parallel" in unknown.value.body["message"]
    with pytest.raises(openai.BadRequestError) as many:
        sync.chat.completions.create(model="smollm2", messages=ASK, n=5)
    assert many.value.body["param"] == "n" and "--max-n" in many.value.body["message"]
    with pytest.raises(openai.BadRequestError) as long:
        sync.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "word " * 600}])
    assert long.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as search:
        sync.chat.completions.create(model="beam:4,2/smollm2", messages=ASK)  # needs a verifier this server has not
    assert "verifier" in search.value.body["message"]
    assert post(server, "/v1/nothing", b"{}")[0] == 404
    assert sync.chat.completions.create(model="smollm2", messages=ASK, max_tokens=4).choices[0].message.content


def test_a_client_that_leaves_cancels_its_work_charged_and_stored_as_cancelled(server):
    body = json.dumps({"model": "smollm2", "messages": [{"role": "user", "content": "Write a long story."}],
                       "max_tokens": 400, "widthdepth": {"plan": "parallel:4"}}).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + KEY.encode() + b"\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body)
        time.sleep(2.0)  # the plan is running
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cancelled = rows(server, "SELECT completion_tokens FROM attempts WHERE status = 'cancelled' AND settings LIKE '%400%'")
        if len(cancelled) == 4:
            break
        time.sleep(0.3)
    assert len(cancelled) == 4 and all(0 < tokens < 400 for (tokens,) in cancelled)
    deadline = time.monotonic() + 10
    while not rows(server, "SELECT usage FROM served_requests WHERE status = 'cancelled'") and time.monotonic() < deadline:
        time.sleep(0.2)
    (usage,) = rows(server, "SELECT usage FROM served_requests WHERE status = 'cancelled'")[0]
    assert json.loads(usage)["widthdepth"]["cancelled"] == 4 and json.loads(usage)["completion_tokens"] > 0  # charged
    assert "cancelled: the client went away" in server.log()
    assert json.loads(urllib.request.urlopen(server.url + "/health").read())["running"] == 0


def test_many_clients_at_once_lose_nothing_and_store_each_attempt_once(server):
    """32 clients x 4 requests: every request answered once, every attempt stored once."""
    before = rows(server, "SELECT COUNT(*) FROM attempts")[0][0]
    sync = client(server, timeout=300)

    def one_client(c: int) -> list[list[str]]:
        return [sync.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": f"Say {c}-{r}."}],
                                             max_tokens=4).usage.model_dump()["widthdepth"]["attempt_keys"]
                for r in range(4)]

    with ThreadPoolExecutor(32) as pool:
        answered = [keys for client_keys in pool.map(one_client, range(32)) for keys in client_keys]
    keys = [k for ks in answered for k in ks]
    assert len(answered) == 128 and len(keys) == 256 and len(set(keys)) == 256
    assert rows(server, "SELECT COUNT(*) FROM attempts")[0][0] == before + 256
    assert rows(server, f"SELECT COUNT(*) FROM attempts WHERE key IN ({','.join(repr(k) for k in keys)})")[0][0] == 256


def test_sigterm_drains_requests_in_flight_then_exits_0(tmp_path):
    server = widthdepth_serve(tmp_path, "--plan", "parallel:2", "--max-tokens", "48")
    replies: list = []
    thread = threading.Thread(target=lambda: replies.append(client(server, timeout=120).chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Count from one to twenty."}], max_tokens=48)))
    thread.start()
    time.sleep(1.0)
    assert server.stop() == 0
    thread.join()
    assert replies and replies[0].choices[0].message.content and replies[0].usage.completion_tokens > 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)


def test_a_full_queue_answers_429_with_retry_after(tmp_path):
    server = widthdepth_serve(tmp_path, "--plan", "parallel:2", "--max-tokens", "64", "--workers", "1", "--queue", "0")
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Tell a story."}]}).encode()
    try:
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: post(server, "/v1/chat/completions", body, key=None), range(3)))
        refused = [a for a in answers if a[0] == 429]
        assert refused and all(int(h["retry-after"]) >= 1 and b["error"]["code"] == "rate_limit_exceeded"
                               for _, h, b in refused)
        assert any(a[0] == 200 for a in answers)
    finally:
        assert server.stop() == 0


def test_a_policy_budget_probes_bins_and_runs_the_bins_plan(tmp_path, capsys):
    grid = tmp_path / "grid"
    assert main(["run", "--model", "llamacpp:smollm2-135m", "--tasks", "chain:L=1", "--plan", "grid:4x1",
                 "--problems", "16", "--max-tokens", "16", "--threads", "2", "--out", str(grid)]) == 0
    assert main(["allocate", "fit", str(grid), "--out", str(tmp_path / "policy.json"), "--predictor", "agreement",
                 "--bins", "2", "--probe", "2"]) == 0
    policy = json.loads((tmp_path / "policy.json").read_text())
    budget = max(level["budget"] for level in policy["levels"])
    capsys.readouterr()
    server = widthdepth_serve(tmp_path, "--policy", f"{tmp_path / 'policy.json'}@{budget}", "--max-tokens", "16")
    try:
        reply = client(server).chat.completions.create(model="smollm2", messages=ASK, extra_body={"widthdepth": {"budget": budget}})
        used = reply.usage.model_dump()["widthdepth"]
        assert used["plan"].startswith("adaptive:") and used["attempts"] >= 2
        decisions = rows(server, "SELECT plan, w, d FROM allocations")
        assert len(decisions) == 1 and decisions[0][1] * decisions[0][2] >= 1
    finally:
        assert server.stop() == 0


def test_a_proxy_in_front_of_a_proxy(tmp_path):
    """serve → openai: → a real llama_cpp.server: the plan's samples go upstream, their usage comes back."""
    upstream = llama_cpp_server(tmp_path, key="up-key")
    try:
        server = widthdepth_serve(tmp_path, "--model", f"openai:smollm2@{upstream.url}/v1,concurrency=2",
                                  "--plan", "parallel:3", "--max-tokens", "12", env={"WIDTHDEPTH_API_KEY": "up-key"})
        try:
            reply = client(server).chat.completions.create(model="smollm2", messages=ASK)
            used = reply.usage.model_dump()
            assert used["widthdepth"]["attempts"] == 3 and used["completion_tokens"] > 0 and reply.choices[0].message.content
        finally:
            assert server.stop() == 0
    finally:
        upstream.stop()


def test_the_serve_folder_is_data_with_gold_free_views_only(server, capsys):
    folder = server.log_path.parent / "store"
    client(server).chat.completions.create(model="smollm2", messages=ASK, max_tokens=6)
    statuses = {status for (status,) in rows(server, "SELECT status FROM served_requests")}
    assert "ok" in statuses and statuses <= {"ok", "cancelled", "failed"}
    assert main(["report", str(folder)]) == 0
    page = (folder / "report.html").read_text()
    assert "served traffic" in page and "no gold answers" in page and "grid:2x1" in page
    capsys.readouterr()
    assert main(["allocate", "fit", str(folder), "--out", str(folder / "policy.json")]) == 2
    assert "no gold answers" in capsys.readouterr().err
