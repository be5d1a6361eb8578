"""`reward:URL` — a served reward (or process-reward) model scores each (question, answer).

    --verifier reward:http://127.0.0.1:9000/score                 widthdepth's JSON protocol
    --verifier "reward:http://127.0.0.1:8080/predict,format=tei"   text-embeddings-inference
    settings: scores=prob|logit (json default prob, tei default logit)
              name=NAME (stored with the scores; default the URL's host:port/path)  concurrency=8
              timeout=60  retries=6  params=N (the reward model's parameter count, for verifier FLOPs)
              api_key_env=NAME

Protocols:
- ``format=json`` (default): POST ``{"question": ..., "solution": ..., "answer": ...}``, answered by
  ``{"score": x}`` (a process-reward server may answer ``{"scores": [per-step ...]}``: the minimum
  step score is used, the usual PRM aggregate).
- ``format=tei``: Hugging Face text-embeddings-inference's ``/predict`` for a sequence-classification
  reward model: POST ``{"inputs": [[question, solution]]}``, answered by ``[{"score": x, ...}]``.
- ``format=steps``: a process-reward model, step by step: POST ``{"question": ..., "steps": [...]}``
  (the solution's non-empty lines), answered by ``{"scores": [one per step]}``; the score is the
  minimum. It scores unfinished solutions too, so search (`beam:`, `dvts:`, `particles:`) can use it.

With ``scores=logit`` (the default for tei, which is asked for raw scores) every score goes through
the logistic function, which keeps the order best-of needs; with ``scores=prob`` a score must lie in
[0, 1] (else the response counts as malformed). Cost: the scored text's tokens (estimated locally: words and punctuation)
as prompt tokens of a model of `params` parameters. The same retry rules as the openai: backend (`widthdepth/retry.py`); a
verification that still fails is not stored — the attempt stays unverified, is counted in
`failures`, and the next run of the same command asks again. A refused key or unknown URL stops the
run with one line.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from urllib.parse import urlsplit

from widthdepth.attempts import Verification
from widthdepth.backends.base import Backend
from widthdepth.backends.openai_api import estimate_tokens
from widthdepth.errors import WidthdepthError
from widthdepth.retry import (FATAL_STATUS, RETRYABLE_STATUS, RequestFailed, backoff_seconds, check_server_settings,
                              gave_up, retry_after_seconds, setting_number)
from widthdepth.store import now
from widthdepth.tasks.base import TaskFamily
from widthdepth.verifiers.base import VerifyItem

FORMATS = ("json", "tei", "steps")
_SETTINGS = {"format", "scores", "name", "concurrency", "timeout", "retries", "params", "api_key_env"}


@dataclass(frozen=True)
class RewardSettings:
    url: str
    format: str = "json"
    scores: str = "prob"
    name: str = ""
    concurrency: int = 8
    timeout: float = 60.0
    retries: int = 6
    n_params: int = 0
    api_key_env: str = ""


def parse_reward(spec: str, option: str = "--verifier") -> RewardSettings:
    """`reward:URL[,key=value...]` -> settings; raises WidthdepthError on bad input."""
    rest = spec.partition(":")[2]
    url, *parts = rest.split(",")
    params: dict[str, str] = {}
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq:
            raise WidthdepthError(f"{option} {spec!r}: {part!r} is not key=value")
        params[key.strip()] = value.strip()
    where = f"{option} {spec!r}"
    check_server_settings(where, params, _SETTINGS)
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise WidthdepthError(f"{option} {spec!r}: expected reward:http://host:port/path")
    fmt = params.get("format", "json")
    if fmt not in FORMATS:
        raise WidthdepthError(f"{option} {spec!r}: format={fmt!r} (valid: {', '.join(FORMATS)})")
    scores = params.get("scores", "logit" if fmt == "tei" else "prob")
    if scores not in ("prob", "logit"):
        raise WidthdepthError(f"{option} {spec!r}: scores={scores!r} (valid: prob, logit)")
    numbers = {key: setting_number(where, params, key, default, low)
               for key, default, low in (("concurrency", 8, 1), ("timeout", 60.0, 0.001), ("retries", 6, 0),
                                         ("params", 0, 0))}
    name = params.get("name") or f"{parsed.netloc}{parsed.path}"
    return RewardSettings(url=url, format=fmt, scores=scores, name=name, concurrency=int(numbers["concurrency"]),
                          timeout=float(numbers["timeout"]), retries=int(numbers["retries"]),
                          n_params=int(numbers["params"]), api_key_env=params.get("api_key_env", ""))


def _logistic(score: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-700.0, min(700.0, score))))


class RewardVerifier:
    def __init__(self, settings: RewardSettings, api_key: str | None = None) -> None:
        self.settings = settings
        self.name = f"reward:{settings.name}"
        self.n_params = settings.n_params
        self._key = (api_key or (os.environ.get(settings.api_key_env) if settings.api_key_env else None)
                     or os.environ.get("WIDTHDEPTH_API_KEY") or os.environ.get("OPENAI_API_KEY"))
        self._stop = threading.Event()
        self.failures: list[str] = []
        """Reasons of the verifications that failed in this process (left unverified: a rerun retries)."""

    @property
    def scores_partial(self) -> bool:
        """The per-step protocol scores unfinished solutions (what search needs)."""
        return self.settings.format == "steps"

    def _body(self, item: VerifyItem) -> dict:
        question, solution = item.problem.question, item.solution
        if self.settings.format == "tei":
            return {"inputs": [[question, solution]], "raw_scores": True}
        if self.settings.format == "steps":
            return {"question": question, "steps": steps_of(solution)}
        return {"question": question, "solution": solution, "answer": item.attempt.final_answer}

    def _score(self, payload: object, steps: int = 0) -> float:
        if self.settings.format == "steps":
            scores = payload.get("scores") if isinstance(payload, dict) else None
            if not isinstance(scores, list) or len(scores) != steps or not all(
                    isinstance(s, (int, float)) and not isinstance(s, bool) for s in scores):
                raise ValueError(f"expected {steps} step scores in {json.dumps(payload)[:80]}")
            value = min(scores) if scores else None
        elif self.settings.format == "tei":
            first = payload[0] if isinstance(payload, list) and payload else None
            first = first[0] if isinstance(first, list) and first else first
            value = first.get("score") if isinstance(first, dict) else None
        else:
            value = payload.get("score") if isinstance(payload, dict) else None
            steps = payload.get("scores") if isinstance(payload, dict) else None
            if value is None and isinstance(steps, list) and steps and all(isinstance(s, (int, float)) for s in steps):
                value = min(steps)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            raise ValueError(f"no numeric score in {json.dumps(payload)[:80]}")
        if self.settings.scores == "logit":
            return _logistic(float(value))
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"score {value} outside [0, 1] (a logit? set scores=logit)")
        return float(value)

    def _post(self, item: VerifyItem) -> tuple[float, str, float]:
        body = json.dumps(self._body(item)).encode()
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        start = time.perf_counter()
        reason = ""
        for attempt in range(self.settings.retries + 1):
            asked = None
            try:
                request = urllib.request.Request(self.settings.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.settings.timeout) as response:
                    text = response.read().decode("utf-8", errors="replace")
                return (self._score(json.loads(text), len(steps_of(item.solution))), text[:200],
                        time.perf_counter() - start)
            except urllib.error.HTTPError as exc:
                reason = f"HTTP {exc.code}: {exc.reason}"
                if exc.code in FATAL_STATUS:
                    raise RequestFailed(f"{FATAL_STATUS[exc.code]} (HTTP {exc.code})", fatal=True) from None
                if exc.code not in RETRYABLE_STATUS:
                    raise RequestFailed(reason) from None
                asked = retry_after_seconds(exc.headers)
            except (TimeoutError, socket.timeout):
                reason = f"no answer within {self.settings.timeout:g} s"
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                cause = getattr(exc, "reason", exc)
                reason = f"connection failed ({type(cause).__name__ if not isinstance(cause, str) else cause})"
            except ValueError as exc:  # JSON that does not parse, or no score in it
                reason = f"malformed response ({str(exc)[:80]})"
            if attempt < self.settings.retries and self._stop.wait(backoff_seconds(attempt, asked)):
                raise RequestFailed("stopped")
        raise gave_up(reason, self.settings.retries + 1)

    def verify(self, items: Sequence[VerifyItem]) -> Iterator[tuple[int, Verification]]:
        self._stop.clear()
        pool = ThreadPoolExecutor(self.settings.concurrency)
        try:
            futures = {}
            for index, item in enumerate(items):
                if item.attempt.final_answer is None and not self.scores_partial or not item.solution.strip():
                    yield index, Verification(item.attempt.key, self.name, None, "no answer", 0, 0, "", "", 0.0, now())
                else:
                    futures[pool.submit(self._post, item)] = index
            for future in as_completed(futures):
                index = futures[future]
                item = items[index]
                try:
                    score, text, seconds = future.result()
                except RequestFailed as exc:
                    if exc.fatal:
                        raise WidthdepthError(f"--verifier {self.name} at {self.settings.url}: {exc.reason}") \
                            from None
                    self.failures.append(exc.reason)
                    continue  # left unverified: a rerun asks again
                yield index, Verification(
                    attempt_key=item.attempt.key, verifier=self.name, score=score,
                    verdict="yes" if score >= 0.5 else "no",
                    prompt_tokens=estimate_tokens(item.problem.question + " " + item.solution), completion_tokens=0,
                    prompt=json.dumps(self._body(item), sort_keys=True), text=text, wall_seconds=seconds,
                    created_at=now())
        finally:  # after a fatal error or an early stop: no new requests, no more retries
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)


def steps_of(solution: str) -> list[str]:
    """A solution's steps for a process-reward model: its non-empty lines."""
    return [line.strip() for line in solution.splitlines() if line.strip()]


def build(spec: str, family: TaskFamily, backend: Backend, option: str = "--verifier",
          api_key: str | None = None) -> RewardVerifier:
    if backend.info.latent:
        raise WidthdepthError(f"{option} {spec}: {backend.info.id} reads problems, not text; use --verifier latent")
    return RewardVerifier(parse_reward(spec), api_key)
