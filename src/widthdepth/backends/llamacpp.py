"""`llamacpp:` — GGUF models on the CPU through llama-cpp-python.

    llamacpp:smollm2-135m                 the embedded default (SmolLM2-135M-Instruct Q4_1, chat)
    llamacpp:gemma3-270m                  Gemma 3 270M base (few-shot prompts)
    llamacpp:/path/model.gguf             any GGUF; chat if it has a chat template, else few-shot
    llamacpp:/path/model.gguf,style=fewshot

How a request runs: the prompt is evaluated once from an empty KV cache, then each of its n samples
decodes from that shared prompt state (the KV cache is cut back to the prompt between samples), so
a shared prompt really is processed once. Sampling is done here, in numpy, with one generator per
sample seeded by ``seed + i``: the same prompt, settings and seed give the same text in any process,
whatever was generated before.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from widthdepth.backends.base import Completion, GenerationRequest, ModelInfo, Sample
from widthdepth.backends.catalog import EMBEDDED
from widthdepth.errors import WidthdepthError

_NUCLEUS_CANDIDATES = 1024  # top-p looks at this many best tokens first, the full vocabulary only if needed


def sample_token(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Greedy at temperature 0; else temperature, then nucleus (top-p) sampling, exactly."""
    if temperature <= 0.0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64) / temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    if top_p >= 1.0:
        candidates = np.arange(probs.size)
    else:
        k = min(_NUCLEUS_CANDIDATES, probs.size - 1)
        head = np.argpartition(-probs, k)[:k]
        candidates = head[np.argsort(-probs[head], kind="stable")]
        if probs[candidates].sum() < top_p:
            candidates = np.argsort(-probs, kind="stable")
        cut = int(np.searchsorted(np.cumsum(probs[candidates]), top_p)) + 1
        candidates = candidates[:cut]
    weights = np.cumsum(probs[candidates])
    index = int(np.searchsorted(weights, rng.random() * weights[-1], side="right"))
    return int(candidates[min(index, candidates.size - 1)])


class LlamaCppBackend:
    def __init__(self, path: Path, model_id: str, prompt_style: str | None, threads: int, context_length: int,
                 description: str = "") -> None:
        import llama_cpp  # heavy: imported only when this backend is used

        self._llama_cpp = llama_cpp
        threads = threads or max(1, os.cpu_count() or 1)
        try:
            self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=context_length, n_threads=threads,
                                       n_threads_batch=threads, n_batch=512, logits_all=False, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise WidthdepthError(f"--model {model_id!r}: llama.cpp could not load {path} ({exc})") from None
        template = self.llm.metadata.get("tokenizer.chat_template")
        style = prompt_style or ("chat" if template else "fewshot")
        if style == "chat" and not template:
            raise WidthdepthError(f"--model {model_id!r}: the model has no chat template; add ,style=fewshot")
        self._formatter = None
        if style == "chat":
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            model = self.llm._model
            eos, bos = self.llm.token_eos(), self.llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template, eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "")
        self._vocab = self.llm._model.vocab
        self._pieces: dict[int, bytes] = {}
        import ctypes

        self._ctypes = ctypes
        self.info = ModelInfo(
            id=model_id, n_params=int(self.llm._model.n_params()), prompt_style=style,
            shares_prompt_prefix=True, supports_raw_continuation=True, context_length=self.llm.n_ctx(),
            description=description or path.name)

    # -- text and tokens ---------------------------------------------------------------------------
    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        if self._formatter is None:
            raise WidthdepthError(f"{self.info.id}: chat messages need a chat model (style=chat)")
        chat = [{"role": role, "content": content} for role, content in messages]
        return self._formatter(messages=chat).prompt

    def _tokens(self, text: str) -> list[int]:
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        bos = self.llm.token_bos()
        if len(tokens) > 1 and tokens[0] == tokens[1] == bos:  # the template wrote its own BOS
            tokens = tokens[1:]
        return tokens

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buffer = self._ctypes.create_string_buffer(64)
            n = self._llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
            if n < 0:  # a longer piece: ask again with the size llama.cpp wants
                buffer = self._ctypes.create_string_buffer(-n)
                n = self._llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, False)
            piece = self._pieces[token] = buffer.raw[:n]
        return piece

    def _is_end(self, token: int) -> bool:
        return bool(self._llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _eval(self, tokens: list[int]) -> np.ndarray:
        self.llm.eval(tokens)  # only the last position's logits are computed
        return np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),)).copy()

    # -- generation --------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        for index, request in enumerate(requests):
            text = request.prompt if request.prompt is not None else self.render_chat(request.messages or ())
            tokens = self._tokens(text)
            room = self.info.context_length - len(tokens)
            if room < 1:
                error = (f"prompt of {len(tokens)} tokens does not fit the context of "
                         f"{self.info.context_length}; raise --context-length")
                for i in range(request.n):
                    yield Sample(index, i, Completion("", len(tokens), 0, "error", error=error))
                continue
            start = time.perf_counter()
            self.llm.reset()
            prompt_logits = self._eval(tokens)
            prompt_seconds = (time.perf_counter() - start) / request.n
            for i in range(request.n):
                yield Sample(index, i, self._sample(request, tokens, prompt_logits, request.seed + i,
                                                    min(request.max_tokens, room), prompt_seconds))

    def _sample(self, request: GenerationRequest, prompt: list[int], logits: np.ndarray, seed: int,
                max_tokens: int, prompt_seconds: float) -> Completion:
        start = time.perf_counter()
        self.llm.n_tokens = len(prompt)  # the next eval cuts the KV cache back to the shared prompt
        rng = np.random.default_rng(seed)
        first_logprobs = self._top_logprobs(logits, request.logprobs) if request.logprobs else {}
        pieces: list[bytes] = []
        finish = "length"
        for _ in range(max_tokens):
            token = sample_token(logits, request.temperature, request.top_p, rng)
            if self._is_end(token):
                finish = "stop"
                break
            pieces.append(self._piece(token))
            if request.stop and _find_stop(b"".join(pieces[-64:]), request.stop) is not None:
                finish = "stop"
                break
            if len(pieces) < max_tokens:
                logits = self._eval([token])
        raw = b"".join(pieces).decode("utf-8", errors="ignore")
        cut = _find_stop(raw.encode("utf-8"), request.stop) if request.stop else None
        text = raw if cut is None else raw.encode("utf-8")[:cut].decode("utf-8", errors="ignore")
        return Completion(text=text, prompt_tokens=len(prompt), completion_tokens=len(pieces),
                          finish_reason=finish, seconds=prompt_seconds + time.perf_counter() - start,
                          first_token_logprobs=first_logprobs)

    def _top_logprobs(self, logits: np.ndarray, k: int) -> dict[str, float]:
        shifted = logits.astype(np.float64) - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        out: dict[str, float] = {}
        for token in np.argsort(-logprobs, kind="stable")[:k]:
            piece = self._piece(int(token)).decode("utf-8", errors="ignore")
            out.setdefault(piece, float(logprobs[token]))
        return out

    def close(self) -> None:
        self.llm.close()


def _find_stop(data: bytes, stops: tuple[str, ...]) -> int | None:
    """Byte offset where the first stop string begins in `data`, or None."""
    found = [data.find(s.encode("utf-8")) for s in stops]
    found = [f for f in found if f >= 0]
    return min(found) if found else None


def build(target: str, params: dict[str, str], options: object) -> LlamaCppBackend:
    unknown = sorted(set(params) - {"style"})
    if unknown:
        raise WidthdepthError(f"--model llamacpp:{target}: unknown setting {unknown[0]!r} (valid: style=chat|fewshot)")
    style = params.get("style")
    if style not in (None, "chat", "fewshot"):
        raise WidthdepthError(f"--model llamacpp:{target}: style={style!r} (valid: chat, fewshot)")
    threads = getattr(options, "threads", 0)
    context_length = getattr(options, "context_length", 4096)
    if target in EMBEDDED:
        entry = EMBEDDED[target]
        model_id = f"llamacpp:{target}" + (f",style={style}" if style else "")
        return LlamaCppBackend(entry.path(), model_id, style or entry.prompt_style, threads, context_length,
                               entry.description)
    path = Path(target).expanduser().resolve()
    model_id = f"llamacpp:{path}" + (f",style={style}" if style else "")
    return LlamaCppBackend(path, model_id, style, threads, context_length)
