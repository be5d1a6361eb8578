"""`hf:` — a causal LM through Hugging Face transformers, from local files only (never the hub).

    hf:/models/Qwen2.5-0.5B-Instruct              a model folder (config.json, weights, tokenizer)
    hf:/models/dir,gguf_file=model.gguf           a GGUF file, dequantized by transformers
    hf:/models/model.gguf                         the same, shorter
    hf:smollm2-135m                               the embedded SmolLM2 GGUF, through transformers
    settings: style=chat|fewshot  dtype=float32|bfloat16|float16  device=cpu|cuda

For users who need the logits or hooks: `backend.model` is the torch module (register hooks on it),
`backend.tokenizer` its tokenizer. Generation is widthdepth's own loop, not `model.generate`: the
prompt is run once, its KV cache repeated for the n samples of the request, and each step samples
every row with the generator of its sample (seed + i) and the same exact sampler as the llama.cpp
backend; finished rows leave the batch. Needs the `hf` extra (transformers, accelerate; gguf for
GGUF files).
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from widthdepth.backends.base import Completion, GenerationRequest, ModelInfo, Sample, model_identity
from widthdepth.backends.embedded import EMBEDDED
from widthdepth.backends.llamacpp import sample_token
from widthdepth.backends.llamacpp_batch import token_logprob
from widthdepth.backends.llamacpp_batch import STOP_WINDOW, _find_stop
from widthdepth.errors import WidthdepthError

DTYPES = ("float32", "bfloat16", "float16")


class HFBackend:
    def __init__(self, folder: Path, gguf_file: str | None, model_id: str, style: str | None, dtype: str,
                 device: str, threads: int, context_length: int) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only, whatever the environment says
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise WidthdepthError(f"--model {model_id}: needs transformers and accelerate "
                                  f"(pip install 'widthdepth[hf]'): {exc}") from None
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True, **extra)
            self.model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True,
                                                              dtype=getattr(torch, dtype), **extra).to(device).eval()
        except (OSError, ValueError) as exc:
            raise WidthdepthError(f"--model {model_id}: transformers could not load it ({str(exc)[:200]})") from None
        self.device = device
        self.context_length = context_length
        parameters = inspect.signature(self.model.forward).parameters  # newer transformers name it `cache`
        self._cache_keyword = "cache" if "cache" in parameters else "past_key_values"
        template = getattr(self.tokenizer, "chat_template", None)
        style = style or ("chat" if template else "fewshot")
        if style == "chat" and not template:
            raise WidthdepthError(f"--model {model_id}: the model has no chat template; add ,style=fewshot")
        self._eos = {t for t in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None))
                     for t in (t if isinstance(t, list) else [t]) if t is not None}
        self.info = ModelInfo(id=model_id, n_params=sum(p.numel() for p in self.model.parameters()),
                              prompt_style=style, shares_prompt_prefix=True, supports_raw_continuation=True,
                              context_length=context_length, description=f"{folder}/{gguf_file or ''} (transformers)")

    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        if self.info.prompt_style != "chat":
            raise WidthdepthError(f"{self.info.id}: chat messages need a chat model (style=chat)")
        return self.tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in messages],
                                                  add_generation_prompt=True, tokenize=False)

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        for index, request in enumerate(requests):
            text = request.prompt if request.prompt is not None else self.render_chat(request.messages or ())
            ids = self.tokenizer(text, add_special_tokens=request.prompt is not None)["input_ids"]
            bos = self.tokenizer.bos_token_id
            if bos is not None and len(ids) > 1 and ids[0] == ids[1] == bos:  # the text had its own BOS
                ids = ids[1:]
            room = min(request.max_tokens, self.context_length - len(ids))
            if room < 1:
                error = f"prompt of {len(ids)} tokens does not fit the context of {self.context_length}"
                for i in range(request.n):
                    yield Sample(index, i, Completion("", len(ids), 0, "error", error=error))
                continue
            for i, completion in self._samples(request, ids, room):
                yield Sample(index, i, completion)

    def _samples(self, request: GenerationRequest, ids: list[int], room: int) -> Iterator[tuple[int, Completion]]:
        torch = self._torch
        start = time.perf_counter()
        with torch.no_grad():
            out = self.model(torch.tensor([ids], device=self.device), use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            prompt_logits = out.logits[0, -1].float().cpu().numpy()
            if request.n > 1:
                cache.batch_repeat_interleave(request.n)
            prompt_seconds = (time.perf_counter() - start) / request.n
            rows = list(range(request.n))  # sample index of each live row of the batch
            rngs = [np.random.default_rng(request.seed + i) for i in rows]
            pieces: list[list[int]] = [[] for _ in rows]
            logprobs: list[list[float]] = [[] for _ in rows]  # of every drawn token, the end token included
            seconds = [prompt_seconds] * request.n
            logits = [prompt_logits] * request.n
            first = self._top_logprobs(prompt_logits, request.logprobs) if request.logprobs else {}
            while rows:
                step = time.perf_counter()
                feed, keep, done = [], [], []
                for row, i in enumerate(rows):
                    token = sample_token(logits[row], request.temperature, request.top_p, rngs[i])
                    logprobs[i].append(token_logprob(logits[row], token))
                    finish = ""
                    if token in self._eos:
                        finish = "stop"
                    else:
                        pieces[i].append(token)
                        tail = self.tokenizer.decode(pieces[i][-STOP_WINDOW:])
                        if request.stop and _find_stop(tail.encode(), request.stop) is not None:
                            finish = "stop"
                        elif len(pieces[i]) >= room:
                            finish = "length"
                    if finish:
                        done.append((i, finish))
                    else:
                        keep.append(row)
                        feed.append(token)
                for i, finish in done:
                    yield i, self._completion(request, ids, pieces[i], finish, seconds[i], first,
                                              sum(logprobs[i]) / len(logprobs[i]))
                if not keep:
                    break
                if len(keep) < len(rows):
                    cache.batch_select_indices(torch.tensor(keep, device=self.device))
                rows = [rows[row] for row in keep]
                out = self.model(torch.tensor(feed, device=self.device)[:, None], use_cache=True,
                                 **{self._cache_keyword: cache})
                cache = out.past_key_values
                logits = list(out.logits[:, -1].float().cpu().numpy())
                share = (time.perf_counter() - step) / len(rows)
                for i in rows:
                    seconds[i] += share

    def _completion(self, request: GenerationRequest, ids: list[int], tokens: list[int], finish: str,
                    seconds: float, first: dict[str, float], mean_logprob: float | None = None) -> Completion:
        text = self.tokenizer.decode(tokens, skip_special_tokens=False)
        cut = _find_stop(text.encode(), request.stop) if request.stop else None
        if cut is not None:
            text = text.encode()[:cut].decode("utf-8", errors="ignore")
        return Completion(text=text, prompt_tokens=len(ids), completion_tokens=len(tokens), finish_reason=finish,
                          seconds=seconds, first_token_logprobs=first,
                          mean_logprob=None if mean_logprob is None else round(mean_logprob, 6))

    def _top_logprobs(self, logits: np.ndarray, k: int) -> dict[str, float]:
        shifted = logits.astype(np.float64) - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        out: dict[str, float] = {}
        for token in np.argsort(-logprobs, kind="stable")[:k]:
            out.setdefault(self.tokenizer.decode([int(token)]), float(logprobs[token]))
        return out

    def close(self) -> None:
        self.model = None


def build(target: str, params: dict[str, str], options: object) -> HFBackend:
    unknown = sorted(set(params) - {"style", "dtype", "device", "gguf_file"})
    if unknown:
        raise WidthdepthError(f"--model hf:{target}: unknown setting {unknown[0]!r} "
                              "(valid: gguf_file=, style=chat|fewshot, dtype=, device=)")
    style, dtype, device = params.get("style"), params.get("dtype", "float32"), params.get("device", "cpu")
    if style not in (None, "chat", "fewshot"):
        raise WidthdepthError(f"--model hf:{target}: style={style!r} (valid: chat, fewshot)")
    if dtype not in DTYPES:
        raise WidthdepthError(f"--model hf:{target}: dtype={dtype!r} (valid: {', '.join(DTYPES)})")
    gguf_file = params.get("gguf_file")
    name = target
    if target in EMBEDDED:
        entry, path = EMBEDDED[target], EMBEDDED[target].path()
        shipped = entry.folder()
        folder, gguf_file = (shipped, None) if shipped else (path.parent, path.name)
        style, name = style or entry.prompt_style, entry.identity()
    else:
        path = Path(target).expanduser().resolve()
        if path.is_file() and path.suffix == ".gguf":
            folder, gguf_file = path.parent, path.name
        elif path.is_dir():
            folder = path
            if gguf_file and not (folder / gguf_file).is_file():
                raise WidthdepthError(f"--model hf:{target}: no file {gguf_file!r} in {folder}")
        else:
            raise WidthdepthError(f"--model hf:{target}: no such model folder or .gguf file "
                                  f"(valid: a folder with config.json, a .gguf file, or {', '.join(EMBEDDED)})")
    # dtype and device change the floats, so they are part of the identity (defaults keep the old id)
    model_id = model_identity(f"hf:{name}", {"gguf_file": params.get("gguf_file"), "style": params.get("style"),
                                               "dtype": dtype, "device": device}, {"dtype": "float32", "device": "cpu"})
    return HFBackend(folder, gguf_file, model_id, style, dtype, device, getattr(options, "threads", 0),
                     getattr(options, "context_length", 4096))
