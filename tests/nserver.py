"""A small OpenAI-compatible server that honours ``n``, for tests: `python nserver.py PORT SEEDING`.

It answers chat and completions requests with text drawn from a seeded generator (a few words and
"Answer: <number>"), so what matters — which choice gets which randomness — is all there is.
SEEDING says how the n choices of one request are seeded, as real servers differ:
``per-choice`` — choice i draws with seed + i (vLLM's V1 engine does this); ``one`` — one generator
seeded once draws all n choices in turn (one seed for the request, as older engines did). Counts
every request it serves at /stats.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = "the a so then next we add take carry result step value".split()


def draw(rng: random.Random, max_tokens: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
    return " ".join(words + ["Answer:", str(rng.randint(0, 9))])[: max(1, max_tokens) * 8]


def main() -> None:
    port, seeding = int(sys.argv[1]), sys.argv[2]
    assert seeding in ("per-choice", "one"), seeding
    stats = {"requests": 0, "choices": 0}
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def reply(self, payload: object) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - readiness and counts
            with lock:
                self.reply({"object": "list", "data": [{"id": "toy", "object": "model"}], **stats})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            n, seed, max_tokens = int(body.get("n") or 1), int(body.get("seed") or 0), int(body.get("max_tokens") or 16)
            prompt = json.dumps(body.get("messages") or body.get("prompt"))
            one = random.Random(f"{seed}|{prompt}")
            texts = [draw(one if seeding == "one" else random.Random(f"{seed + i}|{prompt}"), max_tokens)
                     for i in range(n)]
            with lock:
                stats["requests"] += 1
                stats["choices"] += n
            chat = self.path.endswith("/chat/completions")
            choices = [{"index": i, "finish_reason": "stop",
                        **({"message": {"role": "assistant", "content": t}} if chat else {"text": t})}
                       for i, t in enumerate(texts)]
            self.reply({"id": "x", "object": "chat.completion" if chat else "text_completion", "created": 0,
                        "model": body.get("model"), "choices": choices,
                        "usage": {"prompt_tokens": len(prompt.split()), "total_tokens": 0,
                                  "completion_tokens": sum(len(t.split()) for t in texts)}})

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
