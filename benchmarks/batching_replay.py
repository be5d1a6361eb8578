"""Raw replay of a batched llama.cpp run: the same `llama_decode` calls, and nothing else.

`schedule` works out, from what a run stored (each request's prompt tokens, and each sample's
generated-token count and finish reason), the exact list of KV-memory operations and decode batches
that `widthdepth.backends.llamacpp_batch.BatchedDecoder.run` performs: the same slots, the prompt
evaluated once and copied with `llama_memory_seq_cp`, samples joining and leaving as that decoder
admits and retires them, the same compaction at the end. `replay` runs that list through
llama-cpp-python's low-level API in a context set up like the decoder's: no sampling, no stop
strings, no parsing, no store. `Recorder` writes down what the real decoder calls, so a benchmark
can check that the schedule is the decoder's, op for op.

Generated positions hold no token id in the schedule (None) and are fed `filler` in the replay:
llama.cpp does the same work for any token id, so only prompt tokens are compared with a recording.

    jobs = [Job(tokens=(1, 2, 3), decodes=(5, 0, 7))]
    seconds = replay(model_path, schedule(jobs, slots=16, n_batch=512), slots=16,
                     context_length=4096, n_batch=512, threads=2, filler=1)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

Op = tuple
"""("clear",) | ("rm", seq, p0, p1) | ("cp", source, destination, p0, p1) |
("decode", tokens, positions, seqs, logits): each a tuple, as recorded and as replayed."""


@dataclass(frozen=True)
class Job:
    """One request: its prompt tokens and, per sample, the `llama_decode` steps that sample takes."""

    tokens: tuple[int, ...]
    decodes: tuple[int, ...]


def decode_steps(completion_tokens: int, finish_reason: str) -> int:
    """Steps one sample spends in the batch. Its first token is drawn from the shared prompt logits
    and each later one costs a step; a sample ended by the end-of-generation token drew one token
    more than it kept (that token is not counted in completion_tokens), one cut at its limit did not."""
    if finish_reason == "length":
        return max(completion_tokens - 1, 0)
    if finish_reason == "stop":
        return completion_tokens
    raise ValueError(f"cannot replay a sample that ended with {finish_reason!r}")


@dataclass
class _Sequence:
    job: int
    left: int
    position: int
    started: bool


def schedule(jobs: Sequence[Job], slots: int, n_batch: int) -> list[Op]:
    """BatchedDecoder.run's memory operations and batches for `jobs`, step by step (same order)."""
    ops: list[Op] = [("clear",)]
    evaluated, issued = [False] * len(jobs), [0] * len(jobs)
    active: list[_Sequence | None] = [None] * slots
    holds: list[int | None] = [None] * slots
    queue = [j for j, job in enumerate(jobs) if job.decodes]
    while queue or any(a is not None for a in active):
        evaluating: list[tuple[int, int]] = []
        for slot in range(slots):
            if active[slot] is not None or not queue:
                continue
            r = queue[0]
            size = len(jobs[r].tokens)
            if holds[slot] == r:
                ops.append(("rm", slot, size, -1))
            else:
                source = next((s for s in range(slots) if holds[s] == r), None)
                if source is not None and not evaluated[r]:
                    break  # as the decoder: the other samples fan out once the prompt is evaluated
                ops.append(("rm", slot, -1, -1))
                if source is not None:
                    ops += [("cp", source, slot, -1, -1), ("rm", slot, size, -1)]
                else:
                    evaluating.append((slot, r))
            holds[slot] = r
            active[slot] = _Sequence(r, jobs[r].decodes[issued[r]], size, evaluated[r])
            issued[r] += 1
            if issued[r] == len(jobs[r].decodes):
                queue.pop(0)
        for slot in _step(ops, jobs, active, evaluating, evaluated, n_batch):
            sequence = active[slot]
            assert sequence is not None
            active[slot] = None
            if issued[sequence.job] == len(jobs[sequence.job].decodes):
                ops.append(("rm", slot, -1, -1))
                holds[slot] = None
        if not queue:
            _compact(ops, active, holds)
    return ops


def _step(ops: list[Op], jobs: Sequence[Job], active: list[_Sequence | None], evaluating: list[tuple[int, int]],
          evaluated: list[bool], n_batch: int) -> list[int]:
    finished = {s for s, a in enumerate(active) if a is not None and a.started and a.left == 0}
    running = [s for s, a in enumerate(active) if a is not None and a.started and a.left > 0]
    for slot, r in evaluating:  # the prompt head alone, in chunks, no logits
        head = jobs[r].tokens[:-1]
        for begin in range(0, len(head), n_batch):
            end = min(begin + n_batch, len(head))
            ops.append(("decode", head[begin:end], tuple(range(begin, end)), (slot,) * (end - begin),
                        (False,) * (end - begin)))
    entries = sorted([(slot, None) for slot in running] + list(evaluating))
    if not entries:
        return sorted(finished)
    batch: list[tuple[int, int, int, bool]] = []
    for slot, r in entries:
        sequence = active[slot]
        assert sequence is not None
        tokens = jobs[sequence.job].tokens
        if r is None:
            batch.append((None, sequence.position, slot, True))
            sequence.position += 1
            sequence.left -= 1
        else:
            batch.append((tokens[-1], len(tokens) - 1, slot, True))
            evaluated[r] = sequence.started = True
        if sequence.left == 0:
            finished.add(slot)
    ops.append(("decode", *map(tuple, zip(*batch))))
    return sorted(finished)


def _compact(ops: list[Op], active: list[_Sequence | None], holds: list[int | None]) -> None:
    while True:
        free = [s for s, a in enumerate(active) if a is None]
        busy = [s for s, a in enumerate(active) if a is not None]
        if not free or not busy or free[0] > busy[-1]:
            return
        low, high = free[0], busy[-1]
        ops += [("rm", low, -1, -1), ("cp", high, low, -1, -1), ("rm", high, -1, -1)]
        active[low], active[high] = active[high], None
        holds[low], holds[high] = holds[high], None


def same_schedule(planned: Sequence[Op], recorded: Sequence[Op]) -> str | None:
    """None when `recorded` (a Recorder's ops) is `planned`, generated tokens aside; else where the
    two first differ."""
    for i, (a, b) in enumerate(zip(planned, recorded)):
        if a[0] != b[0] or (a[0] != "decode" and a != b) or (a[0] == "decode" and a[2:] != b[2:]):
            return f"op {i}: planned {a}, recorded {b}"
        if a[0] == "decode" and any(x is not None and x != y for x, y in zip(a[1], b[1])):
            return f"op {i}: prompt tokens differ"
    if len(planned) != len(recorded):
        return f"{len(planned)} ops planned, {len(recorded)} recorded"
    return None


class Recorder:
    """Stands in for the llama_cpp module inside a BatchedDecoder and writes down every memory
    operation and decode batch before passing it on."""

    def __init__(self, lib) -> None:  # noqa: ANN001
        self._lib, self.ops = lib, []

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._lib, name)

    def llama_memory_clear(self, memory, data):  # noqa: ANN001, ANN201
        self.ops.append(("clear",))
        return self._lib.llama_memory_clear(memory, data)

    def llama_memory_seq_rm(self, memory, seq, p0, p1):  # noqa: ANN001, ANN201
        self.ops.append(("rm", seq, p0, p1))
        return self._lib.llama_memory_seq_rm(memory, seq, p0, p1)

    def llama_memory_seq_cp(self, memory, source, destination, p0, p1):  # noqa: ANN001, ANN201
        self.ops.append(("cp", source, destination, p0, p1))
        return self._lib.llama_memory_seq_cp(memory, source, destination, p0, p1)

    def llama_decode(self, ctx, batch):  # noqa: ANN001, ANN201
        n = batch.n_tokens
        self.ops.append(("decode", tuple(batch.token[:n]), tuple(batch.pos[:n]),
                         tuple(batch.seq_id[k][0] for k in range(n)), tuple(bool(x) for x in batch.logits[:n])))
        return self._lib.llama_decode(ctx, batch)


def replay(model_path: str, ops: Sequence[Op], slots: int, context_length: int, n_batch: int, threads: int,
           filler: int, flash: bool = False) -> float:
    """Seconds to run `ops` in a context set up as BatchedDecoder sets up its own; every batch is
    built before the clock starts, so the clock sees llama_decode and the KV operations alone."""
    import llama_cpp
    from llama_cpp import _internals

    from widthdepth.backends.llamacpp_batch import context_params

    llm = llama_cpp.Llama(model_path=model_path, n_ctx=64, n_batch=64, n_threads=threads,
                          n_threads_batch=threads, verbose=False)
    params = context_params(llama_cpp, slots, context_length, n_batch, threads, flash)
    context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    batches = {i: _batch(llama_cpp, op, filler) for i, op in enumerate(ops) if op[0] == "decode"}
    ctx, memory = context.ctx, context.memory
    try:
        start = time.perf_counter()
        for i, op in enumerate(ops):
            kind = op[0]
            if kind == "decode":
                if llama_cpp.llama_decode(ctx, batches[i]) != 0:
                    raise RuntimeError(f"llama_decode failed at op {i}")
            elif kind == "rm":
                llama_cpp.llama_memory_seq_rm(memory, *op[1:])
            elif kind == "cp":
                llama_cpp.llama_memory_seq_cp(memory, *op[1:])
            else:
                llama_cpp.llama_memory_clear(memory, True)
        return time.perf_counter() - start
    finally:
        for batch in batches.values():
            llama_cpp.llama_batch_free(batch)
        context.close()
        llm.close()


def _batch(llama_cpp, op: Op, filler: int):  # noqa: ANN001, ANN202
    _, tokens, positions, seqs, logits = op
    batch = llama_cpp.llama_batch_init(len(tokens), 0, 1)
    for k, (token, position, seq, wanted) in enumerate(zip(tokens, positions, seqs, logits)):
        batch.token[k] = filler if token is None else token
        batch.pos[k], batch.n_seq_id[k] = position, 1
        batch.seq_id[k][0], batch.logits[k] = seq, wanted
    batch.n_tokens = len(tokens)
    return batch
