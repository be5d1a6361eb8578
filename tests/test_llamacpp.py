"""Integration: the real embedded GGUF models through llama.cpp (CPU, 2 threads)."""

from __future__ import annotations

import math

import pytest

from widthdepth.backends import BackendOptions, GenerationRequest, load_backend
from widthdepth.cost import attempt_flops
from widthdepth.runner import run
from widthdepth.store import Store

pytestmark = pytest.mark.model

CHAT = (("user", "Name three colours. End with 'Answer: <colour>'."),)


@pytest.fixture(scope="module")
def smollm2():
    backend = load_backend("llamacpp:smollm2-135m", BackendOptions(threads=2, context_length=1024))
    yield backend
    backend.close()


def texts(backend, **request):
    """Sample texts in sample order (the backend yields them as they finish)."""
    samples = backend.generate([GenerationRequest(**request)])
    return [s.completion.text for s in sorted(samples, key=lambda s: s.sample_index)]


def test_parameter_count_is_read_from_the_model_file(smollm2):
    assert smollm2.info.n_params == 134_515_008  # SmolLM2-135M
    assert smollm2.info.prompt_style == "chat" and smollm2.info.shares_prompt_prefix


def test_sample_i_depends_only_on_prompt_settings_and_seed_plus_i(smollm2):
    settings = dict(messages=CHAT, max_tokens=24, temperature=0.9, top_p=0.95)
    three = texts(smollm2, n=3, seed=100, **settings)
    texts(smollm2, messages=(("user", "Something else entirely."),), n=1, seed=5, max_tokens=16)
    assert texts(smollm2, n=1, seed=101, **settings) == three[1:2]
    assert texts(smollm2, n=2, seed=101, **settings) == three[1:]
    assert len(set(three)) > 1, "different seeds should give different samples at temperature 0.9"


def test_greedy_is_deterministic(smollm2):
    first = texts(smollm2, messages=CHAT, n=2, seed=1, max_tokens=20, temperature=0.0)
    assert first[0] == first[1] == texts(smollm2, messages=CHAT, n=1, seed=7, max_tokens=20, temperature=0.0)[0]


def test_stop_strings_and_length(smollm2):
    (sample,) = smollm2.generate([GenerationRequest(prompt="1, 2, 3, 4,", max_tokens=40, temperature=0.0,
                                                    stop=(" 7",))])
    completion = sample.completion
    assert completion.finish_reason == "stop" and " 7" not in completion.text and " 5" in completion.text
    (sample,) = smollm2.generate([GenerationRequest(prompt="1, 2, 3, 4,", max_tokens=5, temperature=0.0)])
    assert sample.completion.finish_reason == "length" and sample.completion.completion_tokens == 5


def test_first_token_logprobs(smollm2):
    (sample,) = smollm2.generate([GenerationRequest(messages=(("user", "Is 2+2=4? Reply Yes or No."),),
                                                    max_tokens=2, temperature=0.0, logprobs=5)])
    logprobs = sample.completion.first_token_logprobs
    assert 1 <= len(logprobs) <= 5 and all(v <= 0 for v in logprobs.values())
    assert sum(math.exp(v) for v in logprobs.values()) <= 1.0 + 1e-6


def test_prompt_over_the_context_is_a_failed_completion(smollm2):
    (sample,) = smollm2.generate([GenerationRequest(prompt="word " * 1500, max_tokens=4)])
    assert sample.completion.finish_reason == "error" and "context" in sample.completion.error


def test_grid_2x2_run_traces_costs_and_store(smollm2, tmp_path):
    from widthdepth.config import RunConfig

    config = RunConfig(model="llamacpp:smollm2-135m", tasks=["chain:L=2"], plans=["grid:2x2"], problems=2,
                       max_tokens=48, seed=3, out=str(tmp_path / "run"), threads=2, context_length=1024)
    result = run(config, backend=smollm2)
    store = Store.open(config.out)
    attempts = list(store.attempts())
    assert len(attempts) == 8 and all(a.status == "ok" for a in attempts)
    assert store.model_info("llamacpp:smollm2-135m").n_params == 134_515_008
    by_key = {a.key: a for a in attempts}
    for a in attempts:
        assert 0 < a.completion_tokens <= 48 and a.prompt_tokens > 20
        assert a.confidence is not None and -30 < a.confidence < 0  # mean token log-probability
        assert a.correct == (a.final_answer in store.db.execute(
            "SELECT gold FROM problems WHERE key = ?", (a.problem_key,)).fetchone()[0].strip('[]"').split('", "'))
        if a.d == 2:
            parent = by_key[a.parent_key]
            assert parent.w == a.w and parent.d == 1
            assert a.serial_tokens == parent.serial_tokens + a.completion_tokens
            assert a.prompt_tokens > parent.prompt_tokens  # the revision prompt carries the previous attempt
    round_one = [a for a in attempts if a.d == 1]
    for problem_key in {a.problem_key for a in round_one}:
        prompts = {a.prompt_key for a in round_one if a.problem_key == problem_key}
        assert len(prompts) == 1  # both chains share one prompt, evaluated once
    from widthdepth.closing import closing_table

    rows = closing_table(result)
    first = rows[0]
    expected_prompt = sum({a.prompt_key: a.prompt_tokens for a in round_one}.values()) / 2
    expected_gen = sum(a.completion_tokens for a in round_one) / 2
    assert first.cost.prompt_tokens == pytest.approx(expected_prompt)
    assert first.cost.flops == pytest.approx(attempt_flops(134_515_008, expected_prompt + expected_gen))
    again = run(config, backend=smollm2)
    assert again.generated == 0 and Store.open(config.out).snapshot() == store.snapshot()


def test_a_setting_that_changes_samples_is_another_model(smollm2, tmp_path):
    """flash_attn and slots can change the floats, so a rerun with either never reuses attempts made
    under another value; their defaults, spelled out or not, are the same model."""
    from widthdepth.config import RunConfig

    config = RunConfig(model="llamacpp:smollm2-135m", tasks=["chain:L=1"], plans=["grid:2x1"], problems=1,
                       max_tokens=8, out=str(tmp_path / "run"), threads=2, context_length=512)
    assert run(config, backend=smollm2).generated == 2
    options = BackendOptions(threads=2, context_length=512)
    for spec, generated in [("llamacpp:smollm2-135m,slots=16,flash_attn=off", 0),
                            ("llamacpp:smollm2-135m,flash_attn=on", 2), ("llamacpp:smollm2-135m,slots=2", 2)]:
        backend = load_backend(spec, options)
        try:
            assert run(config.model_copy(update={"model": spec}), backend=backend).generated == generated, spec
        finally:
            backend.close()
    ids = {row[0] for row in Store.open(config.out).db.execute("SELECT DISTINCT model FROM attempts")}
    assert ids == {"llamacpp:smollm2-135m", "llamacpp:smollm2-135m,flash_attn=on", "llamacpp:smollm2-135m,slots=2"}


def test_gemma3_base_model_runs_few_shot(tmp_path):
    backend = load_backend("llamacpp:gemma3-270m", BackendOptions(threads=2, context_length=1024))
    try:
        assert backend.info.prompt_style == "fewshot"
        assert 250_000_000 < backend.info.n_params < 300_000_000
        from widthdepth.config import RunConfig

        config = RunConfig(model="llamacpp:gemma3-270m", tasks=["chain:L=1"], plans=["parallel:2"], problems=1,
                           max_tokens=40, out=str(tmp_path / "g"), threads=2, context_length=1024)
        result = run(config, backend=backend)
        (chains,) = result.plan_runs[0].chains.values()
        for (attempt,) in chains:
            assert attempt.status == "ok" and "Question:" not in attempt.text
            assert attempt.prompt.count("Question:") == 3  # two worked examples, then the problem
    finally:
        backend.close()


def test_self_verification_and_extend_mode_on_the_real_model(smollm2, tmp_path):
    from widthdepth.config import RunConfig
    from widthdepth.tasks.prompts import EXTEND_CUE

    config = RunConfig(model="llamacpp:smollm2-135m", tasks=["chain:L=1"], plans=["sequential:2,mode=extend"],
                       problems=1, max_tokens=24, verifier="self", out=str(tmp_path / "x"), threads=2,
                       context_length=1024)
    result = run(config, backend=smollm2)
    plan_run = result.plan_runs[0]
    (chains,) = plan_run.chains.values()
    first, second = chains[0]
    assert second.mode == "extend" and second.prompt.endswith(first.text + EXTEND_CUE)
    assert second.prompt_tokens >= first.prompt_tokens + first.completion_tokens
    assert plan_run.verifier == "self:llamacpp:smollm2-135m"
    for attempt in (first, second):
        v = Store.open(config.out).get_verification(attempt.key, plan_run.verifier)
        if attempt.final_answer is None:
            assert v.score is None and v.verdict == "no answer"
        else:
            assert 0.0 <= v.score <= 1.0 and v.prompt_tokens > 0 and 1 <= v.completion_tokens <= 4


@pytest.mark.parametrize("model,slots", [("smollm2-135m", 4), ("gemma3-270m", 1)])
def test_a_sample_is_the_same_alone_and_in_any_batch(model, slots):
    """Batched decoding (continuous, across requests, more samples than slots) gives every sample
    exactly the text it gets alone: what a resumed run regenerates is what it would have got.
    SmolLM2's Q4_1 weights take the same kernels at any batch size here; Gemma 3's Q4_K_M weights
    do not (llama.cpp switches kernels with the number of rows), so for it exactness needs slots=1."""
    backend = load_backend(f"llamacpp:{model},slots={slots}", BackendOptions(threads=2, context_length=512))
    try:
        prompt = "Question: what is 3 plus 4?\nAnswer:" if model.startswith("gemma") else None
        messages = None if prompt else (("user", "Count to five, then name a colour."),)
        other = GenerationRequest(prompt="Once upon a time" if prompt else None,
                                  messages=None if prompt else (("user", "Tell a one-line story."),),
                                  n=3, seed=9, max_tokens=20, temperature=1.0)
        together = GenerationRequest(prompt=prompt, messages=messages, n=6, seed=50, max_tokens=24, temperature=1.0)
        batch = {(s.request_index, s.sample_index): (s.completion.text, s.completion.mean_logprob)
                 for s in backend.generate([other, together])}
        assert len(batch) == 9
        for i in (0, 4, 5):
            alone = backend.generate([GenerationRequest(prompt=prompt, messages=messages, n=1, seed=50 + i,
                                                        max_tokens=24, temperature=1.0)])
            assert [(s.completion.text, s.completion.mean_logprob) for s in alone] == [batch[(1, i)]]
        assert len({batch[(1, i)] for i in range(6)}) > 1
        assert all(-30 < logprob < 0 for _, logprob in batch.values())  # the model's confidence, same alone
    finally:
        backend.close()


def test_a_shared_long_prompt_gives_the_samples_that_separate_requests_give(smollm2):
    """Prompts longer than a decode batch are evaluated alone, in chunks from position 0, so
    n samples of one request equal n single-sample requests, however the prompts are scheduled."""
    from widthdepth.tasks import load_task
    from widthdepth.tasks.prompts import attempt_prompt

    family = load_task("chain:L=4")
    text = attempt_prompt(family, family.problems(1, seed=0)[0], "fewshot").text
    text = text * 2  # > 512 tokens: more than one decode batch
    shared = texts(smollm2, prompt=text, n=4, seed=1, max_tokens=12, temperature=0.8, top_p=0.95)
    separate = [s.completion.text for s in sorted(smollm2.generate(
        [GenerationRequest(prompt=text, n=1, seed=1 + i, max_tokens=12, temperature=0.8, top_p=0.95)
         for i in range(4)]), key=lambda s: s.request_index)]
    assert shared == separate
