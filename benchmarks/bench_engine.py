"""Engine benchmarks on the embedded SmolLM2-135M, measured as ratios side by side in one run.

1. decode loop: widthdepth's llama.cpp backend (numpy sampling, one generator per sample) against
   llama-cpp-python's own create_completion, same prompt, greedy, same token count, one sequence.
2. shared prompt: 8 samples of one long few-shot prompt as one request (prompt evaluated once)
   against 8 single-sample requests (prompt evaluated 8 times).
3. store: committing one attempt to SQLite against generating one attempt.

    .venv/bin/python benchmarks/bench_engine.py
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from dataclasses import replace

from widthdepth.attempts import Attempt
from widthdepth.backends import BackendOptions, GenerationRequest, load_backend
from widthdepth.store import Store
from widthdepth.tasks import load_task
from widthdepth.tasks.prompts import attempt_prompt

THREADS = 2


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def decode_loop(backend) -> dict:
    prompt, tokens = "The history of the city of Rome begins", 128
    request = GenerationRequest(prompt=prompt, max_tokens=tokens, temperature=0.0)
    ours_s, samples = timed(lambda: list(backend.generate([request])))
    ours_tokens = samples[0].completion.completion_tokens
    import llama_cpp

    from widthdepth.backends.embedded import EMBEDDED

    llm = llama_cpp.Llama(model_path=str(EMBEDDED["smollm2-135m"].path()), n_ctx=2048, n_threads=THREADS,
                          n_threads_batch=THREADS, verbose=False)
    theirs_s, out = timed(lambda: llm.create_completion(prompt, max_tokens=tokens, temperature=0.0))
    llm.close()
    theirs_tokens = out["usage"]["completion_tokens"]
    ours, theirs = ours_tokens / ours_s, theirs_tokens / theirs_s
    return {"widthdepth_tok_s": round(ours, 1), "create_completion_tok_s": round(theirs, 1),
            "ratio": round(ours / theirs, 3), "tokens": [ours_tokens, theirs_tokens]}


def shared_prompt(backend) -> dict:
    family = load_task("chain:L=4")
    problem = family.problems(1, seed=0)[0]
    text = attempt_prompt(family, problem, "fewshot").text
    base = GenerationRequest(prompt=text, max_tokens=16, temperature=0.8, top_p=0.95, seed=1)
    shared_s, shared = timed(lambda: list(backend.generate([replace(base, n=8)])))
    separate_s, separate = timed(lambda: list(backend.generate([replace(base, seed=1 + i) for i in range(8)])))
    # samples come as they finish: compare sample i of the shared request with request i alone
    assert [s.completion.text for s in sorted(shared, key=lambda s: s.sample_index)] == \
        [s.completion.text for s in sorted(separate, key=lambda s: s.request_index)]
    return {"prompt_tokens": shared[0].completion.prompt_tokens, "samples": 8,
            "shared_s": round(shared_s, 3), "separate_s": round(separate_s, 3),
            "ratio_shared_over_separate": round(shared_s / separate_s, 3)}


def store_commit(generate_seconds_per_attempt: float) -> dict:
    template = Attempt(key="", model="m", task="t", problem_key="p", w=0, d=1, mode="", parent_key=None, seed=0,
                       prompt="x" * 800, prompt_key="h", settings="{}", text="y" * 600, answer="1",
                       final_answer="1", correct=True, finish_reason="stop", status="ok", error=None,
                       prompt_tokens=200, completion_tokens=150, serial_tokens=150, wall_seconds=1.0,
                       created_at="now")
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(folder)
        n = 500
        seconds, _ = timed(lambda: [store.put_attempt(replace(template, key=str(i))) for i in range(n)])
        store.close()
    per = seconds / n
    return {"commit_ms": round(per * 1000, 3), "generate_ms": round(generate_seconds_per_attempt * 1000, 1),
            "ratio": round(per / generate_seconds_per_attempt, 5)}


def main() -> dict:
    backend = load_backend("llamacpp:smollm2-135m", BackendOptions(threads=THREADS, context_length=2048))
    try:
        decode = decode_loop(backend)
        shared = shared_prompt(backend)
    finally:
        backend.close()
    # one attempt of 150 generated tokens at the measured decode speed
    store = store_commit(150 / decode["widthdepth_tok_s"])
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {THREADS} threads, "
               f"{platform.processor() or platform.platform()}", "decode_loop": decode, "shared_prompt": shared,
               "store_commit": store}
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
