"""Batched width on the embedded llama.cpp backend, measured side by side in one run on SmolLM2-135M:

1. raw: llama-cpp-python's low-level API alone — one prompt evaluated once, its KV copied to 16
   sequences (`llama_memory_seq_cp`), then one `llama_decode` per step for all 16 (greedy, no
   sampling, no stop strings): the throughput ceiling of batched decoding here.
2. widthdepth: a `parallel:16` run of `chain:L=2` (chat prompts, temperature 0.7, top-p 0.95, stop
   strings, every attempt parsed and committed to the store) through `llamacpp:smollm2-135m`.
3. sequential: the same 16 samples of one problem as 16 `create_completion` calls.

Target: widthdepth >= 85% of raw (tokens per second), about 2.5x the sequential calls.

    .venv/bin/python benchmarks/bench_batching.py
"""

from __future__ import annotations

import ctypes
import json
import platform
import tempfile
import time

import numpy as np

from widthdepth.backends.catalog import EMBEDDED
from widthdepth.config import RunConfig
from widthdepth.runner import run
from widthdepth.store import Store
from widthdepth.tasks import load_task
from widthdepth.tasks.prompts import attempt_prompt

THREADS, WIDTH, MAX_TOKENS, PROBLEMS, ROUNDS = 2, 16, 96, 10, 2


def problem_prompt() -> str:
    import llama_cpp

    from widthdepth.backends import BackendOptions, load_backend

    family = load_task("chain:L=2")
    problem = family.problems(1, seed=0)[0]
    backend = load_backend("llamacpp:smollm2-135m", BackendOptions(threads=THREADS))
    try:
        return backend.render_chat(attempt_prompt(family, problem, "chat").messages)
    finally:
        backend.close()
        del llama_cpp


def raw_batched(prompt: str, steps: int, flash: bool = False) -> float:
    """Tokens per second of WIDTH sequences decoded together, nothing else."""
    import llama_cpp
    from llama_cpp import _internals

    llm = llama_cpp.Llama(model_path=str(EMBEDDED["smollm2-135m"].path()), n_ctx=64, n_batch=64,
                          n_threads=THREADS, n_threads_batch=THREADS, verbose=False)
    params = llama_cpp.llama_context_default_params()
    params.n_ctx, params.n_batch, params.n_ubatch = WIDTH * 1024, 512, 512
    params.n_seq_max, params.kv_unified = WIDTH, False  # as the backend's context
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    params.n_threads = params.n_threads_batch = THREADS
    context = _internals.LlamaContext(model=llm._model, params=params, verbose=False)
    batch = llama_cpp.llama_batch_init(512, 0, 1)
    vocab = llm.n_vocab()

    def put(n: int, token: int, position: int, seq: int, logits: bool) -> int:
        batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, position, 1
        batch.seq_id[n][0], batch.logits[n] = seq, logits
        return n + 1

    try:
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        n = 0
        for position, token in enumerate(tokens):
            n = put(n, token, position, 0, position == len(tokens) - 1)
        batch.n_tokens = n
        assert llama_cpp.llama_decode(context.ctx, batch) == 0
        for seq in range(1, WIDTH):
            llama_cpp.llama_memory_seq_cp(context.memory, 0, seq, -1, -1)
        last = [int(np.ctypeslib.as_array(ctypes.cast(llama_cpp.llama_get_logits_ith(context.ctx, n - 1),
                                                      ctypes.POINTER(ctypes.c_float)), shape=(vocab,)).argmax())] * WIDTH
        start = time.perf_counter()
        for step in range(steps):
            n = 0
            for seq in range(WIDTH):
                n = put(n, last[seq], len(tokens) + step, seq, True)
            batch.n_tokens = n
            assert llama_cpp.llama_decode(context.ctx, batch) == 0
            for seq in range(WIDTH):
                logits = np.ctypeslib.as_array(ctypes.cast(llama_cpp.llama_get_logits_ith(context.ctx, seq),
                                                           ctypes.POINTER(ctypes.c_float)), shape=(vocab,))
                last[seq] = int(logits.argmax())
        return WIDTH * steps / (time.perf_counter() - start)
    finally:
        llama_cpp.llama_batch_free(batch)
        context.close()
        llm.close()


def widthdepth_parallel(flash: bool = False) -> tuple[float, int, float]:
    """Generated tokens per second of a parallel:16 run (the model loaded before the clock starts;
    prompts, sampling, parsing and the store included); and the mean tokens per sample."""
    from widthdepth.backends import BackendOptions, load_backend

    backend = load_backend("llamacpp:smollm2-135m" + (",flash_attn=on" if flash else ""),
                           BackendOptions(threads=THREADS))
    with tempfile.TemporaryDirectory() as folder:
        config = RunConfig(model="llamacpp:smollm2-135m", tasks=["chain:L=2"], plans=[f"parallel:{WIDTH}"],
                           problems=PROBLEMS, max_tokens=MAX_TOKENS, temperature=0.7, top_p=0.95, seed=0,
                           threads=THREADS, out=folder)
        start = time.perf_counter()
        run(config, backend=backend)
        seconds = time.perf_counter() - start
        backend.close()
        store = Store.open(folder)
        tokens = [a.completion_tokens for a in store.attempts()]
        store.close()
    return sum(tokens) / seconds, len(tokens), sum(tokens) / len(tokens)


def sequential(prompt: str) -> float:
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(EMBEDDED["smollm2-135m"].path()), n_ctx=2048, n_threads=THREADS,
                          n_threads_batch=THREADS, verbose=False)
    try:
        start, tokens = time.perf_counter(), 0
        for i in range(WIDTH):
            out = llm.create_completion(prompt, max_tokens=MAX_TOKENS, temperature=0.7, top_p=0.95, seed=i)
            tokens += out["usage"]["completion_tokens"]
        return tokens / (time.perf_counter() - start)
    finally:
        llm.close()


def main() -> dict:
    prompt = problem_prompt()
    # interleaved, best of each: this machine's speed drifts by up to 20% within a minute, and the
    # best run is the one least disturbed by it, for the ceiling and for widthdepth alike
    one_by_one = sequential(prompt)
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {THREADS} threads",
               "sequential_create_completion_tok_s": round(one_by_one, 1)}
    # the default (exact: no flash attention) and flash_attn=on, each against a ceiling set up alike
    for name, flash in (("default", False), ("flash_attn=on", True)):
        raws, ours_runs = [raw_batched(prompt, MAX_TOKENS, flash)], []
        for _ in range(ROUNDS):
            ours_runs.append(widthdepth_parallel(flash))
            raws.append(raw_batched(prompt, MAX_TOKENS, flash))
        ours, samples, mean_tokens = max(ours_runs)
        results[name] = {"raw_llama_decode_16_tok_s": [round(r, 1) for r in raws],
                         "widthdepth_parallel16_tok_s": [round(r[0], 1) for r in ours_runs], "samples": samples,
                         "mean_generated_tokens": round(mean_tokens, 1), "ratio_to_raw": round(ours / max(raws), 3),
                         "speedup_over_sequential": round(ours / one_by_one, 2)}
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
