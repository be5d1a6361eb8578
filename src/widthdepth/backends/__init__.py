"""Backends behind one protocol, found by scheme. A new backend is one module with a
``build(target: str, params: dict[str, str], options: BackendOptions) -> Backend`` factory plus one line in
`BACKENDS`; the module is imported only when that backend is used, so heavy imports stay lazy.

    backend = load_backend("llamacpp:smollm2-135m")
    backend = load_backend("llamacpp:/models/qwen2.5-0.5b-q4.gguf,style=chat")
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from widthdepth.backends.base import Backend, Completion, GenerationRequest, ModelInfo, Sample
from widthdepth.backends.embedded import EMBEDDED
from widthdepth.errors import WidthdepthError
from widthdepth.specs import parse_spec

BACKENDS: dict[str, tuple[str, str]] = {
    # scheme: (module, one-line description)
    "llamacpp": ("widthdepth.backends.llamacpp", "GGUF models on the CPU through llama-cpp-python: "
                 "llamacpp:smollm2-135m | llamacpp:gemma3-270m | llamacpp:/path/model.gguf"
                 "[,style=chat|fewshot,slots=16,flash_attn=off|on]"),
    "openai": ("widthdepth.backends.openai_api", "any OpenAI-compatible server (vLLM, SGLang, llama-server, Ollama): "
               "openai:MODEL@URL[,endpoint=chat|completions,concurrency=16,timeout=120,retries=6,n=auto|native|split,"
               "params=N]"),
    "hf": ("widthdepth.backends.hf", "transformers on local files (logits, hooks): hf:/model/folder | "
           "hf:/path/model.gguf | hf:smollm2-135m [,gguf_file=F,style=,dtype=,device=]"),
    "vllm": ("widthdepth.backends.vllm_engine", "vLLM's offline engine on a GPU (the vllm extra): "
             "vllm:MODEL[,dtype=,gpu_memory_utilization=,max_model_len=,tensor_parallel_size=]"),
    "builtin": ("widthdepth.backends.builtin", "models trained by widthdepth: builtin:reasoner[,checkpoint=PATH,"
                "device=cpu|cuda|auto] (latent, torch; width = trajectories, depth = iterations) | builtin:thought[,...] "
                "(rule problems; width = restarts, depth = inference steps) | builtin:memory[,...] (recall problems; "
                "width = copies, depth = consolidation passes) | builtin:lm (its small LM, through "
                "llama.cpp)"),
    "mock": ("widthdepth.backends.mock", "scripted test double for unit tests only (mock:answer=7,fail=0.1)"),
}


BUILTIN = {"reasoner": "latent", "thought": "latent", "memory": "latent", "lm": "text"}
"""The built-in models and what they read: problems (latent) or text prompts."""


def is_latent(text: str) -> bool:
    """Does this model spec name the latent reasoner (problems in, trajectories out)?"""
    scheme, _, rest = text.partition(":")
    return scheme == "builtin" and BUILTIN.get(rest.split(",", 1)[0].strip()) == "latent"


@dataclass(frozen=True)
class BackendOptions:
    threads: int = 0
    """CPU threads for local backends (0: all cores)."""
    context_length: int = 4096
    """Context window for local backends, in tokens."""
    api_key: str | None = field(default=None, repr=False)
    """For servers that need one (`--api-key`); never stored."""
    replicas: int = 1
    """Replicas of this model sharing one server (`--executor ray`): an openai: replica keeps its
    share of the server's `concurrency` in flight."""


@dataclass(frozen=True)
class ModelSpec:
    scheme: str
    target: str
    params: dict[str, str]
    text: str


def resolve_model(text: str, option: str = "--model") -> ModelSpec:
    """Validate a model spec without loading anything (so bad input fails before any store is touched)."""
    scheme, colon, _ = text.partition(":")
    if not colon or scheme not in BACKENDS:
        names = [f"llamacpp:{name}" for name in EMBEDDED] + ["llamacpp:/path/model.gguf"]
        raise WidthdepthError(f"{option} {text!r}: unknown model (valid: {', '.join(names)}; "
                              f"backends: {', '.join(f'{s}:' for s in BACKENDS)}; see `widthdepth models`)")
    spec = parse_spec(text, option)  # the target is what is not key=value (a path may hold commas)
    params, target = spec.params, ",".join(spec.args).strip()
    if scheme == "openai":
        from widthdepth.backends.openai_api import parse_settings

        parse_settings(target, params)  # shape only: the server is reached when the backend loads
    if scheme == "hf" and target not in EMBEDDED and not Path(target).expanduser().exists():
        raise WidthdepthError(f"{option} {text!r}: no such model folder or .gguf file {target!r} "
                              f"(hf: reads local files only; or one of {', '.join(EMBEDDED)})")
    if scheme == "builtin" and target not in BUILTIN:
        raise WidthdepthError(f"{option} {text!r}: unknown built-in model {target!r} (valid: {', '.join(BUILTIN)})")
    if scheme == "llamacpp":
        if target in EMBEDDED:
            pass
        elif target.endswith(".gguf") or "/" in target:
            if not Path(target).expanduser().is_file():
                raise WidthdepthError(f"{option} {text!r}: no such GGUF file {target!r}")
        else:
            raise WidthdepthError(f"{option} {text!r}: unknown model {target!r} "
                                  f"(valid: {', '.join(EMBEDDED)}, or a path to a .gguf file)")
    return ModelSpec(scheme, target, params, text)


def load_backend(text: str, options: BackendOptions | None = None, option: str = "--model") -> Backend:
    spec = resolve_model(text, option)
    module = importlib.import_module(BACKENDS[spec.scheme][0])
    return module.build(spec.target, spec.params, options or BackendOptions())


__all__ = ["BACKENDS", "BUILTIN", "is_latent", "Backend", "BackendOptions", "Completion", "GenerationRequest", "ModelInfo",
           "ModelSpec", "Sample", "load_backend", "resolve_model"]
