"""The server's engine: admits requests, runs each one's plan with the run's own executors, and says
what each answer really cost.

A request is one served problem (`widthdepth.tasks.served`); its plan runs as `widthdepth run` would
run it — the same executor, the same attempt keys, every attempt committed to the folder's store —
in a worker thread of its own, against the one shared backend (`shared.py`). ``n`` choices are the
plan run n times (repeats 0..n-1, each with a sampling seed of its own). At most `workers` requests
run at once and `queue` more wait; past that a request is refused (`Busy`, HTTP 429).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from widthdepth.backends import Backend, GenerationRequest
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.execute import NoProgress, executor_for
from widthdepth.execute.fit import check_fit
from widthdepth.serve.answer import Choice, choose, price
from widthdepth.serve.requests import Limits, RequestError, ServedRequest, plan_of
from widthdepth.serve.shared import Cancelled, SharedBackend, Ticket
from widthdepth.store import Store, now
from widthdepth.tasks.served import ServedFamily
from widthdepth.verifiers import load_verifier


@dataclass(frozen=True)
class ServeSettings:
    model: str
    out: str
    limits: Limits = Limits()
    verifier: str = "none"
    """A verifier for best-of aggregation and the plans that need one (none: majority voting)."""
    workers: int = 32
    """Requests whose plans run at once (their samples share the backend's batches)."""
    queue: int = 64
    """Requests that may wait for a worker; past that, 429."""
    threads: int = 0
    context_length: int = 4096


class Busy(Exception):
    """Every worker is taken and the queue is full: the client should come back after `retry_after` s."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Served:
    """What one request got: its choices and what producing them cost."""

    choices: list[Choice]
    plan: str
    usage: dict[str, Any]
    seconds: float


@dataclass
class Job:
    request: ServedRequest
    ticket: Ticket
    future: Future = field(default_factory=Future)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    received_at: str = field(default_factory=now)


class Engine:
    def __init__(self, settings: ServeSettings, backend: Backend) -> None:
        if backend.info.latent:
            raise WidthdepthError(f"--model {settings.model!r}: serve answers text requests, and {backend.info.id} "
                                  "reads problems, not text; serve a language model")
        self.settings, self.info = settings, backend.info
        self.shared = SharedBackend(backend)
        self.family = ServedFamily()
        self.checking = load_verifier(settings.verifier, self.family, self.shared.view(Ticket()), option="--verifier")
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="widthdepth-request")
        self._lock = threading.Lock()
        self._admitted = 0
        self._recent: list[float] = []  # seconds of the last requests, for Retry-After
        store = Store.open(settings.out)
        try:
            store.put_model(backend.info)
            self.run_id = store.start_run(self._config(None).model_dump(), backend.info.id, [self.family.spec],
                                          [settings.limits.plan])
        finally:
            store.close()

    # -- admission ---------------------------------------------------------------------------------
    def check(self, request: ServedRequest) -> None:
        """What the model and the verifier must do for this request; RequestError (400) where they cannot."""
        plan = plan_of(request.plan)
        try:
            if hasattr(plan, "check_family"):
                plan.check_family(self.family)
            check_fit([plan], self.info, {self.family.spec: self.checking})
        except WidthdepthError as exc:
            raise RequestError(400, str(exc).replace("--plan", "plan"), param="widthdepth.plan") from None
        if request.messages is not None and self.info.prompt_style != "chat":
            raise RequestError(400, f"{self.info.id} is not a chat model; use /v1/completions", param="messages")
        count = getattr(self.shared.backend, "count_tokens", None)
        if count is not None:
            tokens = count(GenerationRequest(prompt=request.prompt, messages=request.messages))
            if tokens >= self.info.context_length:
                raise RequestError(400, f"the prompt has {tokens} tokens; this model's context is "
                                        f"{self.info.context_length} (the server's --context-length)",
                                   param="messages" if request.messages is not None else "prompt",
                                   code="context_length_exceeded")

    def submit(self, request: ServedRequest) -> Job:
        with self._lock:
            if self._admitted >= self.settings.workers + self.settings.queue:
                raise Busy(self._retry_after())
            self._admitted += 1
        job = Job(request, Ticket())
        job.future = self._pool.submit(self._serve, job)
        job.future.add_done_callback(self._release)
        return job

    def _release(self, future: Future) -> None:
        with self._lock:
            self._admitted -= 1

    def _retry_after(self) -> int:
        typical = sorted(self._recent)[len(self._recent) // 2] if self._recent else 1.0
        waiting = max(0, self._admitted - self.settings.workers)
        return max(1, math.ceil(typical * (1 + waiting / self.settings.workers)))

    @property
    def load(self) -> dict[str, int]:
        with self._lock:
            running = min(self._admitted, self.settings.workers)
            return {"running": running, "waiting": self._admitted - running,
                    "capacity": self.settings.workers + self.settings.queue}

    # -- one request -------------------------------------------------------------------------------
    def _serve(self, job: Job) -> Served:
        start = time.perf_counter()
        store = Store.open(self.settings.out)  # a connection of this thread's own
        try:
            return self._answer(job, store, start)
        finally:
            store.close()

    def _answer(self, job: Job, store: Store, start: float) -> Served:
        request = job.request
        view = self.shared.view(job.ticket)
        problem = self.family.request(request.messages, request.prompt, request.problem_key, request.stop)
        store.put_problems([problem])
        config = self._config(request)
        plan = plan_of(request.plan)
        verifier = load_verifier(self.settings.verifier, self.family, view, option="--verifier")
        made: set[str] = set()
        choices: list[Choice] = []
        reused, status = 0, "failed"
        try:
            for repeat in range(request.n):
                executor = executor_for(plan, view)(store, view, config, self.family, plan, [problem], verifier,
                                                    NoProgress(), made)
                executor.repeat = repeat
                outcome = executor.execute()
                reused += executor.reused
                choices.append(choose(store, plan, problem, outcome, verifier))
            status = "ok" if all(c.attempt_key is not None for c in choices) else "failed"
        except Cancelled:
            status = "cancelled"
            raise
        finally:  # every request is on record, however it ended, with what it cost
            usage = price(store, sorted(made), self.info, verifier, reused, plan.spec)
            seconds = time.perf_counter() - start
            store.put_served({
                "id": job.id, "problem_key": problem.key, "model": self.info.id, "endpoint": request.endpoint,
                "plan": plan.spec, "n": request.n, "status": status, "received_at": job.received_at,
                "seconds": seconds, "answer": choices[0].answer if choices else None,
                "agreement": choices[0].agreement if choices else None, "usage": usage})
        with self._lock:
            self._recent = (self._recent + [seconds])[-32:]
        return Served(choices, plan.spec, usage, seconds)

    def _config(self, request: ServedRequest | None) -> RunConfig:
        limits, settings = self.settings.limits, self.settings
        return RunConfig(
            model=settings.model, tasks=[self.family.spec], plans=[request.plan if request else limits.plan],
            problems=1, seed=(request.seed or 0) if request else 0, out=settings.out,
            max_tokens=request.max_tokens if request else limits.max_tokens,
            temperature=request.temperature if request else limits.temperature,
            top_p=request.top_p if request else limits.top_p, verifier=settings.verifier, threads=settings.threads,
            context_length=settings.context_length)

    def close(self) -> None:
        """Finish what was admitted, then stop the backend and the store."""
        self._pool.shutdown(wait=True)
        self.shared.close()
        store = Store.open(self.settings.out)
        try:
            store.finish_run(self.run_id)
        finally:
            store.close()
