"""Units run as chunks on replicas, with one writer (issue 19): the driver prefetches what the store has
for a chunk's problems, a replica runs the chunk into that `ChunkSink`, and the driver applies the
chunk's writes to the store when it comes back. A replica that is lost mid-chunk is replaced and the
chunk runs again from a fresh prefetch (what was applied is read back, not generated again). Units go
one after another, in the run's order (later plans read back what earlier ones made); the chunks of a
unit run side by side.

    outcomes = dispatch(store, units, pool, chunk_size, model_info, progress)

A `Pool` is where chunks run: `ThreadPool` (replicas as threads of this process: the tests' pool) or
`ray_pool.RayPool` (Ray actors, one per model replica).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

from widthdepth.backends import Backend
from widthdepth.backends.base import ModelInfo
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.execute.base import NoProgress, Progress
from widthdepth.execute.chunk import ChunkSink, Write, apply, prefetch
from widthdepth.execute.units import Outcome, Unit, merge, run_unit, split
from widthdepth.store import Store
from widthdepth.verifiers import Verifier


MOST_LOSSES = 3
"""A chunk whose replica is lost this many times stops the run (with what came back stored)."""


class Lost(Exception):
    """A replica died (or was killed) while it ran a chunk: run the chunk elsewhere."""


@dataclass
class Done:
    """What a replica sends back for a chunk."""

    outcome: Outcome
    outbox: list[Write]
    generated: int
    reused: int
    progress: list[tuple[str, tuple]] = field(default_factory=list)
    """The executor's progress calls, replayed on the driver's progress."""


class Pool(Protocol):
    replicas: int
    lost: tuple[type[BaseException], ...]
    """What a future raises when its replica died (`Lost`; a Ray pool: Ray's actor errors too)."""

    def submit(self, replica: int, chunk: Unit, sink: ChunkSink) -> Future:
        """Run `chunk` on replica `replica`; the future gives a `Done` or raises one of `lost`."""

    def replace(self, replica: int) -> None:
        """A fresh replica in place of a lost one."""


class Recorder:
    """A `Progress` that keeps the calls, for the driver to replay."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple]] = []

    def add_total(self, attempts: int) -> None:
        self.calls.append(("add_total", (attempts,)))

    def advance(self, attempts: int, generated_tokens: int = 0) -> None:
        self.calls.append(("advance", (attempts, generated_tokens)))

    def describe(self, text: str) -> None:
        self.calls.append(("describe", (text,)))


def run_chunk(backend: Backend, config: RunConfig, verifier: Verifier | None, chunk: Unit, sink: ChunkSink) -> Done:
    """On a replica: one chunk through its executor into the sink."""
    recorder = Recorder()
    outcome, generated, reused = run_unit(sink, backend, config, chunk, verifier, recorder)
    return Done(outcome, sink.outbox, generated, reused, recorder.calls)


def dispatch(store: Store, units: list[Unit], pool: Pool, chunk_size: int, info: ModelInfo,
             progress: Progress | None = None) -> list[tuple[Outcome, int, int]]:
    """Each unit's (merged outcome, attempts generated, attempts reused), the units in order; `info`: the
    replicas' model."""
    progress = progress or NoProgress()
    return [_unit(store, info.id, unit, pool, split(unit, chunk_size, info), progress) for unit in units]


def _unit(store: Store, model: str, unit: Unit, pool: Pool, chunks: list[Unit],
          progress: Progress) -> tuple[Outcome, int, int]:
    queue, idle = deque(range(len(chunks))), deque(range(pool.replicas))
    running: dict[Future, tuple[int, int]] = {}  # future -> (chunk, replica)
    done: dict[int, Done] = {}
    losses = [0] * len(chunks)
    while queue or running:
        while queue and idle:
            index, replica = queue.popleft(), idle.popleft()
            sink = prefetch(store, model, [p.key for p in chunks[index].problems])  # now: after what came back
            running[pool.submit(replica, chunks[index], sink)] = (index, replica)
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in finished:
            index, replica = running.pop(future)
            try:
                result = future.result()
            except pool.lost as exc:
                pool.replace(replica)
                losses[index] += 1
                if losses[index] >= MOST_LOSSES:
                    raise WidthdepthError(f"{unit.family.spec} {getattr(unit.plan, 'spec', unit.plan)}: a chunk of "
                                          f"{len(chunks[index].problems)} problems lost its replica {losses[index]} "
                                          f"times (last: {exc}); what came back is stored: rerun the command to "
                                          "resume") from exc
                queue.appendleft(index)
            else:
                apply(store, result.outbox)
                for method, args in result.progress:
                    if method != "add_total":  # the driver counted the run's attempts once, up front
                        getattr(progress, method)(*args)
                done[index] = result
            idle.append(replica)
    results = [done[i] for i in range(len(chunks))]
    return merge([r.outcome for r in results]), sum(r.generated for r in results), sum(r.reused for r in results)


class ThreadPool:
    """Replicas as threads of this process, each with a backend of its own made by `make_backend`."""

    lost = (Lost,)

    def __init__(self, replicas: int, make_backend: Callable[[], Backend], config: RunConfig,
                 verifiers: Callable[[Backend], dict[str, Verifier | None]]) -> None:
        self.replicas, self.make_backend, self.config, self.verifiers = replicas, make_backend, config, verifiers
        self.threads = ThreadPoolExecutor(replicas)
        self.backends: list[Any] = [None] * replicas

    def submit(self, replica: int, chunk: Unit, sink: ChunkSink) -> Future:
        return self.threads.submit(self._run, replica, chunk, sink)

    def _run(self, replica: int, chunk: Unit, sink: ChunkSink) -> Done:
        if self.backends[replica] is None:
            backend = self.make_backend()
            self.backends[replica] = (backend, self.verifiers(backend))
        backend, verifiers = self.backends[replica]
        return run_chunk(backend, self.config, verifiers[chunk.family.spec], chunk, sink)

    def replace(self, replica: int) -> None:
        old, self.backends[replica] = self.backends[replica], None
        if old is not None:
            old[0].close()

    def close(self) -> None:
        self.threads.shutdown(wait=True)
        for held in self.backends:
            if held is not None:
                held[0].close()
