"""`widthdepth serve` measured: its overhead, batching across clients, and optillm side by side.

(a) overhead — 32 clients at once, one request each, `parallel:1` (64 tokens at most), through `serve`
    (a process of its own, the openai client over HTTP on 127.0.0.1) against the same requests sent to
    the batched llama.cpp backend in process: the same prompts, settings and sampling seeds (read back
    from the serve folder's store), so both sides generate the same tokens (checked). Generated tokens
    per second, sides interleaved three times, best of each kept. Target ≥ 0.95.
(b) batching across requests — 16 clients, each 2 requests one after another, `parallel:4` (48 tokens
    at most), against the same work as one `run` round: every request (n = 4, the same seeds) in one
    call of the batched backend. Tokens per second; p50 / p99 request latency. Target ≥ 0.9.
(c) optillm (PyPI `optillm==0.4.0`, a venv of its own, `peers/optillm_peer.py`) running majority voting
    at k = 4 over a `llama_cpp.server` with SmolLM2, against `serve --model openai:` → the same server at
    `parallel:4` (majority), and `serve` on its own batched backend. Between optillm and the server sits
    RefuseN (a shim that refuses n > 1: llama_cpp.server silently returns one choice for n = 4, so
    optillm's first n = k call would vote over one sample); widthdepth's openai: side goes through the
    same shim (its n=split sends singles). The same problems (chain:L=1 on SmolLM2; chain:L=6 on the
    built-in LM, `--peer-model lm`, which was trained on chain problems and so has accuracy to compare),
    sent as optillm sends them upstream (an empty system message, the user text after "User: "), 4
    clients at once on every side, the same temperature and token cap; accuracy by the task's own
    checker (95% bootstrap interval over problems), upstream tokens as the server reports them. (The
    upstream's model alias is "smollm2" whichever model it serves: a name only.)

    .venv/bin/python benchmarks/bench_serve.py [--part overhead|batching|optillm|all] [--out runs/bench_serve]
                                               [--peer-model smollm2|lm] [--problems 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import openai

from widthdepth.analysis.estimators import bootstrap_indices, percentile_interval
from widthdepth.backends import BackendOptions, GenerationRequest, load_backend
from widthdepth.backends.embedded import EMBEDDED, SHIPPED_LM
from widthdepth.store import Store
from widthdepth.tasks import load_task
from widthdepth.tasks.prompts import attempt_prompt

sys.path.insert(0, str(Path(__file__).parent / "peers"))
MODEL = "llamacpp:smollm2-135m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], ready: str, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(900):
        try:
            urllib.request.urlopen(ready, timeout=2).close()
            return process
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"{argv[:4]} did not start: {log.read_text()[-1500:]}")


def serve(out: Path, model: str, plan: str, max_tokens: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = start([sys.executable, "-m", "widthdepth.cli", "serve", "--model", model, "--plan", plan, "--port",
                     str(port), "--out", str(out), "--threads", "2", "--max-tokens", str(max_tokens)],
                    f"http://127.0.0.1:{port}/health", out.parent / f"{out.name}.log")
    return process, f"http://127.0.0.1:{port}/v1"


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=120)


def replay(store_path: Path, problem_keys: set[str]) -> list[GenerationRequest]:
    """The requests `serve` sent its backend for these problems: the same messages, settings and seeds
    (a request per run of chains with consecutive seeds, as the executor asks)."""
    store = Store.open(store_path, create=False)
    try:
        attempts = [a for a in store.attempts(task="served") if a.problem_key in problem_keys and a.d == 1]
    finally:
        store.close()
    by_problem: dict[str, list] = {}
    for a in attempts:
        by_problem.setdefault(a.problem_key, []).append(a)
    requests = []
    for chains in by_problem.values():
        first = min(chains, key=lambda a: a.w)
        settings = json.loads(first.settings)
        messages = tuple((m["role"], m["content"]) for m in json.loads(first.prompt))
        requests.append(GenerationRequest(messages=messages, n=len(chains), max_tokens=settings["max_tokens"],
                                          temperature=settings["temperature"], top_p=settings["top_p"],
                                          stop=tuple(settings["stop"]), seed=first.seed))
    return requests


def clients(url: str, asks: list[list[dict]], plan: str) -> tuple[float, list[float], set[str], int]:
    """One client thread per list of bodies (sent one after another): wall seconds, each request's latency,
    the problems served, completion tokens."""
    client = openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=600)

    def one(bodies: list[dict]) -> list[tuple[float, dict]]:
        out = []
        for body in bodies:
            start = time.perf_counter()
            reply = client.chat.completions.create(model="m", extra_body={"widthdepth": {"plan": plan}}, **body)
            out.append((time.perf_counter() - start, reply.usage.model_dump()))
        return out

    start = time.perf_counter()
    with ThreadPoolExecutor(len(asks)) as pool:
        done = [r for rs in pool.map(one, asks) for r in rs]
    wall = time.perf_counter() - start
    keys = {k for _, usage in done for k in usage["widthdepth"]["attempt_keys"]}
    return wall, [s for s, _ in done], keys, sum(u["completion_tokens"] for _, u in done)


def problem_keys(store_path: Path, keys: set[str]) -> set[str]:
    store = Store.open(store_path, create=False)
    try:
        return {a.problem_key for k in keys if (a := store.get_attempt(k)) is not None}
    finally:
        store.close()


def side_by_side(out: Path, name: str, plan: str, asks_for, max_tokens: int, repeats: int = 3) -> None:  # noqa: ANN001
    """`serve` against the same work in process, interleaved `repeats` times; best of each."""
    process, url = serve(out / f"{name}-store", MODEL, plan, max_tokens)
    backend = load_backend(MODEL, BackendOptions(threads=2))
    best_serve, best_local, latencies = 0.0, 0.0, []
    try:
        for r in range(repeats):
            wall, lat, keys, tokens = clients(url, asks_for(r), plan)
            requests = replay(out / f"{name}-store", problem_keys(out / f"{name}-store", keys))
            start = time.perf_counter()
            local = sum(s.completion.completion_tokens for s in backend.generate(requests))
            local_wall = time.perf_counter() - start
            assert local == tokens, f"not the same work: {local} tokens in process, {tokens} through serve"
            best_serve, best_local = max(best_serve, tokens / wall), max(best_local, local / local_wall)
            latencies += lat
            print(f"  round {r + 1}: serve {tokens} tokens in {wall:.2f} s ({tokens / wall:.1f} tok/s); in process "
                  f"{local} tokens in {local_wall:.2f} s ({local / local_wall:.1f} tok/s)", flush=True)
    finally:
        backend.close()
        stop(process)
    p50, p99 = np.percentile(latencies, [50, 99])
    print(f"{name}: serve {best_serve:.1f} tok/s, in process {best_local:.1f} tok/s, ratio "
          f"{best_serve / best_local:.3f}; request latency p50 {p50:.2f} s, p99 {p99:.2f} s "
          f"({len(latencies)} requests)", flush=True)


def overhead(out: Path) -> None:
    def asks(r: int) -> list[list[dict]]:
        return [[{"messages": [{"role": "user", "content": f"Write one sentence about the number {i}."}],
                  "max_tokens": 64, "seed": 1000 * r + i}] for i in range(32)]

    print("(a) 32 clients x 1 request, parallel:1, <= 64 tokens", flush=True)
    side_by_side(out, "overhead", "parallel:1", asks, 64)


def batching(out: Path) -> None:
    def asks(r: int) -> list[list[dict]]:
        return [[{"messages": [{"role": "user", "content": f"Give a fact about the number {c * 2 + j}."}],
                  "max_tokens": 48, "seed": 1000 * r + c * 2 + j} for j in range(2)] for c in range(16)]

    print("(b) 16 clients x 2 requests, parallel:4, <= 48 tokens", flush=True)
    side_by_side(out, "batching", "parallel:4", asks, 48)


def interval(values: list[float]) -> str:
    array = np.array(values, dtype=float)
    low, high = percentile_interval(array[bootstrap_indices(len(array), 2000, 0)].mean(axis=1))
    return f"{array.mean():.3f} [{low:.3f}, {high:.3f}]"


PEER_MODELS = {  # --peer-model: (the upstream's GGUF, the same model for serve's own backend, the task)
    "smollm2": (lambda: EMBEDDED["smollm2-135m"].path(), MODEL, "chain:L=1"),
    "lm": (lambda: SHIPPED_LM / "lm.gguf", "builtin:lm", "chain:L=6"),
}


def optillm_side_by_side(out: Path, peer_model: str, problems: int = 16, k: int = 4, max_tokens: int = 96) -> None:
    from optillm_peer import RefuseN, optillm_python, start_optillm

    gguf, local_model, task = PEER_MODELS[peer_model]
    family = load_task(task)
    items = family.problems(problems, 0)
    texts = [attempt_prompt(family, p, "chat").messages[0][1] for p in items]
    python = optillm_python()
    port = free_port()
    upstream = start([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf()),
                      "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
                      "--n_threads", "2", "--verbose", "false"], f"http://127.0.0.1:{port}/v1/models",
                     out / "llama_cpp_server.log")
    shim = RefuseN(f"http://127.0.0.1:{port}")
    sides = []
    try:
        optillm_port = free_port()
        peer = start_optillm(python, optillm_port, shim.url, k, out / "optillm.log")
        sides.append(("optillm majority_voting k=4", f"http://127.0.0.1:{optillm_port}/v1", peer,
                      lambda t: {"messages": [{"role": "user", "content": t}], "extra_body": peer.extra_body}, True))
        wd, wd_url = serve(out / "openai-store", f"openai:smollm2@{shim.url},n=split,concurrency=4", "parallel:4",
                           max_tokens)
        as_sent = lambda t: {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": f"User: {t}"}]}  # noqa: E731
        sides.append(("serve openai: parallel:4", wd_url, wd, as_sent, True))
        local, local_url = serve(out / "local-store", local_model, "parallel:4", max_tokens)
        sides.append(("serve llamacpp: parallel:4", local_url, local, as_sent, False))
        print(f"(c) {peer_model}: {problems} {task} problems, k = {k}, <= {max_tokens} tokens, 4 clients at once",
              flush=True)
        print(f"{'side':30} {'accuracy [95% CI]':24} {'tokens':>8} {'upstream calls':>15} {'seconds':>8} {'tok/s':>7}")
        for name, url, _, body, upstream_side in sides:
            shim.reset()
            client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=900)
            start_time = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                replies = list(pool.map(lambda t: client.chat.completions.create(
                    model="smollm2", temperature=0.7, max_tokens=max_tokens, **body(t)), texts))
            seconds = time.perf_counter() - start_time
            correct = [float(bool(family.check(p, family.parse(r.choices[0].message.content or "", p))))
                       for p, r in zip(items, replies)]
            totals = shim.totals()
            tokens = totals["completion_tokens"] if upstream_side else sum(r.usage.completion_tokens for r in replies)
            calls = totals["requests"] + totals["refused"] if upstream_side else 0
            print(f"{name:30} {interval(correct):24} {tokens:8,d} {calls:15d} {seconds:8.1f} {tokens / seconds:7.1f}",
                  flush=True)
    finally:
        for _, _, process, _, _ in sides:
            stop(process)
        shim.close()
        stop(upstream)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["overhead", "batching", "optillm", "all"], default="all")
    parser.add_argument("--out", default="runs/bench_serve")
    parser.add_argument("--peer-model", choices=sorted(PEER_MODELS), default="smollm2",
                        help="(c): SmolLM2 (weak here), or the built-in LM that was trained on chain problems")
    parser.add_argument("--problems", type=int, default=16, help="(c): problems asked")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    print(f"{time.strftime('%Y-%m-%d')} {platform.processor() or platform.machine()}, {MODEL}, 2 threads", flush=True)
    if args.part in ("overhead", "all"):
        overhead(out)
    if args.part in ("batching", "all"):
        batching(out)
    if args.part in ("optillm", "all"):
        optillm_side_by_side(out, args.peer_model, args.problems)


if __name__ == "__main__":
    main()
