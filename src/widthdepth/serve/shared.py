"""One backend, many requests: what every request's executor calls while the server runs.

Each request runs its plan in a thread of its own, with its own executor, against a `Shared` view of
the one loaded backend:

- a llama.cpp backend (`generate_open`) is driven by one engine thread: the requests of every
  request's calls join one open batch as they arrive, so the samples of concurrent requests decode
  together (continuous batching across clients), and what each sample draws still depends only on
  its own prompt, settings and seed;
- a backend whose calls may overlap (``concurrent_calls``: an ``openai:`` upstream) is called from the
  requests' threads at once: its one concurrency limit (``concurrency=``) holds for all of them;
- any other backend serves one call at a time.

A request that is cancelled (its client went away) stops: its running samples end at the next
decoding step and come back with finish_reason "cancelled" (what they generated is kept, stored and
charged), its unstarted ones are never run, and the executor's next call raises `Cancelled`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from widthdepth.backends import Backend, GenerationRequest, Sample


class Cancelled(Exception):
    """The request's client went away: its executor stops here."""


@dataclass
class Ticket:
    """One request's hold on the shared backend: cancelling it stops everything the request asked for."""

    cancelled: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass
class _Call:
    requests: list[GenerationRequest]
    ticket: Ticket
    outbox: queue.Queue = field(default_factory=queue.Queue)
    first: int = 0
    """The engine's number of this call's first request."""


_STOP = object()


class SharedBackend:
    """The loaded backend behind every request; `view(ticket)` is what one request's executor calls."""

    def __init__(self, backend: Backend) -> None:
        self.backend, self.info = backend, backend.info
        self._inbox: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._engine: threading.Thread | None = None
        if hasattr(backend, "generate_open"):
            self._engine = threading.Thread(target=self._drive, name="widthdepth-engine", daemon=True)
            self._engine.start()
        self._concurrent = getattr(backend, "concurrent_calls", False)

    def view(self, ticket: Ticket) -> Shared:
        return Shared(self, ticket)

    def generate(self, requests: Sequence[GenerationRequest], ticket: Ticket) -> Iterator[Sample]:
        if ticket.cancelled.is_set():
            raise Cancelled
        if self._engine is not None:
            yield from self._through_engine(list(requests), ticket)
        elif self._concurrent:
            yield from self._direct(requests, ticket)
        else:
            with self._lock:
                yield from self._direct(requests, ticket)
        if ticket.cancelled.is_set():
            raise Cancelled

    def _direct(self, requests: Sequence[GenerationRequest], ticket: Ticket) -> Iterator[Sample]:
        samples = self.backend.generate(requests)
        try:
            for sample in samples:
                yield sample
                if ticket.cancelled.is_set():
                    return  # closing the backend's generator stops its unfinished requests
        finally:
            close = getattr(samples, "close", None)
            if close is not None:
                close()

    def _through_engine(self, requests: list[GenerationRequest], ticket: Ticket) -> Iterator[Sample]:
        call = _Call(requests, ticket)
        self._inbox.put(call)
        for _ in range(sum(r.n for r in requests)):
            sample = call.outbox.get()
            if isinstance(sample, Exception):
                raise RuntimeError(f"the model failed: {sample}") from sample
            completion = sample.completion
            if completion.finish_reason == "cancelled" and completion.prompt_tokens == 0:
                continue  # never started: nothing was spent on it
            yield sample

    def _drive(self) -> None:
        """The engine thread: an open batch for as long as calls keep coming, then wait for the next."""
        while True:
            call = self._inbox.get()
            if call is _STOP:
                return
            owners: list[tuple[_Call, int]] = []  # engine request number -> (call, its index there)
            waiting = [call]

            def feed() -> list[GenerationRequest]:
                while True:
                    try:
                        more = self._inbox.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        self._inbox.put(_STOP)  # after this batch
                        break
                    waiting.append(more)
                fed = []
                for item in waiting:
                    item.first = len(owners)
                    owners.extend((item, i) for i in range(len(item.requests)))
                    fed += item.requests
                waiting.clear()
                return fed

            try:
                for sample in self.backend.generate_open(feed, lambda r: owners[r][0].ticket.cancelled.is_set()):
                    owner, index = owners[sample.request_index]
                    owner.outbox.put(Sample(index, sample.sample_index, sample.completion))
            except Exception as exc:  # the model failed (llama_decode): every waiting request learns why
                for owner in {id(o): o for o, _ in owners}.values():
                    owner.outbox.put(exc)

    def close(self) -> None:
        if self._engine is not None:
            self._inbox.put(_STOP)
            self._engine.join()
        self.backend.close()


class Shared:
    """The shared backend as one request sees it: the Backend protocol, bound to the request's ticket."""

    def __init__(self, shared: SharedBackend, ticket: Ticket) -> None:
        self._shared, self.ticket, self.info = shared, ticket, shared.info

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        return self._shared.generate(requests, self.ticket)

    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        return self._shared.backend.render_chat(messages)

    def close(self) -> None:
        """The shared backend outlives the request: closed by the server."""
