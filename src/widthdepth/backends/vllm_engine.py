"""`vllm:` — vLLM's offline engine, for GPU users (the `vllm` extra).

    vllm:Qwen/Qwen2.5-1.5B-Instruct                       a hub id (vLLM fetches it) or a local folder
    vllm:/models/qwen,dtype=bfloat16,max_model_len=8192,gpu_memory_utilization=0.85,tensor_parallel_size=2

Each sample is its own request with its own seed (sample i of a request: seed + i), so samples are
reproducible and a resumed run asks for exactly the missing ones; vLLM's prefix caching (on) makes
the n samples of one prompt evaluate that prompt once, and its scheduler batches everything it is
given. Chat prompts use the model's chat template through vLLM's tokenizer. A prompt longer than the
model's context fails its own samples only; every sample reports its mean token log-probability (as
vLLM reports log-probabilities: raw logits in its V1 engine) as the model's confidence; the parameter
count is read from the model's safetensors headers, or given as ``params=N``, and never silently 0.

This backend has not been run in this project's sessions: their machines have no GPU with vLLM (see
the README); `openai:` against `vllm serve` is the path tested here through the same client.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path

from widthdepth.backends.base import Completion, GenerationRequest, ModelInfo, Sample, model_identity
from widthdepth.errors import WidthdepthError

_SETTINGS = {"dtype": str, "max_model_len": int, "gpu_memory_utilization": float, "tensor_parallel_size": int,
             "style": str, "params": float}
_SAMPLE_CHANGING = {"dtype": "auto", "tensor_parallel_size": "1"}
"""Settings that change the floats, and so the samples: part of the model's identity."""


def safetensors_parameter_count(folder: Path) -> int:
    """Parameters in a model folder, summed over the tensor shapes in its safetensors headers (each
    file opens with an 8-byte header length and a JSON header; no weights are read). 0 when the
    folder has no safetensors files. Packed quantized weights (AWQ, GPTQ) count as stored."""
    total = 0
    for path in sorted(Path(folder).glob("*.safetensors")):
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items() if name != "__metadata__")
    return total


def model_folder(model: str) -> Path | None:
    """The local folder of a model: the path itself, or the hub cache snapshot vLLM fetched it into."""
    if Path(model).expanduser().is_dir():
        return Path(model).expanduser()
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # no hub library, or nothing cached: the caller says what to do
        return None


def split_by_length(lengths: Sequence[int], limit: int) -> tuple[list[int], list[int]]:
    """Indices of the prompts that fit the context (`limit` tokens, 0: no limit) and of those that do not."""
    fits = [i for i, n in enumerate(lengths) if not limit or n < limit]
    return fits, [i for i, n in enumerate(lengths) if limit and n >= limit]


def mean_logprob(token_ids: Sequence[int], logprobs: Sequence[dict] | None) -> float | None:
    """Mean log-probability of the generated tokens, from vLLM's per-position dicts (token id to an
    object with ``.logprob``; the sampled token is always among them)."""
    if not logprobs or not token_ids:
        return None
    values = [float(position[token].logprob) for token, position in zip(token_ids, logprobs) if token in position]
    return round(sum(values) / len(values), 6) if values else None


def _failed(index: int, request: GenerationRequest, prompt_tokens: int, error: str) -> Iterator[Sample]:
    for i in range(request.n):
        yield Sample(index, i, Completion(text="", prompt_tokens=prompt_tokens, completion_tokens=0,
                                          finish_reason="error", error=error))


class VLLMBackend:
    def __init__(self, model: str, settings: dict, style: str | None, n_params: int, model_id: str) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise WidthdepthError(f"--model vllm:{model}: vLLM is not installed (pip install 'widthdepth[vllm]', "
                                  f"on a machine with a GPU): {exc}") from None
        if not n_params:
            folder = model_folder(model)
            n_params = safetensors_parameter_count(folder) if folder else 0
            if not n_params:
                raise WidthdepthError(f"--model vllm:{model}: could not read the parameter count (no safetensors "
                                      "files found locally); add ,params=N (it feeds the FLOPs model)")
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, enable_prefix_caching=True, seed=0, **settings)
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)
        template = getattr(self.tokenizer, "chat_template", None)
        style = style or ("chat" if template else "fewshot")
        self.info = ModelInfo(id=model_id, n_params=int(n_params), prompt_style=style,
                              shares_prompt_prefix=True, supports_raw_continuation=True,
                              context_length=self.max_model_len, description=f"{model} (vLLM)")

    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        return self.tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in messages],
                                                  add_generation_prompt=True, tokenize=False)

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        texts = [request.prompt if request.prompt is not None else self.render_chat(request.messages or ())
                 for request in requests]
        lengths = [len(self.tokenizer.encode(text, add_special_tokens=False)) for text in texts]
        fits, too_long = split_by_length(lengths, self.max_model_len)
        for index in too_long:  # vLLM refuses the whole batch for one such prompt: fail only its samples
            yield from _failed(index, requests[index], lengths[index],
                               f"prompt of {lengths[index]} tokens does not fit the context of {self.max_model_len}")
        jobs = [(index, requests[index], texts[index]) for index in fits]
        try:
            yield from self._generate(jobs)
        except (ValueError, RuntimeError):  # a refusal the length check did not foresee: isolate it
            for index, request, text in jobs:
                try:
                    yield from self._generate([(index, request, text)])
                except (ValueError, RuntimeError) as exc:
                    yield from _failed(index, request, lengths[index], f"vLLM refused the prompt: {str(exc)[:200]}")

    def _generate(self, jobs: list[tuple[int, GenerationRequest, str]]) -> Iterator[Sample]:
        prompts, params, where = [], [], []
        for index, request, text in jobs:
            for i in range(request.n):
                prompts.append(text)
                params.append(self._vllm.SamplingParams(
                    n=1, temperature=request.temperature, top_p=request.top_p, max_tokens=request.max_tokens,
                    stop=list(request.stop) or None, seed=request.seed + i,
                    logprobs=max(1, request.logprobs)))  # the sampled token's log-probability: confidence
                where.append((index, i, request.logprobs))
        if not prompts:
            return
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        for (index, i, top), output in zip(where, outputs):
            choice = output.outputs[0]
            first: dict[str, float] = {}
            if top and choice.logprobs:
                ranked = sorted(choice.logprobs[0].values(), key=lambda logprob: -logprob.logprob)[:top]
                for logprob in ranked:
                    first.setdefault(logprob.decoded_token or "", float(logprob.logprob))
            seconds = 0.0
            metrics = getattr(output, "metrics", None)
            if metrics is not None and getattr(metrics, "finished_time", None) and getattr(metrics, "arrival_time", None):
                seconds = float(metrics.finished_time - metrics.arrival_time)
            yield Sample(index, i, Completion(
                text=choice.text, prompt_tokens=len(output.prompt_token_ids or ()),
                completion_tokens=len(choice.token_ids), finish_reason="length" if choice.finish_reason == "length"
                else "stop", seconds=seconds, first_token_logprobs=first,
                mean_logprob=mean_logprob(choice.token_ids, choice.logprobs)))

    def close(self) -> None:
        self.llm = None


def build(target: str, params: dict[str, str], options: object) -> VLLMBackend:
    unknown = sorted(set(params) - set(_SETTINGS))
    if unknown:
        raise WidthdepthError(f"--model vllm:{target}: unknown setting {unknown[0]!r} (valid: {', '.join(_SETTINGS)})")
    settings = {}
    for key, kind in _SETTINGS.items():
        if key in params and key not in ("style", "params"):
            try:
                settings[key] = kind(params[key])
            except ValueError:
                raise WidthdepthError(f"--model vllm:{target}: {key}={params[key]!r} is not a {kind.__name__}") from None
    style = params.get("style")
    if style not in (None, "chat", "fewshot"):
        raise WidthdepthError(f"--model vllm:{target}: style={style!r} (valid: chat, fewshot)")
    model_id = model_identity(f"vllm:{target}", {"style": style, **{key: str(settings[key]) for key in
                                                                  _SAMPLE_CHANGING if key in settings}},
                              _SAMPLE_CHANGING)
    return VLLMBackend(target, settings, style, int(float(params.get("params", 0))), model_id)
