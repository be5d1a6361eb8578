"""optillm (PyPI `optillm==0.4.0`) as a majority-voting peer in front of an OpenAI-compatible server.

What runs, client to model:

    client --(openai, extra_body={"k": k})--> optillm proxy --> RefuseN --> llama_cpp.server

optillm, as read in its 0.4.0 source (`optillm/server.py`, `optillm/plugins/majority_voting_plugin.py`):

- Started as `<venv>/bin/optillm --approach majority_voting --base-url <upstream /v1 URL> --host 127.0.0.1
  --port <port>` with `OPENAI_API_KEY` set (any value; without it optillm falls back to a LiteLLM client
  and ignores --base-url). It is a Flask app; `GET /health` answers `{"status": "ok"}`.
- The approach: `--approach majority_voting` makes every request majority voting (the server prefixes
  the model name, `majority_voting-<model>`, and strips the prefix again before calling upstream). The
  same can be chosen per request by the model name `majority_voting-<model>`, by
  `extra_body={"optillm_approach": "majority_voting"}`, or by a `<optillm_approach>` tag in a message.
- k: there is no server flag or environment variable for it. Every body key other than messages, model,
  n, stream, stream_options, response_format, max_tokens and max_completion_tokens goes into the
  plugin's `request_config`, and the plugin reads `k` (default 8), `temperature` (default 0.6) and
  `max_tokens` (default 4096) from there. So each request carries `extra_body={"k": k}`
  (`majority_voting_body(k)`); send temperature and max_tokens explicitly too. Do not send `n` > 1:
  optillm's own `n` runs the whole approach n times.
- The plugin calls upstream with `messages=[{"role": "system", "content": <system text or "">},
  {"role": "user", "content": "User: <user text>"}]` (its own flattening of the conversation), `model`,
  `max_tokens` and `temperature` only (top_p, seed, stop and the rest are not passed on), first once
  with `n=k`; if that raises, it falls back to k calls with no `n`, one after another. It takes the
  `n=k` answer as it comes, however many choices it holds.
- Voting: each candidate's "answer" is the first match of `final answer:|answer: (...)`,
  `the answer is|answer is (...)`, `### (...)`, a lone A-E letter at the start or end, else the whole
  text; `<think>` blocks dropped, lowercased, whitespace collapsed, trailing `.,;:!?` stripped. The most
  common such string wins (ties: first seen) and the first full candidate text behind it is returned
  as the single choice.
- Usage returned: `{"completion_tokens": <sum of upstream completion_tokens over the samples>,
  "completion_tokens_details": {"reasoning_tokens": <think-tag estimate>}}`: no prompt_tokens nor
  total_tokens.

Why RefuseN sits in between: llama_cpp.server accepts `n` and silently returns one choice, so optillm's
`n=k` call would "succeed" with a single sample and the vote would be over one candidate. RefuseN
answers any request with `n` > 1 by HTTP 400 (OpenAI's error shape), which the openai client raises,
so optillm takes its sequential path and makes k real samples. RefuseN also sums the upstream's own
reported usage and counts requests, so optillm's cost is measured by the same server's tokenizer as
every other side.

Install: optillm 0.4.0 depends on torch (and transformers, spacy, gradio, ...). Unpinned, pip picks the
newest CUDA torch (multi-GB with the nvidia-* wheels); `torch==2.13.0` resolves to the local CPU wheel
(`torch-2.13.0+cpu`, from pip's find-links /opt/wheels here; a local version sorts above the plain
one). The venv lives under ~/.cache/widthdepth/bench-peers/optillm-0.4.0: about 3 minutes and 3.2 GB
(torch 0.75 GB of it) to make here; optillm then takes about 12 s to start (it imports torch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OPTILLM = "optillm==0.4.0"
TORCH = "torch==2.13.0"  # the CPU build here; see the docstring
VENV = Path.home() / ".cache" / "widthdepth" / "bench-peers" / "optillm-0.4.0"
APPROACH = "majority_voting"

# no HTTP proxy from the environment for loopback traffic
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def optillm_python() -> Path:
    """The python of a venv of its own holding optillm; made (once) on first use."""
    python, done = VENV / "bin" / "python", VENV / ".installed"
    if not done.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        # the pip that venv bundles (23.x) resolves optillm's ~250 dependencies by downloading candidate
        # wheels and backtracking for many minutes; a current pip does it in under a minute
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", OPTILLM, TORCH], check=True)
        done.write_text(f"{OPTILLM} {TORCH}\n")
    return python


def majority_voting_body(k: int) -> dict:
    """The request-body keys (openai's `extra_body`) that make optillm vote over k samples."""
    return {"k": int(k)}


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_optillm(python: Path, port: int, upstream_base_url: str, k: int, log_path: Path,
                  timeout: float = 300.0) -> subprocess.Popen:
    """optillm's proxy on 127.0.0.1:port in front of `upstream_base_url` (an OpenAI-compatible /v1 URL),
    every request majority voting. optillm has no server-side k: send `process.extra_body`
    (= majority_voting_body(k)) with each request. Waits for /health; raises with the log's tail if
    optillm exits or does not answer within `timeout` seconds."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OPENAI_API_KEY": os.environ.get("OPTILLM_UPSTREAM_KEY", "none"),
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    for name in ("OPTILLM_API_KEY", "CEREBRAS_API_KEY", "AZURE_OPENAI_API_KEY"):  # would take precedence
        env.pop(name, None)
    command = [str(Path(python).parent / "optillm"), "--approach", APPROACH, "--base-url", upstream_base_url,
               "--host", "127.0.0.1", "--port", str(port), "--log", "info"]
    with open(log_path, "ab") as log:
        # its own folder as cwd: optillm also loads plugins from ./optillm/plugins
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   cwd=str(log_path.parent), start_new_session=True)
    process.extra_body = majority_voting_body(k)  # type: ignore[attr-defined]
    process.k = int(k)  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"optillm exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            _OPENER.open(f"http://127.0.0.1:{port}/health", timeout=2).close()
            return process
        except OSError:
            time.sleep(0.25)
    process.kill()
    process.wait(timeout=30)
    raise RuntimeError(f"optillm did not answer on port {port} within {timeout:.0f} s:\n{_tail(log_path)}")


def _usage_of(data: bytes) -> dict:
    """The usage object of a JSON answer, or the last one in a server-sent-event stream."""
    try:
        return json.loads(data).get("usage") or {}
    except (ValueError, AttributeError):
        pass
    usage: dict = {}
    for line in data.decode(errors="replace").splitlines():
        if line.startswith("data:") and line[5:].strip() not in ("", "[DONE]"):
            try:
                usage = json.loads(line[5:]).get("usage") or usage
            except (ValueError, AttributeError):
                continue
    return usage


class RefuseN:
    """A loopback proxy to an OpenAI-compatible server (e.g. llama_cpp.server) that answers any request
    with `n` > 1 by HTTP 400, as OpenAI-style servers that do not support it do, instead of letting the
    upstream silently return one choice. Forwards POST /v1/chat/completions and /v1/completions and
    GET /v1/models; sums the upstream's reported prompt and completion tokens and counts the requests
    it forwarded and refused.

    `upstream` is the server's root URL ("http://127.0.0.1:8000"); clients use `self.url` (…/v1)."""

    POST_PATHS = ("/v1/chat/completions", "/v1/completions")
    GET_PATHS = ("/v1/models",)

    def __init__(self, upstream: str, port: int = 0, timeout: float = 600.0) -> None:
        self.upstream, self.timeout = upstream.rstrip("/"), timeout
        if self.upstream.endswith("/v1"):
            self.upstream = self.upstream[:-3]
        self._lock = threading.Lock()
        self._counts = self._zero()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, data: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, message: str, param: str | None = None) -> None:
                body = {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                  "code": None}}
                self._send(status, json.dumps(body).encode())

            def _forward(self, method: str, data: bytes | None) -> None:
                request = urllib.request.Request(proxy.upstream + self.path, data=data, method=method,
                                                 headers={"Content-Type": "application/json"})
                try:
                    with _OPENER.open(request, timeout=proxy.timeout) as response:
                        status, body = response.status, response.read()
                        content_type = response.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as error:
                    status, body = error.code, error.read()
                    content_type = error.headers.get("Content-Type", "application/json")
                except OSError as error:
                    self._error(502, f"upstream unreachable: {error}")
                    return
                if method == "POST" and status == 200:
                    usage = _usage_of(body)
                    with proxy._lock:
                        proxy._counts["requests"] += 1
                        proxy._counts["prompt_tokens"] += int(usage.get("prompt_tokens") or 0)
                        proxy._counts["completion_tokens"] += int(usage.get("completion_tokens") or 0)
                elif method == "POST":
                    with proxy._lock:
                        proxy._counts["failed"] += 1
                self._send(status, body, content_type)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.split("?")[0] not in proxy.GET_PATHS:
                    self._error(404, f"no route {self.path}")
                    return
                self._forward("GET", None)

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.split("?")[0] not in proxy.POST_PATHS:
                    self._error(404, f"no route {self.path}")
                    return
                try:
                    body = json.loads(raw or b"{}")
                    n = body.get("n")
                    n = 1 if n is None else int(n)
                except (ValueError, TypeError, AttributeError):
                    self._error(400, "the request body is not a JSON object with an integer n", "n")
                    return
                if n > 1:
                    with proxy._lock:
                        proxy._counts["refused"] += 1
                    self._error(400, f"n={n} is not supported: this server returns one choice per request",
                                "n")
                    return
                self._forward("POST", raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @staticmethod
    def _zero() -> dict:
        return {"requests": 0, "refused": 0, "failed": 0, "prompt_tokens": 0, "completion_tokens": 0}

    def reset(self) -> None:
        with self._lock:
            self._counts = self._zero()

    def totals(self) -> dict:
        """requests forwarded and answered 200, refused (n > 1), failed upstream, and summed usage."""
        with self._lock:
            return dict(self._counts)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> RefuseN:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
