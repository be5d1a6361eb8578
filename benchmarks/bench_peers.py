"""Side by side with a peer: its-hub (PyPI `its-hub[lm]==1.2.0`, installed by this benchmark into a venv
of its own under ~/.cache/widthdepth/bench-peers) against widthdepth, on the same `llama_cpp.server`
serving the built-in LM (`lm.gguf`), the same prompts (widthdepth's chat prompt for each problem), the
same budget (8 samples or particles), temperature and token cap.

- its-hub: SelfConsistency, BestOfN and ParticleFiltering (steps end at a newline), its reward models
  being widthdepth's exact step checker written against its-hub's interfaces (`peers/its_hub_side.py`).
- widthdepth through `openai:` on the same server: parallel:8 (majority = self-consistency, best-of by
  `--verifier steps` = best-of-N); and through its batched llama.cpp backend (`builtin:lm`): the same,
  plus particles:8.

its-hub's client asks for `max_completion_tokens`, which llama_cpp.server ignores; a small proxy in
front of the server maps it to `max_tokens` and sums the server's reported token usage, so every side
is counted by the same server's own tokenizer (the batched backend counts its own tokens). Accuracy
per method with a 95% bootstrap interval over problems; tokens, wall time and tokens per second.

    .venv/bin/python benchmarks/bench_peers.py [--problems 32] [--out runs/bench_peers]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from widthdepth.analysis.aggregators import best_of, majority
from widthdepth.analysis.estimators import bootstrap_indices, percentile_interval
from widthdepth.backends import BackendOptions, load_backend
from widthdepth.backends.embedded import SHIPPED_LM
from widthdepth.config import make_config
from widthdepth.runner import run
from widthdepth.tasks import load_task
from widthdepth.tasks.prompts import attempt_prompt

ITS_HUB = "its-hub[lm]==1.2.0"
VENV = Path.home() / ".cache" / "widthdepth" / "bench-peers" / "its-hub-1.2.0"
TASK, BUDGET, MAX_TOKENS, TEMPERATURE = "chain:L=6", 8, 256, 0.7


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def its_hub_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", ITS_HUB], check=True)
    return python


def start_server(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(SHIPPED_LM / "lm.gguf"), "--model_alias", "lm",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2).close()
            return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("llama_cpp.server did not start")


class Proxy:
    """Forwards to the server; renames max_completion_tokens to max_tokens; sums reported usage."""

    def __init__(self, upstream: str) -> None:
        self.upstream, self.completion_tokens, self.calls = upstream, 0, 0
        lock, proxy = threading.Lock(), self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                if "max_completion_tokens" in body:
                    body["max_tokens"] = body.pop("max_completion_tokens")
                request = urllib.request.Request(proxy.upstream + self.path, data=json.dumps(body).encode(),
                                                 headers={"Content-Type": "application/json"}, method="POST")
                with urllib.request.urlopen(request, timeout=600) as response:
                    data = response.read()
                usage = json.loads(data).get("usage") or {}
                with lock:
                    proxy.completion_tokens += int(usage.get("completion_tokens") or 0)
                    proxy.calls += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        self.completion_tokens = self.calls = 0


def interval(values: list[float]) -> str:
    array = np.array(values, dtype=float)
    means = array[bootstrap_indices(len(array), 2000, 0)].mean(axis=1)
    low, high = percentile_interval(means)
    return f"{array.mean():.3f} [{low:.3f}, {high:.3f}]"


def row(side: str, method: str, correct: list[float], tokens: float, seconds: float) -> None:
    print(f"{side:34} {method:20} {interval(correct):24} {tokens:10,.0f} {seconds:8.1f} {tokens / seconds:9.1f}")


def its_hub_side(python: Path, proxy: Proxy, problems: list, family, out: Path,  # noqa: ANN001
                 algorithms: tuple[str, ...]) -> float:
    """Each algorithm in a process of its own; returns self-consistency's tokens per second."""
    spec = {"url": f"http://127.0.0.1:{proxy.port}/v1", "model": "lm", "budget": BUDGET, "max_tokens": MAX_TOKENS,
            "temperature": TEMPERATURE, "max_steps": 24,
            "problems": [{"key": p.key, "prompt": attempt_prompt(family, p, "chat").messages[0][1],
                          "values": family.step_values(p)} for p in problems]}
    by_key = {p.key: p for p in problems}
    out.mkdir(parents=True, exist_ok=True)
    throughput = 0.0
    for algorithm in algorithms:
        (out / "spec.json").write_text(json.dumps({**spec, "algorithms": [algorithm]}))
        proxy.reset()
        start = time.perf_counter()
        subprocess.run([str(python), str(Path(__file__).parent / "peers" / "its_hub_side.py"), str(out / "spec.json"),
                        str(out / f"{algorithm}.jsonl")], check=True)
        seconds = time.perf_counter() - start
        rows = [json.loads(line) for line in (out / f"{algorithm}.jsonl").read_text().splitlines()]
        errors = [r["error"] for r in rows if r["error"]]
        correct = [float(family.check(by_key[r["key"]], family.parse(r["text"], by_key[r["key"]]))) for r in rows]
        row("its-hub via llama_cpp.server", algorithm, correct, proxy.completion_tokens, seconds)
        if errors:
            print(f"  {len(errors)} problems failed in its-hub (first: {errors[0]})")
        if algorithm == "self_consistency":
            throughput = proxy.completion_tokens / seconds
    return throughput


def widthdepth_side(model: str, backend, label: str, plans: list[str], problems: int,  # noqa: ANN001
                    out: Path) -> float:
    """Each plan in a run of its own on one loaded backend; returns the best tokens per second."""
    best = 0.0
    for plan in plans:
        config = make_config({"model": model, "tasks": [TASK], "plans": [plan], "problems": problems,
                              "verifier": "steps", "max_tokens": MAX_TOKENS, "temperature": TEMPERATURE,
                              "out": str(out / plan.replace(":", "-")), "threads": 2})
        start = time.perf_counter()
        result = run(config, backend=backend)
        seconds = time.perf_counter() - start
        if result.plan_runs:
            grid = result.plan_runs[0]
            majority_right, best_right, tokens = [], [], 0
            for p in grid.problems:
                final = [c[0] for c in grid.chains[p.key]]
                tokens += sum(a.completion_tokens for a in final)
                scores = [grid.verifications[a.key].score if a.key in grid.verifications else None for a in final]
                majority_right.append(float(grid.family.check(p, majority([a.final_answer for a in final]))))
                best_right.append(float(grid.family.check(p, best_of([a.final_answer for a in final], scores))))
            row(label, f"{plan} majority", majority_right, tokens, seconds)
            row(label, f"{plan} best-of", best_right, tokens, seconds)
        for method in result.methods:
            tokens = sum(o.cost.generated_tokens for o in method.outcomes)
            row(label, plan, [float(o.correct) for o in method.outcomes], tokens, seconds)
        best = max(best, tokens / seconds)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("--out", default="runs/bench_peers")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    python = its_hub_python()
    family = load_task(TASK)
    problems = family.problems(args.problems, 0)
    port = free_port()
    server = start_server(port)
    proxy = Proxy(f"http://127.0.0.1:{port}")
    print(f"bench_peers  {time.strftime('%Y-%m-%d')}  {platform.machine()}  {TASK}, {args.problems} problems, "
          f"budget {BUDGET}, T {TEMPERATURE}, {MAX_TOKENS} tokens")
    print(f"{'side':34} {'method':20} {'accuracy [95% CI]':24} {'gen tokens':>10} {'wall s':>8} {'tok/s':>9}")
    served_model = f"openai:lm@http://127.0.0.1:{port}/v1"
    batched, served = load_backend("builtin:lm", BackendOptions(threads=2)), load_backend(served_model, BackendOptions())
    try:
        peer = its_hub_side(python, proxy, problems, family, out, ("self_consistency", "best_of_n",
                                                                   "particle_filtering"))
        widthdepth_side(served_model, served, "widthdepth via llama_cpp.server", ["parallel:8"], args.problems, out / "openai")
        ours = widthdepth_side("builtin:lm", batched, "widthdepth batched llama.cpp", ["parallel:8", "particles:8"], args.problems,
                               out / "batched")
        # the throughput pair once more, interleaved (throughput drifts here): best of two each
        peer = max(peer, its_hub_side(python, proxy, problems, family, out / "again", ("self_consistency",)))
        ours = max(ours, widthdepth_side("builtin:lm", batched, "widthdepth batched llama.cpp", ["parallel:8"],
                                         args.problems, out / "again"))
        print(f"\nbatched llama.cpp over its-hub self-consistency, tokens per second (best of two each): "
              f"{ours:,.0f} / {peer:,.0f} = {ours / peer:.2f}x")
    finally:
        batched.close()
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
