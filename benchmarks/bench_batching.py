"""Batched width on the embedded llama.cpp backend: its overhead, and what it buys over a server.

One run of `parallel:16` on `chain:L=2` (chat prompts, temperature 0.7, top-p 0.95, 96 tokens at
most, seed 0) through `llamacpp:smollm2-135m`, timed from `runner.run` in to out (model loaded
before; prompts, sampling, parsing and the store included), side by side with:

1. raw replay (`batching_replay.py`): the same work through llama-cpp-python's low-level API alone —
   the same prompts (tokens of the run's stored prompts), the same slots (n_seq_max 16), each prompt
   evaluated once and its KV copied (`llama_memory_seq_cp`), every sample kept in the batch for as
   many steps as it generated tokens in the run, samples joining and leaving as the backend
   scheduled them; generated positions are fed a filler token (same work for any id). No sampling,
   no stop strings, no parsing, no store: what `llama_decode` alone costs for that schedule. Before
   the clock, an untimed run records the backend's own calls, and the replay's schedule must equal
   them op for op (`schedule.matches_run`).
2. what a user would run instead: self-consistency at N = 16 through `python -m llama_cpp.server`
   (n_threads 2) with the official `AsyncOpenAI` client — the same chat messages, temperature,
   top_p, max_tokens, no stop strings (chat prompts have none), one request per sample with the
   run's seed for that sample (the server ignores `n`); a problem's 16 requests sent at once, the
   problems one after another. The server's own extra samplers (top_k, min_p, repeat_penalty) are
   switched off so that both sides sample alike; tokens/s counts `usage.completion_tokens`.

The sides are interleaved, ROUNDS times: this machine's throughput drifts by up to 1.5x within
minutes. Reported: the best of each side (the least disturbed run), and the median of the ratios of
runs made back to back.

Targets: widthdepth / raw replay >= 0.95 (tokens per second; `overhead_ratio`), and
widthdepth / server >= 2.5 (`speedup_over_server`).

    .venv/bin/python benchmarks/bench_batching.py
"""

from __future__ import annotations

import asyncio
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # batching_replay, when run through run_all.py

from batching_replay import Job, Recorder, decode_steps, replay, same_schedule, schedule  # noqa: E402

from widthdepth.backends import BackendOptions, load_backend  # noqa: E402
from widthdepth.backends.embedded import EMBEDDED  # noqa: E402
from widthdepth.config import RunConfig  # noqa: E402
from widthdepth.runner import run  # noqa: E402
from widthdepth.store import Store  # noqa: E402

THREADS, WIDTH, MAX_TOKENS, PROBLEMS, ROUNDS = 2, 16, 96, 3, 5
MODEL, TASK, N_BATCH = "llamacpp:smollm2-135m", "chain:L=2", 512
SAMPLING = {"temperature": 0.7, "top_p": 0.95}
SAME_SAMPLERS = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
"""llama_cpp.server's own samplers (top_k 40, min_p 0.05, repeat_penalty 1.1 by default) switched off, so
the server samples as the run does: temperature and top-p alone."""


@dataclass(frozen=True)
class Request:
    """What the run asked of the backend for one problem: its chat messages, their prompt tokens, and
    per sample (chain w) the seed, the tokens generated and the finish reason."""

    messages: tuple[tuple[str, str], ...]
    tokens: tuple[int, ...]
    seeds: tuple[int, ...]
    completion_tokens: tuple[int, ...]
    finish_reasons: tuple[str, ...]


def run_config(folder: str) -> RunConfig:
    return RunConfig(model=MODEL, tasks=[TASK], plans=[f"parallel:{WIDTH}"], problems=PROBLEMS,
                     max_tokens=MAX_TOKENS, seed=0, threads=THREADS, out=folder, **SAMPLING)


def widthdepth_parallel(folder: str) -> tuple[float, int]:
    """Seconds of one parallel:16 run into a fresh store (model loaded before the clock), and the
    tokens it generated."""
    backend = load_backend(MODEL, BackendOptions(threads=THREADS))
    try:
        start = time.perf_counter()
        run(run_config(folder), backend=backend)
        seconds = time.perf_counter() - start
    finally:
        backend.close()
    return seconds, sum(a.completion_tokens for a in _attempts(folder))


def recorded_run(folder: str) -> tuple[list, list[Request]]:
    """An untimed run whose decoder calls are written down; and what it sent, read from its store."""
    backend = load_backend(MODEL, BackendOptions(threads=THREADS))
    recorder = backend.decoder._lib = Recorder(backend.decoder._lib)  # private: this benchmark only
    try:
        run(run_config(folder), backend=backend)
        return recorder.ops, _requests(folder, backend)
    finally:
        backend.close()


def _attempts(folder: str) -> list:
    store = Store.open(folder, create=False)
    try:
        return list(store.attempts())
    finally:
        store.close()


def _requests(folder: str, backend) -> list[Request]:  # noqa: ANN001
    store = Store.open(folder, create=False)
    try:
        (task,) = {a.task for a in store.attempts()}  # the family's full spec
        order = [p["key"] for p in store.problems(task)]  # the order the runner sent them in
        by_problem = {key: [] for key in order}
        for attempt in store.attempts():
            by_problem[attempt.problem_key].append(attempt)
    finally:
        store.close()
    requests = []
    for key in order:
        attempts = sorted(by_problem[key], key=lambda a: a.w)
        first = attempts[0]
        if json.loads(first.settings)["stop"]:
            raise RuntimeError("the replay cannot tell a stop string from an end token; use chat prompts")
        messages = tuple((m["role"], m["content"]) for m in json.loads(first.prompt))
        tokens = tuple(backend._tokens(backend.render_chat(messages)))  # as the backend tokenizes
        if len(tokens) != first.prompt_tokens:
            raise RuntimeError(f"prompt of {key}: {len(tokens)} tokens here, {first.prompt_tokens} in the run")
        requests.append(Request(messages, tokens, tuple(a.seed for a in attempts),
                                tuple(a.completion_tokens for a in attempts), tuple(a.finish_reason for a in attempts)))
    return requests


def jobs(requests: list[Request]) -> list[Job]:
    return [Job(r.tokens, tuple(decode_steps(c, f) for c, f in zip(r.completion_tokens, r.finish_reasons)))
            for r in requests]


# -- llama_cpp.server + the openai client ------------------------------------------------------------
@contextmanager
def llama_server() -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on a free local port, as tests/test_openai_server.py starts it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(EMBEDDED["smollm2-135m"].path()),
         "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
         "--n_threads", str(THREADS), "--n_threads_batch", str(THREADS), "--verbose", "false"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    raise RuntimeError(f"llama_cpp.server did not start: {log.read()[-2000:]}") from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


async def _self_consistency(url: str, requests: list[Request]) -> tuple[float, int, list[int]]:
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=f"{url}/v1", api_key="none", max_retries=0, timeout=900) as client:
        async def sample(request: Request, seed: int):  # noqa: ANN202
            return await client.chat.completions.create(
                model="smollm2", messages=[{"role": r, "content": c} for r, c in request.messages],
                max_tokens=MAX_TOKENS, seed=seed, **SAMPLING, extra_body=SAME_SAMPLERS)

        start, tokens, prompt_tokens = time.perf_counter(), 0, []
        for request in requests:  # what a self-consistency script does: a problem's N samples at once
            replies = await asyncio.gather(*(sample(request, seed) for seed in request.seeds))
            tokens += sum(reply.usage.completion_tokens for reply in replies)
            prompt_tokens.append(replies[0].usage.prompt_tokens)
        return time.perf_counter() - start, tokens, prompt_tokens


def server_self_consistency(url: str, requests: list[Request]) -> tuple[float, int, list[int]]:
    """Seconds and completion tokens of every sample of every request, through the server; and the
    prompt tokens it counted (equal to the run's when it renders the chat template alike)."""
    return asyncio.run(_self_consistency(url, requests))


def main() -> dict:
    model_path = str(EMBEDDED["smollm2-135m"].path())
    with tempfile.TemporaryDirectory() as folder, llama_server() as url:
        recorded, requests = recorded_run(str(Path(folder) / "recorded"))  # also the warm-up
        planned = schedule(jobs(requests), WIDTH, N_BATCH)
        mismatch = same_schedule(planned, recorded)
        generated = sum(sum(r.completion_tokens) for r in requests)
        server_self_consistency(url, [replace(requests[0], seeds=requests[0].seeds[:1])])  # the server's warm-up
        ours, raws, servers, server_tokens = [], [], [], 0
        for k in range(ROUNDS):
            seconds, tokens = widthdepth_parallel(str(Path(folder) / f"run{k}"))
            if tokens != generated:
                raise RuntimeError(f"timed run {k} generated {tokens} tokens, the recorded run {generated}")
            ours.append(tokens / seconds)
            raws.append(generated / replay(model_path, planned, WIDTH, 4096, N_BATCH, THREADS,
                                           filler=requests[0].tokens[-1]))
            seconds, server_tokens, server_prompt_tokens = server_self_consistency(url, requests)
            servers.append(server_tokens / seconds)
    samples = sum(len(r.seeds) for r in requests)
    results = {
        "date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {THREADS} threads",
        "problems": len(requests), "samples": samples, "mean_generated_tokens": round(generated / samples, 1),
        "schedule": {"decode_calls": sum(op[0] == "decode" for op in planned),
                     "matches_run": mismatch is None, **({"mismatch": mismatch} if mismatch else {})},
        "widthdepth_parallel16_tok_s": [round(r, 1) for r in ours],
        "raw_replay_tok_s": [round(r, 1) for r in raws],
        "server_sc16_tok_s": [round(r, 1) for r in servers],
        "server_mean_generated_tokens": round(server_tokens / samples, 1),
        "server_prompt_tokens_match": server_prompt_tokens == [len(r.tokens) for r in requests],
        "overhead_ratio": round(max(ours) / max(raws), 3),
        "overhead_ratio_median_paired": round(statistics.median(o / r for o, r in zip(ours, raws)), 3),
        "speedup_over_server": round(max(ours) / max(servers), 2),
        "speedup_over_server_median_paired": round(statistics.median(o / s for o, s in zip(ours, servers)), 2),
    }
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
