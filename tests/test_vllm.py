"""`vllm:` — vLLM's offline engine. The engine test runs only where vLLM and a CUDA GPU are present
and $WIDTHDEPTH_VLLM_MODEL names a local model folder (nothing is downloaded in tests); skipped, with
the reason, everywhere else — it has never run in this project's sessions (no GPU with vLLM). The
backend's own logic around the engine (what fails alone, confidence, parameter count) is tested here
on real data of the same shapes."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest

from widthdepth.backends.vllm_engine import mean_logprob, safetensors_parameter_count, split_by_length
from widthdepth.config import RunConfig
from widthdepth.runner import run


def test_the_parameter_count_comes_from_the_safetensors_headers(tmp_path):
    numpy_io = pytest.importorskip("safetensors.numpy")
    numpy_io.save_file({"embed": np.zeros((10, 4), np.float16), "norm": np.ones(4, np.float32)},
                       str(tmp_path / "model-00001-of-00002.safetensors"), metadata={"format": "pt"})
    numpy_io.save_file({"head": np.zeros((4, 3, 2), np.float32)}, str(tmp_path / "model-00002-of-00002.safetensors"))
    assert safetensors_parameter_count(tmp_path) == 10 * 4 + 4 + 4 * 3 * 2
    assert safetensors_parameter_count(tmp_path / "elsewhere") == 0  # the backend then asks for params=N


def test_a_prompt_over_the_context_fails_alone():
    assert split_by_length([10, 4096, 30, 5000], 4096) == ([0, 2], [1, 3])
    assert split_by_length([10, 99_999], 0) == ([0, 1], [])


def test_confidence_is_the_mean_log_probability_of_the_sampled_tokens():
    position = lambda **logprobs: {int(k[1:]): SimpleNamespace(logprob=v) for k, v in logprobs.items()}
    logprobs = [position(t5=-0.5, t9=-1.0), position(t9=-0.1, t2=-3.0), position(t7=-2.0, t1=-0.2)]
    assert mean_logprob([5, 2, 7], logprobs) == pytest.approx((-0.5 - 3.0 - 2.0) / 3)
    assert mean_logprob([5], None) is None and mean_logprob([], logprobs) is None


def _engine_available() -> str | None:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return "vLLM is not installed (pip install 'widthdepth[vllm]' on a GPU machine)"
    if not torch.cuda.is_available():
        return "vLLM needs a CUDA GPU; this machine has none"
    if not os.path.isdir(os.environ.get("WIDTHDEPTH_VLLM_MODEL", "")):
        return "set WIDTHDEPTH_VLLM_MODEL to a local model folder to test vllm:"
    return None


MODEL = os.environ.get("WIDTHDEPTH_VLLM_MODEL")


@pytest.mark.skipif(_engine_available() is not None, reason=str(_engine_available()))
def test_a_grid_runs_on_vllm_and_samples_are_seeded(tmp_path):
    from widthdepth.backends import GenerationRequest, load_backend

    backend = load_backend(f"vllm:{MODEL},gpu_memory_utilization=0.5,max_model_len=2048")
    try:
        request = GenerationRequest(messages=(("user", "Name a colour."),), n=3, max_tokens=16, temperature=0.9, seed=5)
        three = {s.sample_index: s.completion.text for s in backend.generate([request])}
        alone = list(backend.generate([GenerationRequest(messages=request.messages, n=1, max_tokens=16,
                                                         temperature=0.9, seed=6)]))
        assert alone[0].completion.text == three[1]
        result = run(RunConfig(model=f"vllm:{MODEL}", tasks=["chain:L=2"], plans=["grid:4x2"], problems=4,
                               max_tokens=64, out=str(tmp_path / "out")), backend=backend)
        assert result.generated == 4 * 4 * 2
    finally:
        backend.close()


@pytest.mark.skipif(_engine_available() is not None, reason=str(_engine_available()))
def test_one_long_prompt_fails_only_its_samples_and_samples_carry_confidence():
    from widthdepth.backends import GenerationRequest, load_backend

    backend = load_backend(f"vllm:{MODEL},gpu_memory_utilization=0.5,max_model_len=256")
    try:
        assert backend.info.n_params > 0
        short = GenerationRequest(prompt="1, 2, 3,", n=2, max_tokens=8, seed=1)
        long = GenerationRequest(prompt="word " * 400, n=2, max_tokens=8, seed=1)
        samples = list(backend.generate([short, long]))
        assert sorted((s.request_index, s.completion.finish_reason == "error") for s in samples) == \
            [(0, False), (0, False), (1, True), (1, True)]
        assert all(s.completion.mean_logprob is not None for s in samples if s.request_index == 0)
    finally:
        backend.close()
