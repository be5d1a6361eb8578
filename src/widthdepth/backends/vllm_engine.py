"""`vllm:` — vLLM's offline engine, for GPU users (the `vllm` extra).

    vllm:Qwen/Qwen2.5-1.5B-Instruct                       a hub id (vLLM fetches it) or a local folder
    vllm:/models/qwen,dtype=bfloat16,max_model_len=8192,gpu_memory_utilization=0.85,tensor_parallel_size=2

Each sample is its own request with its own seed (sample i of a request: seed + i), so samples are
reproducible and a resumed run asks for exactly the missing ones; vLLM's prefix caching (on) makes
the n samples of one prompt evaluate that prompt once, and its scheduler batches everything it is
given. Chat prompts use the model's chat template through vLLM's tokenizer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from widthdepth.backends.base import Completion, GenerationRequest, ModelInfo, Sample
from widthdepth.errors import WidthdepthError

_SETTINGS = {"dtype": str, "max_model_len": int, "gpu_memory_utilization": float, "tensor_parallel_size": int,
             "style": str, "params": float}


class VLLMBackend:
    def __init__(self, model: str, settings: dict, style: str | None, n_params: int) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise WidthdepthError(f"--model vllm:{model}: vLLM is not installed (pip install 'widthdepth[vllm]', "
                                  f"on a machine with a GPU): {exc}") from None
        self._vllm = vllm
        self.llm = vllm.LLM(model=model, enable_prefix_caching=True, seed=0, **settings)
        self.tokenizer = self.llm.get_tokenizer()
        template = getattr(self.tokenizer, "chat_template", None)
        style = style or ("chat" if template else "fewshot")
        if not n_params:
            try:  # the engine's own count where this vLLM exposes the module; else params= in the spec
                executor = self.llm.llm_engine.model_executor
                n_params = sum(p.numel() for p in executor.driver_worker.model_runner.model.parameters())
            except AttributeError:
                n_params = 0
        self.info = ModelInfo(id=f"vllm:{model}", n_params=int(n_params), prompt_style=style,
                              shares_prompt_prefix=True, supports_raw_continuation=True,
                              context_length=int(settings.get("max_model_len", 0)), description=f"{model} (vLLM)")

    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        return self.tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in messages],
                                                  add_generation_prompt=True, tokenize=False)

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        prompts, params, where = [], [], []
        for index, request in enumerate(requests):
            text = request.prompt if request.prompt is not None else self.render_chat(request.messages or ())
            for i in range(request.n):
                prompts.append(text)
                params.append(self._vllm.SamplingParams(
                    n=1, temperature=request.temperature, top_p=request.top_p, max_tokens=request.max_tokens,
                    stop=list(request.stop) or None, seed=request.seed + i,
                    logprobs=request.logprobs or None))
                where.append((index, i))
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        for (index, i), output in zip(where, outputs):
            choice = output.outputs[0]
            first: dict[str, float] = {}
            if choice.logprobs:
                for logprob in choice.logprobs[0].values():
                    first.setdefault(logprob.decoded_token or "", float(logprob.logprob))
            seconds = 0.0
            metrics = getattr(output, "metrics", None)
            if metrics is not None and getattr(metrics, "finished_time", None) and getattr(metrics, "arrival_time", None):
                seconds = float(metrics.finished_time - metrics.arrival_time)
            yield Sample(index, i, Completion(
                text=choice.text, prompt_tokens=len(output.prompt_token_ids or ()),
                completion_tokens=len(choice.token_ids), finish_reason="length" if choice.finish_reason == "length"
                else "stop", seconds=seconds, first_token_logprobs=first))

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
    return VLLMBackend(target, settings, style, int(float(params.get("params", 0))))
