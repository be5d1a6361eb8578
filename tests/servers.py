"""Real server processes for tests, on 127.0.0.1: `widthdepth serve` and llama-cpp-python's server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from widthdepth.backends.embedded import EMBEDDED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process and where it listens; `stop()` sends SIGTERM and returns its exit status."""

    def __init__(self, argv: list[str], port: int, log: Path, ready: str, headers: dict | None = None,
                 env: dict | None = None) -> None:
        self.port, self.log_path = port, log
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("w+")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        env={**os.environ, **env} if env else None)
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(self.url + ready, headers=headers or {}), timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.process.kill()
                    raise RuntimeError(f"{argv[2:4]} did not start: {self.log()[-2000:]}") from None
                time.sleep(0.3)

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self._log.close()


def widthdepth_serve(folder: Path, *options: str, env: dict | None = None) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "widthdepth.cli", "serve", "--port", str(port), "--out", str(folder / "store"),
            "--threads", "2", *options]
    return Server(argv, port, folder / "serve.log", "/health", env=env)


def llama_cpp_server(folder: Path, key: str | None = None) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", str(EMBEDDED["smollm2-135m"].path()),
            "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
            "--n_threads", "2", "--verbose", "false", *(["--api_key", key] if key else [])]
    return Server(argv, port, folder / "llama_cpp_server.log", "/v1/models",
                  {"Authorization": f"Bearer {key}"} if key else None)
