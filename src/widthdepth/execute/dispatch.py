"""Units run as chunks on replicas, with one writer (issue 19): the driver prefetches what the store has
for a chunk's problems, a replica runs the chunk into that `ChunkSink` and sends its writes back in
parts as it goes (with its progress), which the driver applies to the store as they arrive. A replica
that is lost mid-chunk is replaced and the chunk runs again from a fresh prefetch: what arrived is read
back, not generated again. A chunk waits for the chunks of earlier units of its task that hold any of
its problems (later plans read back what earlier ones made); all other chunks — other tasks, other
problems — run side by side.

    outcomes = dispatch(store, units, pool, chunk_size, model_info, progress)

A `Pool` is where chunks run: `ThreadPool` (replicas as threads of this process: the tests' pool) or
`ray_pool.RayPool` (Ray actors, one per model replica).
"""

from __future__ import annotations

import queue
import time
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


IN_FLIGHT = 2
"""Chunks sent to a replica at once: the next waits at the replica, its prefetch done, while one runs."""

MOST_LOSSES = 3
"""A chunk whose replica is lost this many times stops the run (with what came back stored)."""


class Lost(Exception):
    """A replica died (or was killed) while it ran a chunk: run the chunk elsewhere."""


@dataclass
class Part:
    """What a replica sends while it runs a chunk: the writes and progress calls since its last part."""

    writes: list[Write]
    progress: list[tuple[str, tuple]]


@dataclass
class Done:
    """What a replica sends back when a chunk ends: the outcome, and the writes and progress calls since
    its last `Part`."""

    outcome: Outcome
    writes: list[Write]
    generated: int
    reused: int
    progress: list[tuple[str, tuple]] = field(default_factory=list)


class Failed(WidthdepthError):
    """A chunk stopped with a `WidthdepthError` on its replica (a server refusing requests): the run
    stops with that line, keeping what came back."""


Report = Callable[[Part], None]


class Pool(Protocol):
    replicas: int
    lost: tuple[type[BaseException], ...]
    """What a future raises when its replica died (`Lost`; a Ray pool: Ray's actor errors too)."""

    def submit(self, replica: int, chunk: Unit, sink: ChunkSink, report: Report) -> Future:
        """Run `chunk` on replica `replica`, handing each `Part` to `report` (from any thread) as it comes;
        the future gives the `Done` (after the last part) or raises one of `lost`."""

    def replace(self, replica: int) -> None:
        """A fresh replica in place of a lost one."""


class Relay:
    """A replica's `Progress`: keeps the executor's calls and, every `every` seconds at most, sends them
    with the sink's new writes as a `Part` (so the bar moves and what a lost replica made is kept)."""

    def __init__(self, sink: ChunkSink, report: Report | None, every: float) -> None:
        self.sink, self.report, self.every = sink, report, every
        self.calls: list[tuple[str, tuple]] = []
        self.sent = 0
        self.last = time.monotonic()

    def add_total(self, attempts: int) -> None:
        self.calls.append(("add_total", (attempts,)))

    def advance(self, attempts: int, generated_tokens: int = 0) -> None:
        self.calls.append(("advance", (attempts, generated_tokens)))
        if self.report is not None and time.monotonic() - self.last >= self.every:
            self.report(Part(*self.take()))
            self.last = time.monotonic()

    def describe(self, text: str) -> None:
        self.calls.append(("describe", (text,)))

    def take(self) -> tuple[list[Write], list[tuple[str, tuple]]]:
        """The writes and calls not sent yet."""
        writes, calls = self.sink.outbox[self.sent:], self.calls
        self.sent, self.calls = len(self.sink.outbox), []
        return writes, calls


PART_SECONDS = 0.5
"""How often a replica sends what it made so far."""


def run_chunk(backend: Backend, config: RunConfig, verifier: Verifier | None, chunk: Unit, sink: ChunkSink,
              report: Report | None = None, every: float = PART_SECONDS) -> Done:
    """On a replica: one chunk through its executor into the sink, parts sent to `report` as it goes."""
    relay = Relay(sink, report, every)
    try:
        outcome, generated, reused = run_unit(sink, backend, config, chunk, verifier, relay)
    except WidthdepthError as exc:
        if report is not None:
            report(Part(*relay.take()))  # what finished before the error is kept, as in a local run
        raise Failed(str(exc)) from None
    writes, calls = relay.take()
    return Done(outcome, writes, generated, reused, calls)


def dispatch(store: Store, units: list[Unit], pool: Pool, chunk_size: int, info: ModelInfo,
             progress: Progress | None = None) -> list[tuple[Outcome, int, int]]:
    """Each unit's (merged outcome, attempts generated, attempts reused), the units in order; `info`: the
    replicas' model; `chunk_size` 0: `auto_chunk`. A chunk starts once the chunks of earlier units of its
    task that hold any of its problems are stored (what it reads back); other chunks run side by side."""
    chunks = [(u, chunk) for u, unit in enumerate(units)
              for chunk in split(unit, chunk_size or auto_chunk(unit, pool.replicas), info)]
    done = _Dispatch(store, info.id, chunks, pool, progress or NoProgress()).run()
    outcomes = []
    for u in range(len(units)):
        results = [done[c] for c, (owner, _) in enumerate(chunks) if owner == u]
        outcomes.append((merge([r.outcome for r in results]), sum(r.generated for r in results),
                         sum(r.reused for r in results)))
    return outcomes


def auto_chunk(unit: Unit, replicas: int) -> int:
    """Problems per chunk where none is asked for: 4 chunks per replica (a slow chunk holds the unit up
    less; each chunk costs one prefetch and one round trip)."""
    return max(1, -(-len(unit.problems) // (4 * replicas)))


def _after(chunks: list[tuple[int, Unit]]) -> list[set[int]]:
    """For each chunk, the chunks it waits for: per problem, the last earlier chunk of its task holding it."""
    last: dict[tuple[str, str], int] = {}
    waits: list[set[int]] = []
    for c, (_, chunk) in enumerate(chunks):
        keys = [(chunk.family.spec, p.key) for p in chunk.problems]
        waits.append({last[k] for k in keys if k in last})
        last.update((k, c) for k in keys)
    return waits


class _Dispatch:
    """Chunks on the pool; parts applied on this thread (the store's one writer) as they come."""

    def __init__(self, store: Store, model: str, chunks: list[tuple[int, Unit]], pool: Pool,
                 progress: Progress) -> None:
        self.store, self.model, self.chunks, self.pool, self.progress = store, model, chunks, pool, progress
        self.waits = _after(chunks)
        self.parts: queue.Queue[tuple[int, int, Part]] = queue.Queue()
        self.tries = [0] * len(chunks)  # runs of each chunk begun; the `MOST_LOSSES`th lost stops the run
        self.counted = [[0, 0] for _ in chunks]  # most (total, advanced) attempts any run of a chunk relayed
        self.relayed: dict[tuple[int, int], list[int]] = {}  # (chunk, try) -> (total, advanced) it relayed
        self.done: dict[int, Done] = {}
        self.text = ""

    def run(self) -> dict[int, Done]:
        waiting = list(range(len(self.chunks)))
        free = deque(r for _ in range(IN_FLIGHT) for r in range(self.pool.replicas))  # a slot per chunk in flight
        generation = [0] * self.pool.replicas  # replacements of each replica so far
        running: dict[Future, tuple[int, int, int]] = {}  # future -> (chunk, replica, its generation)
        while waiting or running:
            for index in [c for c in waiting if self.waits[c] <= self.done.keys()][:len(free)]:
                waiting.remove(index)
                replica = free.popleft()
                running[self._submit(index, replica)] = (index, replica, generation[replica])
            finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
            self._drain()  # a finished chunk's parts are all queued before its future is done
            for future in finished:
                index, replica, born = running.pop(future)
                free.append(replica)
                try:
                    result = future.result()
                except self.pool.lost as exc:
                    if born == generation[replica]:  # its other chunk in flight was lost with it: replace once
                        self.pool.replace(replica)
                        generation[replica] += 1
                    if self.tries[index] >= MOST_LOSSES:
                        unit = self.chunks[index][1]
                        raise WidthdepthError(
                            f"{unit.family.spec} {getattr(unit.plan, 'spec', unit.plan)}: a chunk of "
                            f"{len(unit.problems)} problems lost its replica {self.tries[index]} times (last: {exc}); "
                            "what came back is stored: rerun the command to resume") from exc
                    waiting.insert(0, index)
                else:
                    self._apply(index, self.tries[index], Part(result.writes, result.progress))
                    self.done[index] = result
                    self._describe()
        return self.done

    def _submit(self, index: int, replica: int) -> Future:
        chunk = self.chunks[index][1]
        sink = prefetch(self.store, self.model, [p.key for p in chunk.problems])  # now: after what came back
        self.tries[index] += 1
        tag = (index, self.tries[index])
        return self.pool.submit(replica, chunk, sink, lambda part: self.parts.put((*tag, part)))

    def _drain(self) -> None:
        while True:
            try:
                index, attempt, part = self.parts.get_nowait()
            except queue.Empty:
                return
            self._apply(index, attempt, part)

    def _apply(self, index: int, attempt: int, part: Part) -> None:
        """Writes into the store; progress onto the bar, where a chunk run again counts only past what an
        earlier run of it counted."""
        apply(self.store, part.writes)
        mine, most = self.relayed.setdefault((index, attempt), [0, 0]), self.counted[index]
        for method, args in part.progress:
            if method == "describe":
                self.text = args[0]
                self._describe()
                continue
            slot = 0 if method == "add_total" else 1
            mine[slot] += args[0]
            fresh = mine[slot] - most[slot]
            if fresh > 0:
                most[slot] = mine[slot]
                if method == "add_total":
                    self.progress.add_total(fresh)
                else:
                    self.progress.advance(fresh, args[1] if fresh == args[0] else 0)

    def _describe(self) -> None:
        if len(self.chunks) > 1:
            self.progress.describe(f"chunks {len(self.done)}/{len(self.chunks)} · {self.text}")
        elif self.text:
            self.progress.describe(self.text)


class ThreadPool:
    """Replicas as threads of this process (one thread each, running its chunks in turn, as an actor
    does), each with a backend of its own made by `make_backend`."""

    lost = (Lost,)

    def __init__(self, replicas: int, make_backend: Callable[[], Backend], config: RunConfig,
                 verifiers: Callable[[Backend], dict[str, Verifier | None]], every: float = 0.0) -> None:
        self.replicas, self.make_backend, self.config, self.verifiers = replicas, make_backend, config, verifiers
        self.every = every  # 0: a part at every step of the executor, as the tests want
        self.threads = [ThreadPoolExecutor(1) for _ in range(replicas)]
        self.backends: list[Any] = [None] * replicas

    def submit(self, replica: int, chunk: Unit, sink: ChunkSink, report: Report) -> Future:
        return self.threads[replica].submit(self._run, replica, chunk, sink, report)

    def _run(self, replica: int, chunk: Unit, sink: ChunkSink, report: Report) -> Done:
        if self.backends[replica] is None:
            backend = self.make_backend()
            self.backends[replica] = (backend, self.verifiers(backend))
        backend, verifiers = self.backends[replica]
        try:
            return run_chunk(backend, self.config, verifiers[chunk.family.spec], chunk, sink, report, self.every)
        except Lost:
            self.backends[replica] = None  # the next chunk on this thread makes a fresh one
            backend.close()
            raise

    def replace(self, replica: int) -> None:
        """Nothing left to do: the replica's thread dropped the lost backend itself."""

    def close(self) -> None:
        for thread in self.threads:
            thread.shutdown(wait=True)
        for held in self.backends:
            if held is not None:
                held[0].close()
