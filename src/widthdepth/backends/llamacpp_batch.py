"""Batched decoding for the llama.cpp backend: many sequences advance together in one `llama_decode`.

A context with ``n_seq_max`` = slots holds up to `slots` sequences, each in a KV stream of its own
(`context_length` cells). A request's prompt is evaluated once, into the first slot that serves it;
its other samples get a copy of that prompt's KV (``llama_memory_seq_cp``, no recomputation) and
start from the stored prompt logits. Then every step decodes one token for each active sequence in one batch;
a finished sequence (end of generation, a stop string, its token limit) frees its slot, which takes
the next sample of the same request (cutting back to the prompt) or the next request's prompt, in the
same batch as the other sequences' tokens (continuous batching).

Sampling is per sequence, in numpy, with the generator of its sample (seed + i), so what a sample
draws depends only on its own logits — not on which other sequences share the batch.
"""

from __future__ import annotations

import ctypes
import math
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from widthdepth.backends.base import CONFIDENCE_WINDOW, Completion, GenerationRequest, Sample
from widthdepth.backends.cpu_share import ThreadGovernor

STOP_WINDOW = 64
"""Stop strings are searched in the last STOP_WINDOW token pieces."""


@dataclass
class EvaluatedPrompt:
    tokens: list[int]
    room: int
    """Tokens this request may generate (its max_tokens, or less where the context is short)."""
    logits: np.ndarray | None = None
    """The prompt's last-position logits, once evaluated."""
    next_sample: int = 0
    done: int = 0
    seconds: float = 0.0
    """Compute time of the prompt evaluation (shared by the request's samples)."""
    error: str | None = None
    """Why this request cannot run (its prompt does not fit the context): every sample fails with it."""


@dataclass
class _Sequence:
    request: int
    sample: int
    rng: np.random.Generator
    max_tokens: int
    position: int
    pieces: list[bytes] = field(default_factory=list)
    token: int | None = None
    """The token to feed at `position` in the next step (None while the prompt is evaluated)."""
    first_logprobs: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    finish: str = ""
    logprob_sum: float = 0.0
    """Log-probabilities (temperature 1) of the tokens drawn so far, the end token included."""
    drawn: int = 0
    window: deque = field(default_factory=deque)
    """The last CONFIDENCE_WINDOW tokens' log-probabilities, and their sum."""
    window_sum: float = 0.0
    lowest: float | None = None
    """The lowest mean over a full window so far (DeepConf's lowest group confidence)."""

    def observe(self, logprob: float) -> float | None:
        """Add a token's log-probability; the window's mean once it is full (else None)."""
        self.window.append(logprob)
        self.window_sum += logprob
        if len(self.window) > CONFIDENCE_WINDOW:
            self.window_sum -= self.window.popleft()
        if len(self.window) < CONFIDENCE_WINDOW:
            return None
        mean = self.window_sum / CONFIDENCE_WINDOW
        self.lowest = mean if self.lowest is None else min(self.lowest, mean)
        return mean


def context_params(llama_cpp, slots: int, context_length: int, n_batch: int, threads: int,  # noqa: ANN001, ANN201
                   flash_attention: bool = False):
    """The decoding context's settings (also what `benchmarks/batching_replay.py` replays under).

    One KV stream per sequence (not unified): a sequence's attention never sees other sequences'
    cells, which keeps its floats independent of the batch. No flash attention by default: its CPU
    kernel splits a long KV range across threads when few rows are decoded and not when many are,
    which makes samples depend on the batch at long contexts; it is faster when sequences of
    different lengths share a batch (`flash_attn=on`)."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = slots * context_length, n_batch, n_batch
    params.n_seq_max, params.kv_unified = slots, False
    params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attention
                              else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    params.n_threads = params.n_threads_batch = threads
    params.no_perf = True
    return params


class BatchedDecoder:
    """Drives one llama.cpp context with `slots` sequences. `sample_token`, `piece`, `is_end`,
    `top_logprobs` come from the backend, so both decoding paths sample identically."""

    def __init__(self, llama_cpp, model, n_vocab: int, slots: int, context_length: int, n_batch: int,  # noqa: ANN001
                 threads: int, sample_token: Callable, piece: Callable[[int], bytes],
                 is_end: Callable[[int], bool], top_logprobs: Callable, flash_attention: bool = False,
                 governor: ThreadGovernor | None = None) -> None:
        from llama_cpp import _internals

        self.governor = governor
        """Where set, it follows the cores other processes leave free between steps (`cpu_share`)."""
        self._lib, self.n_vocab, self.slots, self.n_batch = llama_cpp, n_vocab, slots, n_batch
        params = context_params(llama_cpp, slots, context_length, n_batch, threads, flash_attention)
        self._context = _internals.LlamaContext(model=model, params=params, verbose=False)
        self._ctx, self._memory = self._context.ctx, self._context.memory
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._sample_token, self._piece, self._is_end, self._top_logprobs = sample_token, piece, is_end, top_logprobs

    def close(self) -> None:
        if self._batch is not None:
            self._lib.llama_batch_free(self._batch)
            self._batch = None
        self._context.close()

    # -- the schedule ------------------------------------------------------------------------------
    def run(self, feed: Callable[[], list[tuple[GenerationRequest, EvaluatedPrompt]]],
            dropped: Callable[[int], bool] | None = None) -> Iterator[Sample]:
        """Yield every sample of every request `feed` hands over, each as soon as it is finished.
        `feed` is asked for more requests before every step (requests are numbered in the order fed),
        so requests that arrive while others decode join the same batches; the run ends when nothing
        is queued or running. A request for which `dropped(r)` turns true stops: its running samples
        end at once (finish_reason "cancelled", what they generated kept and counted), its unstarted
        ones are yielded as cancelled with no tokens."""
        lib, memory = self._lib, self._memory
        lib.llama_memory_clear(memory, True)
        requests: list[GenerationRequest] = []
        prompts: list[EvaluatedPrompt] = []
        active: list[_Sequence | None] = [None] * self.slots
        holds: list[int | None] = [None] * self.slots  # the request whose prompt begins a slot's cells
        queue: list[int] = []
        while True:
            for request, prompt in feed():
                r = len(requests)
                requests.append(request)
                prompts.append(prompt)
                if prompt.error is not None:
                    yield from (Sample(r, i, Completion("", len(prompt.tokens), 0, "error", error=prompt.error))
                                for i in range(request.n))
                elif request.n > 0:
                    queue.append(r)
            if dropped is not None:
                yield from self._drop(dropped, queue, active, requests, prompts)
            if not queue and not any(a is not None for a in active):
                return
            evaluating = self._admit(queue, active, holds, requests, prompts)
            for slot in self._step(active, evaluating, requests, prompts):
                sequence = active[slot]
                assert sequence is not None
                active[slot] = None
                prompt = prompts[sequence.request]
                if prompt.next_sample == requests[sequence.request].n:  # no more samples will need this slot
                    lib.llama_memory_seq_rm(memory, slot, -1, -1)
                    holds[slot] = None
                yield Sample(sequence.request, sequence.sample,
                             self._completion(sequence, requests[sequence.request], prompt))
            if not queue:
                self._compact(active, holds)

    def _drop(self, dropped: Callable[[int], bool], queue: list[int], active: list[_Sequence | None],
              requests: list[GenerationRequest], prompts: list[EvaluatedPrompt]) -> Iterator[Sample]:
        """Stop the requests that `dropped` names: running samples finish as cancelled in the next step,
        unstarted ones are yielded now, with no tokens."""
        for sequence in active:
            if sequence is not None and not sequence.finish and dropped(sequence.request):
                sequence.finish, sequence.token = "cancelled", None
        for r in [r for r in queue if dropped(r)]:
            queue.remove(r)
            prompt = prompts[r]
            for i in range(prompt.next_sample, requests[r].n):
                yield Sample(r, i, Completion("", 0, 0, "cancelled"))
            prompt.next_sample = requests[r].n  # its slots are released as its running samples end

    def _admit(self, queue: list[int], active: list[_Sequence | None], holds: list[int | None],
               requests: list[GenerationRequest], prompts: list[EvaluatedPrompt]) -> list[tuple[int, int]]:
        """Give free slots to the next samples in the queue; returns (slot, request) of the prompts
        evaluated in this step."""
        lib, memory = self._lib, self._memory
        evaluating: list[tuple[int, int]] = []
        for slot in range(self.slots):
            if active[slot] is not None or not queue:
                continue
            r = queue[0]
            prompt, request = prompts[r], requests[r]
            if holds[slot] == r:  # this slot's last sample was of r: cut back to the prompt
                lib.llama_memory_seq_rm(memory, slot, len(prompt.tokens), -1)
            else:
                source = next((s for s in range(self.slots) if holds[s] == r), None)
                if source is not None and prompt.logits is None:
                    break  # r's prompt is evaluated in this very step: the rest fan out after it
                lib.llama_memory_seq_rm(memory, slot, -1, -1)
                if source is not None:  # copy the evaluated prompt (whole streams only), cut to it
                    lib.llama_memory_seq_cp(memory, source, slot, -1, -1)
                    lib.llama_memory_seq_rm(memory, slot, len(prompt.tokens), -1)
                else:
                    evaluating.append((slot, r))
            holds[slot] = r
            i = prompt.next_sample
            prompt.next_sample += 1
            if prompt.next_sample == request.n:
                queue.pop(0)
            active[slot] = _Sequence(r, i, np.random.default_rng(request.seed + i), prompt.room, len(prompt.tokens))
            if prompt.logits is not None:
                self._start(active[slot], request, prompt)
        return evaluating

    def _compact(self, active: list[_Sequence | None], holds: list[int | None]) -> None:
        """With nothing left to admit, move the highest running sequences into the lowest free slots:
        llama.cpp splits a step whose sequence ids have gaps into several passes over the weights.
        A whole-stream copy, so the moved sequence's floats do not change."""
        lib, memory = self._lib, self._memory
        while True:
            free = [s for s, a in enumerate(active) if a is None]
            busy = [s for s, a in enumerate(active) if a is not None]
            if not free or not busy or free[0] > busy[-1]:
                return
            low, high = free[0], busy[-1]
            lib.llama_memory_seq_rm(memory, low, -1, -1)
            lib.llama_memory_seq_cp(memory, high, low, -1, -1)
            lib.llama_memory_seq_rm(memory, high, -1, -1)
            active[low], active[high] = active[high], None
            holds[low], holds[high] = holds[high], None

    def _start(self, sequence: _Sequence, request: GenerationRequest, prompt: EvaluatedPrompt) -> None:
        """The first token of a sample, drawn from the prompt's logits."""
        assert prompt.logits is not None
        if request.logprobs:
            sequence.first_logprobs = self._top_logprobs(prompt.logits, request.logprobs)
        self._accept(sequence, self._draw(sequence, prompt.logits, request), request)

    def _draw(self, sequence: _Sequence, logits: np.ndarray, request: GenerationRequest) -> int:
        token = self._sample_token(logits, request.temperature, request.top_p, sequence.rng)
        logprob = token_logprob(logits, token)
        sequence.logprob_sum += logprob
        sequence.drawn += 1
        group = sequence.observe(logprob)
        if request.confidence_floor is not None and group is not None and group < request.confidence_floor:
            sequence.finish = "low_confidence"  # DeepConf online: this token is the trace's last
        return token

    def _accept(self, sequence: _Sequence, token: int, request: GenerationRequest) -> None:
        sequence.token = None
        if sequence.finish == "low_confidence":
            sequence.pieces.append(self._piece(token))
            return
        if self._is_end(token):
            sequence.finish = "stop"
            return
        sequence.pieces.append(self._piece(token))
        if request.stop and _find_stop(b"".join(sequence.pieces[-STOP_WINDOW:]), request.stop) is not None:
            sequence.finish = "stop"
        elif len(sequence.pieces) >= sequence.max_tokens:
            sequence.finish = "length"
        else:
            sequence.token = token

    def _step(self, active: list[_Sequence | None], evaluating: list[tuple[int, int]],
              requests: Sequence[GenerationRequest], prompts: list[EvaluatedPrompt]) -> list[int]:
        """One llama_decode: the next token of every running sequence and the last token of every
        prompt being evaluated (the rest of those prompts goes first, in batches of their own).
        Returns the slots whose sequence is finished."""
        finished = {s for s, a in enumerate(active) if a is not None and a.finish}
        running = [s for s, a in enumerate(active) if a is not None and a.token is not None]
        if self.governor is not None and (threads := self.governor.tick()) is not None:
            self._lib.llama_set_n_threads(self._ctx, threads, threads)  # floats do not depend on it
        start = time.perf_counter()
        for slot, r in evaluating:  # prompt heads, no logits: each prompt alone, in chunks from position 0,
            head = prompts[r].tokens[:-1]  # so its KV is computed the same way whatever else is running
            for begin in range(0, len(head), self.n_batch):
                n = 0
                for position in range(begin, min(begin + self.n_batch, len(head))):
                    n = self._put(n, head[position], position, slot, False)
                self._decode(n)
        head_seconds = (time.perf_counter() - start) / max(1, len(evaluating))
        # one token per sequence, in slot order: with one KV stream per sequence llama.cpp keeps a
        # batch whole only when its sequence ids increase
        entries = sorted([(slot, None) for slot in running] + [(slot, r) for slot, r in evaluating])
        n = 0
        for slot, r in entries:
            if r is None:
                sequence = active[slot]
                assert sequence is not None and sequence.token is not None
                n = self._put(n, sequence.token, sequence.position, slot, True)
            else:
                tokens = prompts[r].tokens
                n = self._put(n, tokens[-1], len(tokens) - 1, slot, True)
        if n == 0:
            return sorted(finished)
        start = time.perf_counter()
        self._decode(n)
        share = (time.perf_counter() - start) / n
        for i, (slot, r) in enumerate(entries):
            sequence = active[slot]
            assert sequence is not None
            if r is None:
                request = requests[sequence.request]
                sequence.position += 1
                sequence.seconds += share
                self._accept(sequence, self._draw(sequence, self._logits(i), request), request)
            else:
                prompt = prompts[r]
                prompt.logits = self._logits(i).copy()
                prompt.seconds = head_seconds + share
                self._start(sequence, requests[r], prompt)
            if sequence.finish:
                finished.add(slot)
        return sorted(finished)

    def _put(self, n: int, token: int, position: int, slot: int, logits: bool) -> int:
        batch = self._batch
        batch.token[n] = token
        batch.pos[n] = position
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = slot
        batch.logits[n] = logits
        return n + 1

    def _decode(self, n: int) -> None:
        self._batch.n_tokens = n
        status = self._lib.llama_decode(self._ctx, self._batch)
        if status != 0:
            raise RuntimeError(f"llama_decode failed with status {status} ({n} tokens in the batch)")

    def _logits(self, i: int) -> np.ndarray:
        pointer = self._lib.llama_get_logits_ith(self._ctx, i)
        return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(self.n_vocab,))

    def _completion(self, sequence: _Sequence, request: GenerationRequest, prompt: EvaluatedPrompt) -> Completion:
        raw = b"".join(sequence.pieces)
        cut = _find_stop(raw, request.stop) if request.stop else None
        text = (raw if cut is None else raw[:cut]).decode("utf-8", errors="ignore")
        return Completion(text=text, prompt_tokens=len(prompt.tokens), completion_tokens=len(sequence.pieces),
                          finish_reason=sequence.finish or "length",
                          seconds=prompt.seconds / max(1, request.n) + sequence.seconds,
                          first_token_logprobs=sequence.first_logprobs,
                          mean_logprob=round(sequence.logprob_sum / sequence.drawn, 6) if sequence.drawn else None,
                          lowest_confidence=_lowest(sequence))


def _lowest(sequence: _Sequence) -> float | None:
    """The lowest full-window mean, or the mean of all tokens of a sample shorter than one window."""
    if sequence.lowest is not None:
        return round(sequence.lowest, 6)
    return round(sequence.window_sum / len(sequence.window), 6) if sequence.window else None


def token_logprob(logits: np.ndarray, token: int) -> float:
    """log softmax(logits)[token] at temperature 1: the model's own probability of what was drawn."""
    top = float(logits.max())
    return float(logits[token]) - top - math.log(float(np.exp(logits - top, dtype=np.float64).sum()))


def _find_stop(data: bytes, stops: tuple[str, ...]) -> int | None:
    """Byte offset where the first stop string begins in `data`, or None."""
    found = [data.find(s.encode("utf-8")) for s in stops]
    found = [f for f in found if f >= 0]
    return min(found) if found else None
