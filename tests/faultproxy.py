"""A misbehaving HTTP proxy for fault-injection tests: it sits between the openai: backend and a real
server and, per request, either forwards it or injects a fault, at configurable rates.

Faults: "500" (an error status), "429" (rate limited, with Retry-After), "hang" (no answer until
long past the client's timeout), "drop" (the connection closes before any answer), "drop_after"
(the server did the work, then the answer is lost), "malformed" (a 200 with broken JSON).

    proxy = FaultProxy("http://127.0.0.1:8001", {"500": 0.1, "drop": 0.1}, seed=0).start()
    ... openai:model@{proxy.url}/v1 ...
    proxy.counts  # Counter of what happened, "forward" included
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

FAULTS = ("500", "429", "hang", "drop", "drop_after", "malformed")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
               "proxy-authenticate", "host", "content-length"}


class FaultProxy:
    def __init__(self, upstream: str, rates: dict[str, float] | None = None, seed: int = 0,
                 hang_seconds: float = 30.0, retry_after: str = "1", schedule: list[str] | None = None) -> None:
        unknown = set(rates or {}) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)} (valid: {FAULTS})")
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rates = dict(rates or {})
        self.schedule = list(schedule or [])
        """Faults for the first requests, in order, before the rates apply ("forward" for none)."""
        self.hang_seconds, self.retry_after = hang_seconds, retry_after
        self.counts: Counter[str] = Counter()
        self.authorizations: list[str] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                proxy._handle(self, b"")

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                proxy._handle(self, body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _choose(self) -> str:
        with self._lock:
            if self.schedule:
                return self.schedule.pop(0)
            roll = self._rng.random()
            for fault in FAULTS:
                roll -= self.rates.get(fault, 0.0)
                if roll < 0:
                    return fault
            return "forward"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        fault = self._choose() if handler.command == "POST" else "forward"
        with self._lock:
            self.counts[fault] += 1
            self.authorizations.append(handler.headers.get("authorization", ""))
        if fault == "500":
            self._reply(handler, 500, json.dumps({"error": {"message": "injected server error"}}).encode())
        elif fault == "429":
            self._reply(handler, 429, json.dumps({"error": {"message": "injected rate limit"}}).encode(),
                        {"Retry-After": self.retry_after})
        elif fault == "hang":
            time.sleep(self.hang_seconds)
            handler.close_connection = True
        elif fault == "drop":
            handler.close_connection = True  # no status line at all
        elif fault == "malformed":
            self._reply(handler, 200, b'{"id": "cmpl-1", "object": "text_completion", "choices": [{"text": ')
        else:
            status, headers, answer = self._forward(handler, body)
            if fault == "drop_after":
                handler.close_connection = True  # the server did the work; the answer is lost
                return
            self._reply(handler, status, answer, headers)

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(*self.upstream, timeout=600)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
            connection.request(handler.command, handler.path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            kept = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            return response.status, kept, answer
        finally:
            connection.close()

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        handler.send_response(status)
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        if not any(k.lower() == "content-type" for k in headers or {}):
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
