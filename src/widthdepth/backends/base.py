"""The backend protocol: a batch of generation requests in, completions out.

A backend knows nothing about plans or problems. Sample ``i`` of a request with ``seed`` s must be
a function of (prompt, settings, s + i) alone, so that a resumed run that asks only for the missing
samples gets exactly what an uninterrupted run would have got.

    backend = load_backend("llamacpp:smollm2-135m")
    for sample in backend.generate([GenerationRequest(messages=(("user", "2+2?"),), n=2, seed=7)]):
        print(sample.sample_index, sample.completion.text)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


CONFIDENCE_WINDOW = 16
"""Tokens in the sliding window of DeepConf's group confidence (short: these models write short answers)."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str | None = None
    """Raw text to continue (base models, extend rounds). Exactly one of prompt and messages."""
    messages: tuple[tuple[str, str], ...] | None = None
    """(role, content) pairs for instruct models; the backend applies the model's chat template."""
    n: int = 1
    """Independent samples of this prompt; sample i uses seed + i."""
    max_tokens: int = 256
    temperature: float = 0.7
    """0 means greedy decoding."""
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0
    logprobs: int = 0
    """How many top alternatives to return for the first generated token (0: none)."""
    confidence_floor: float | None = None
    """DeepConf online: stop a sample once the mean log-probability of its last CONFIDENCE_WINDOW
    tokens falls below this (finish_reason "low_confidence"); backends with `stops_on_confidence`."""


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    """"stop" (end of sequence or a stop string), "length" (max_tokens) or "error"."""
    seconds: float = 0.0
    """Compute time of this sample, its share of a shared prompt evaluation included."""
    first_token_logprobs: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    mean_logprob: float | None = None
    """Mean log-probability (temperature 1) of the generated tokens, where the backend has it: the
    model's own confidence, a difficulty predictor (`widthdepth allocate`)."""
    lowest_confidence: float | None = None
    """The lowest mean log-probability over any CONFIDENCE_WINDOW consecutive generated tokens (over all
    of them when fewer): DeepConf's "lowest group confidence", where the backend has it."""


@dataclass(frozen=True)
class Sample:
    request_index: int
    sample_index: int
    completion: Completion


@dataclass(frozen=True)
class ModelInfo:
    id: str
    """Stable identity used in attempt keys, e.g. ``llamacpp:smollm2-135m``."""
    n_params: int
    """Parameter count read from the model itself (feeds the FLOPs model)."""
    prompt_style: str
    """"chat" for instruct models (chat template), "fewshot" for base models."""
    shares_prompt_prefix: bool
    """True when n samples of one prompt evaluate the prompt once."""
    supports_raw_continuation: bool
    """True when the backend can continue raw text (needed by extend mode)."""
    context_length: int = 0
    description: str = ""
    stops_on_confidence: bool = False
    """True when the backend honours `GenerationRequest.confidence_floor` as it decodes (DeepConf online)."""
    latent: bool = False
    """True for built-in latent reasoners: they answer problems (their structure), not text prompts,
    and produce a whole grid of trajectories x iterations in one pass (`sample_grid`)."""
    latent_search: bool = False
    """A latent model whose states beam, dvts and particles can resample (the built-in reasoner's)."""


def model_identity(base: str, settings: dict[str, str], defaults: dict[str, str]) -> str:
    """A model's id in attempt keys: ``base`` plus every setting that can change its samples and is not
    at its default, sorted (``llamacpp:smollm2-135m,flash_attn=on``). The default spelling keeps the
    id that stores made before the setting existed; any other value is another model, so a rerun
    with it never reuses attempts made under the old one."""
    return base + "".join(f",{key}={settings[key]}" for key in sorted(settings)
                          if settings[key] is not None and settings[key] != defaults.get(key))


class Backend(Protocol):
    info: ModelInfo

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        """Yield each sample as soon as it is done, in any order. Failures are yielded as
        completions with finish_reason "error" rather than raised, so finished work is kept."""
        ...

    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        """The raw text the model sees for these messages (with the generation prompt)."""
        ...

    def close(self) -> None: ...


class LatentBackend(Backend, Protocol):
    """A built-in latent reasoner (``info.latent``): it answers problems by their structure, a whole
    grid of trajectories x iterations at once, not text prompts."""

    def sample_grid(self, structures: list[dict], chains: int, rounds: int,
                    seeds: list[list[int]]) -> list[list[list[Any]]]:
        """grid[i][w][d - 1]: problem i's trajectory w after d iterations (`.answer`, `.text`, `.score`,
        `.flops`, `.log_probability`); trajectory w of problem i draws with seeds[i][w]."""
        ...

    def search(self, structures: list[dict], rows: int, iterations: int, seeds: list[int],
               select: Any) -> list[list[list[Any]]]:
        """nodes[i][t][r]: problem i's row r after t + 1 iterations (`.answer`, `.score`, `.flops`, `.parent`,
        `.log_probability`), where `select(i, t, scores)` chose the row each next row continues."""
        ...

    def check_task(self, structure: dict) -> None:
        """Raise WidthdepthError if this reasoner cannot read problems of this structure."""
        ...
