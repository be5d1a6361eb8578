"""`llamacpp:` — GGUF models on the CPU through llama-cpp-python.

    llamacpp:smollm2-135m                 the embedded default (SmolLM2-135M-Instruct Q4_1, chat)
    llamacpp:gemma3-270m                  Gemma 3 270M base (few-shot prompts)
    llamacpp:/path/model.gguf             any GGUF; chat if it has a chat template, else few-shot
    llamacpp:/path/model.gguf,style=fewshot

    llamacpp:smollm2-135m,slots=32        decode up to 32 sequences together (default 16)
    llamacpp:smollm2-135m,flash_attn=on   faster with mixed lengths; samples may then depend on the batch

How requests run (`llamacpp_batch.py`): up to `slots` sequences decode together, one token each per
`llama_decode`; a request's prompt is evaluated once and its n samples share its KV cells; finished
sequences hand their slot to the next sample or request (continuous batching), so the samples of a
round, and the chains of a grid round by round, advance as batches. Sampling is done here, in numpy,
with one generator per sample seeded by ``seed + i``: the same prompt, settings and seed give the same
text in any process, whatever else is in the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from widthdepth.backends.base import Completion, GenerationRequest, ModelInfo, Sample, model_identity
from widthdepth.backends.cpu_share import ThreadGovernor, available_cores
from widthdepth.backends.embedded import EMBEDDED
from widthdepth.backends.llamacpp_batch import EvaluatedPrompt
from widthdepth.errors import WidthdepthError

DEFAULT_SLOTS = 16
_BLOCK = 256


def sample_token(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """Greedy at temperature 0; else temperature, then nucleus (top-p) sampling, exactly: the
    nucleus is the smallest set of most likely tokens whose probability reaches top_p (ties by token
    id), and one uniform draw picks from it by inverse CDF. Found without sorting the vocabulary:
    candidates above a falling probability threshold until they hold top_p of the mass."""
    if temperature <= 0.0:
        return int(np.argmax(logits))
    scaled = logits.astype(np.float64)
    scaled *= 1.0 / temperature
    scaled -= scaled.max()
    probs = np.exp(scaled, out=scaled)
    total = probs.sum()
    if top_p >= 1.0:
        return _inverse_cdf(probs, rng.random() * total)
    cutoff, mass = 1.0, 0.0
    while True:
        candidates = np.flatnonzero(probs >= cutoff)
        mass = probs[candidates].sum()
        if mass >= top_p * total or cutoff < 1e-300:
            break
        cutoff *= 1.0 / 64
    order = candidates[np.argsort(-probs[candidates], kind="stable")]
    cumulative = np.cumsum(probs[order])
    cut = int(np.searchsorted(cumulative, top_p * total)) + 1
    weights = cumulative[:cut]
    index = int(np.searchsorted(weights, rng.random() * weights[-1], side="right"))
    return int(order[min(index, cut - 1)])


def _inverse_cdf(weights: np.ndarray, target: float) -> int:
    """The first index whose running sum of `weights` exceeds `target`, in two levels (blocks of
    _BLOCK, then within the block): a full running sum over the vocabulary costs 4x more."""
    size = weights.size
    blocks = -(-size // _BLOCK)
    padded = weights if size == blocks * _BLOCK else np.concatenate([weights, np.zeros(blocks * _BLOCK - size)])
    block_sums = np.cumsum(padded.reshape(blocks, _BLOCK).sum(axis=1))
    block = min(int(np.searchsorted(block_sums, target, side="right")), blocks - 1)
    before = block_sums[block - 1] if block else 0.0
    inside = np.cumsum(padded[block * _BLOCK:(block + 1) * _BLOCK])
    index = block * _BLOCK + int(np.searchsorted(inside, target - before, side="right"))
    return min(index, size - 1)


class LlamaCppBackend:
    def __init__(self, path: Path, model_id: str, prompt_style: str | None, threads: int, context_length: int,
                 description: str = "", slots: int = DEFAULT_SLOTS, flash_attention: bool = False) -> None:
        import llama_cpp  # heavy: imported only when this backend is used

        from widthdepth.backends.llamacpp_batch import BatchedDecoder

        self._llama_cpp = llama_cpp
        governor = None
        if not threads:  # auto: the cores other processes leave free, followed as the machine changes
            governor = ThreadGovernor(available_cores())
            threads = governor.start()
        try:  # this context only tokenizes; decoding runs in the batched decoder's own context
            self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_batch=64, n_threads=threads,
                                       n_threads_batch=threads, logits_all=False, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise WidthdepthError(f"--model {model_id!r}: llama.cpp could not load {path} ({exc})") from None
        arch = self.llm.metadata.get("general.architecture", "llama")
        trained = int(self.llm.metadata.get(f"{arch}.context_length", 0) or 0)
        context_length = min(context_length, trained) if trained else context_length  # no positions past training
        self.context_length = context_length
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
            shares_prompt_prefix=True, supports_raw_continuation=True, context_length=context_length,
            description=description or path.name, stops_on_confidence=True)
        self.decoder = BatchedDecoder(
            llama_cpp, self.llm._model, self.llm.n_vocab(), slots, context_length=context_length,
            n_batch=512, threads=threads, sample_token=sample_token, piece=self._piece, is_end=self._is_end,
            top_logprobs=self._top_logprobs, flash_attention=flash_attention, governor=governor)

    # -- text and tokens ---------------------------------------------------------------------------
    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        if self._formatter is None:
            raise WidthdepthError(f"{self.info.id}: chat messages need a chat model (style=chat)")
        chat = [{"role": role, "content": content} for role, content in messages]
        return self._formatter(messages=chat).prompt

    def _tokens(self, text: str) -> list[int]:
        bos = self.llm.token_bos()
        own = bos != -1 and text.startswith(self.llm._model.token_get_text(bos))  # the template wrote it
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=not own, special=True)
        if len(tokens) > 1 and tokens[0] == tokens[1] == bos:  # a BOS written by other means
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

    # -- generation --------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        once = [list(requests)]
        return self.generate_open(lambda: once.pop() if once else [])

    def generate_open(self, feed: Callable[[], list[GenerationRequest]],
                      dropped: Callable[[int], bool] | None = None) -> Iterator[Sample]:
        """Like `generate`, for requests that keep arriving: `feed` is asked for more before every
        decoding step (they are numbered in the order fed) and joins them to the running batch; a
        request for which `dropped(r)` turns true stops (finish_reason "cancelled"). Ends once
        nothing is queued or running (`widthdepth serve` feeds the requests of many clients)."""
        return self.decoder.run(lambda: [(request, self._prompt(request)) for request in feed()], dropped)

    def _prompt(self, request: GenerationRequest) -> EvaluatedPrompt:
        text = request.prompt if request.prompt is not None else self.render_chat(request.messages or ())
        tokens = self._tokens(text)
        prompt = EvaluatedPrompt(tokens, min(request.max_tokens, max(self.context_length - len(tokens), 0)))
        if prompt.room < 1:
            prompt.error = (f"prompt of {len(tokens)} tokens does not fit the context of {self.context_length}; "
                            "raise --context-length (at most the context the model was trained on)")
        return prompt

    def count_tokens(self, request: GenerationRequest) -> int:
        """Prompt tokens of a request, as the model reads them."""
        return len(self._prompt(request).tokens)

    def _top_logprobs(self, logits: np.ndarray, k: int) -> dict[str, float]:
        shifted = logits.astype(np.float64) - logits.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        out: dict[str, float] = {}
        for token in np.argsort(-logprobs, kind="stable")[:k]:
            piece = self._piece(int(token)).decode("utf-8", errors="ignore")
            out.setdefault(piece, float(logprobs[token]))
        return out

    def close(self) -> None:
        self.decoder.close()
        self.llm.close()


def build(target: str, params: dict[str, str], options: object) -> LlamaCppBackend:
    unknown = sorted(set(params) - {"style", "slots", "flash_attn"})
    if unknown:
        raise WidthdepthError(f"--model llamacpp:{target}: unknown setting {unknown[0]!r} "
                              "(valid: style=chat|fewshot, slots=N, flash_attn=on|off)")
    flash = params.get("flash_attn", "off")
    if flash not in ("on", "off"):
        raise WidthdepthError(f"--model llamacpp:{target}: flash_attn={flash!r} (valid: on, off)")
    slots = params.get("slots", str(DEFAULT_SLOTS))
    if not slots.isdigit() or not 1 <= int(slots) <= 256:
        raise WidthdepthError(f"--model llamacpp:{target}: slots={slots!r} must be a whole number from 1 to 256")
    style = params.get("style")
    if style not in (None, "chat", "fewshot"):
        raise WidthdepthError(f"--model llamacpp:{target}: style={style!r} (valid: chat, fewshot)")
    threads = getattr(options, "threads", 0)
    context_length = getattr(options, "context_length", 4096)
    # slots and flash attention can change the floats (README, "Models"), so they are part of the identity
    settings = {"style": style, "slots": str(int(slots)), "flash_attn": flash}
    defaults = {"slots": str(DEFAULT_SLOTS), "flash_attn": "off"}
    if target in EMBEDDED:
        entry = EMBEDDED[target]
        return LlamaCppBackend(entry.path(), model_identity(f"llamacpp:{entry.identity()}", settings, defaults),
                               style or entry.prompt_style, threads, context_length, entry.description, int(slots),
                               flash == "on")
    path = Path(target).expanduser().resolve()
    return LlamaCppBackend(path, model_identity(f"llamacpp:{path}", settings, defaults), style, threads,
                           context_length, slots=int(slots), flash_attention=flash == "on")
