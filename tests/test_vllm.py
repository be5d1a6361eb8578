"""`vllm:` — vLLM's offline engine. Runs only where vLLM and a CUDA GPU are present and
$WIDTHDEPTH_VLLM_MODEL names a local model folder (nothing is downloaded in tests); skipped, with
the reason, everywhere else."""

from __future__ import annotations

import os

import pytest

from widthdepth.config import RunConfig
from widthdepth.runner import run

vllm = pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'widthdepth[vllm]' on a GPU machine)")
torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("vLLM needs a CUDA GPU; this machine has none", allow_module_level=True)
MODEL = os.environ.get("WIDTHDEPTH_VLLM_MODEL")
if not MODEL or not os.path.isdir(MODEL):
    pytest.skip("set WIDTHDEPTH_VLLM_MODEL to a local model folder to test vllm:", allow_module_level=True)


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
