"""A small reward-model server for tests, run as its own process: `python rewardserver.py PORT [KEY]`.

It scores an answer by a fixed rule (the answer's digit sum is even: a high score, else a low one) —
a stand-in for a real reward model, so the tests can check what widthdepth stores — and speaks the
protocols of `--verifier reward:`: widthdepth's JSON at /score (and /prm: per-step scores),
text-embeddings-inference's /predict (raw logits), and the per-step protocol at /steps (an exact
process reward for chain problems, read off the question).
"""

from __future__ import annotations

import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def rule(answer: str) -> float:
    return 0.9 if sum(int(c) for c in re.findall(r"\d", answer or "")) % 2 == 0 else 0.2


def step_scores(question: str, steps: list[str]) -> list[float]:
    """0.95 for a step line ending in the true value after that step (or a right answer line), else 0.05;
    0.9 for any other line. The true values are read off the chain question."""
    start = int(re.search(r"Start with the number (\d+)", question)[1])
    modulus = int(re.search(r"divided by (\d+)", question)[1])
    values = [start]
    for op, c in re.findall(r"Step \d+: (add|multiply by|subtract) (\d+)", question):
        values.append({"add": values[-1] + int(c), "multiply by": values[-1] * int(c),
                       "subtract": values[-1] - int(c)}[op] % modulus)
    out = []
    for line in steps:
        step = re.match(r"Step (\d+):", line)
        numbers = re.findall(r"\d+", line.split(":", 1)[-1])
        if step or line.startswith("Answer:"):
            i = int(step[1]) if step else len(values) - 1
            right = bool(numbers) and i < len(values) and int(numbers[-1]) == values[i]
            out.append(0.95 if right else 0.05)
        else:
            out.append(0.9)
    return out


def main() -> None:
    port, key = int(sys.argv[1]), (sys.argv[2] if len(sys.argv) > 2 else None)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def reply(self, status: int, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - readiness
            self.reply(200, {"ok": True})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            if key and self.headers.get("authorization") != f"Bearer {key}":
                return self.reply(401, {"error": "bad key"})
            if self.path == "/score":
                return self.reply(200, {"score": rule(body["answer"])})
            if self.path == "/prm":
                return self.reply(200, {"scores": [0.95, rule(body["answer"]), 0.99]})
            if self.path == "/steps":  # an exact process reward for chain problems, served over HTTP
                return self.reply(200, {"scores": step_scores(body["question"], body["steps"])})
            if self.path == "/predict":
                question, solution = body["inputs"][0]
                answer = solution.rsplit("Answer:", 1)[-1]
                return self.reply(200, [{"score": 4.0 if rule(answer) > 0.5 else -3.0, "label": "LABEL_0"}])
            return self.reply(404, {"error": "no such path"})

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
