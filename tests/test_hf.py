"""`hf:` — transformers on local files: the embedded SmolLM2 GGUF, dequantized by transformers."""

from __future__ import annotations

import pytest

from widthdepth.backends import BackendOptions, GenerationRequest, load_backend
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.runner import run

pytest.importorskip("transformers", reason="the hf extra (transformers, accelerate, gguf) is not installed")
pytestmark = pytest.mark.model

CHAT = (("user", "Name a colour. End with 'Answer: <colour>'."),)


@pytest.fixture(scope="module")
def smollm2():
    backend = load_backend("hf:smollm2-135m", BackendOptions(threads=2, context_length=1024))
    yield backend
    backend.close()


def texts(backend, **request):
    return {s.sample_index: s.completion.text for s in backend.generate([GenerationRequest(**request)])}


def test_the_gguf_loads_with_the_same_parameters_as_in_llama_cpp(smollm2):
    assert smollm2.info.n_params == 134_515_008 and smollm2.info.prompt_style == "chat"


def test_sample_i_depends_only_on_seed_plus_i_and_finished_rows_leave_the_batch(smollm2):
    settings = dict(messages=CHAT, max_tokens=16, temperature=0.9)
    three = texts(smollm2, n=3, seed=10, **settings)
    assert texts(smollm2, n=1, seed=12, **settings) == {0: three[2]}
    assert len(set(three.values())) > 1


def test_stop_strings_length_and_logprobs(smollm2):
    (sample,) = smollm2.generate([GenerationRequest(prompt="1, 2, 3, 4,", max_tokens=30, temperature=0.0,
                                                    stop=(" 7",), logprobs=5)])
    completion = sample.completion
    assert completion.finish_reason == "stop" and " 7" not in completion.text and " 5" in completion.text
    assert 1 <= len(completion.first_token_logprobs) <= 5
    # counting on greedily: the model is sure of every token (mean log-probability near 0), and its
    # first token's log-probability is the best of the top alternatives
    assert completion.mean_logprob is not None and -1.5 < completion.mean_logprob <= 0
    (sample,) = smollm2.generate([GenerationRequest(prompt="1, 2, 3, 4,", max_tokens=4, temperature=0.0)])
    assert sample.completion.finish_reason == "length" and sample.completion.completion_tokens == 4


def test_hooks_see_the_run_and_the_store_gets_its_attempts(smollm2, tmp_path):
    seen = []
    handle = smollm2.model.lm_head.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    try:
        config = RunConfig(model="hf:smollm2-135m", tasks=["chain:L=1"], plans=["grid:2x2"], problems=1,
                           max_tokens=24, out=str(tmp_path / "out"))
        result = run(config, backend=smollm2)
    finally:
        handle.remove()
    attempts = [a for chains in result.plan_runs[0].chains.values() for chain in chains for a in chain]
    assert len(attempts) == 4 and all(a.status == "ok" and a.completion_tokens > 0 for a in attempts)
    assert seen and seen[0][0] == 1 and any(shape[0] == 2 for shape in seen)  # prompt once, then 2 rows


def test_missing_files_are_refused_before_loading():
    with pytest.raises(WidthdepthError, match="no such model folder"):
        load_backend("hf:/nonexistent/model")


def test_dtype_is_part_of_the_model_identity(smollm2, tmp_path):
    """dtype changes the floats, so a rerun in bfloat16 never reuses float32 attempts."""
    config = RunConfig(model="hf:smollm2-135m", tasks=["chain:L=1"], plans=["grid:2x1"], problems=1,
                       max_tokens=4, out=str(tmp_path / "out"))
    assert smollm2.info.id == "hf:smollm2-135m" and run(config, backend=smollm2).generated == 2
    backend = load_backend("hf:smollm2-135m,dtype=bfloat16,device=cpu", BackendOptions(threads=2, context_length=512))
    try:
        assert backend.info.id == "hf:smollm2-135m,dtype=bfloat16"
        assert run(config.model_copy(update={"model": backend.info.id}), backend=backend).generated == 2
    finally:
        backend.close()
