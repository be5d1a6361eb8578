"""The one cost unit of widthdepth: every number in a table or report is defined here.

Per attempt the store keeps raw counts (prompt tokens, completion tokens, cumulative serial tokens,
wall seconds). What a plan cell (w chains x d rounds of one problem) costs is derived from those
counts by `cell_cost`, so any sub-cell of a run can be priced without rerunning anything:

- ``prompt_tokens``: prompt tokens processed. A prompt that several samples share is counted once
  when the backend really evaluates it once (``shares_prompt_prefix``), else once per sample.
- ``generated_tokens``: tokens produced by the model over all attempts of the cell.
- ``flops``: ~= 2 x parameters x tokens processed (prompt_tokens + generated_tokens), the usual
  forward-pass estimate; attention's context-length term is ignored. Latent reasoners report
  their exact FLOPs per attempt (one iteration and its readout), which are summed instead.
  For them a "generated token" is one iteration of one trajectory, and serial tokens are iterations.
- ``serial_tokens``: the longest dependent path in decode steps: rounds of one chain add up,
  parallel chains do not (the max over chains is taken). Prompt evaluation is one parallel
  forward pass and is not counted. The latency proxy.
- ``verifier_tokens`` / ``verifier_flops``: what scoring the round-d answers with a model-based
  verifier cost (prompt + generated tokens, and their FLOPs). Exact checkers cost nothing.
- ``wall_seconds``: measured compute time summed over attempts (not elapsed time of a batch).

    >>> attempt_flops(n_params=1_000, tokens=10)
    20000.0
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

from widthdepth.errors import WidthdepthError

UNIT_DEFINITION = (
    "prompt_tokens: prompt tokens processed (a shared prompt counted once where the backend shares it); "
    "generated_tokens: tokens produced; flops ~= 2 x parameters x (prompt_tokens + generated_tokens); "
    "serial_tokens: decode steps on the longest dependent path (rounds add up, parallel chains do not); "
    "verifier_tokens/verifier_flops: model-based verification of the final round's answers; "
    "wall_seconds: compute time summed over attempts"
)


UNITS = ("generated_tokens", "flops", "serial_tokens")
"""The units a budget, a frontier or a policy is counted in."""


def check_unit(unit: str, option: str = "--unit") -> str:
    if unit not in UNITS:
        raise WidthdepthError(f"{option} {unit!r}: unknown (valid: {', '.join(UNITS)})")
    return unit


def default_unit(latent: bool) -> str:
    """FLOPs for latent reasoners (their "tokens" are iterations), generated tokens for language models."""
    return "flops" if latent else "generated_tokens"


def attempt_flops(n_params: int, tokens: int | float) -> float:
    """Forward-pass FLOPs for processing `tokens` tokens with an `n_params` model."""
    return 2.0 * float(n_params) * float(tokens)


def attempt_cost(unit: str, n_params: int, prompt_tokens: int, completion_tokens: int,
                 flops: float | None = None) -> float:
    """One attempt in `unit`: its generated tokens; its FLOPs (exact where the backend reported them,
    else 2 x parameters x the tokens it processed — pass prompt_tokens=0 for a prompt counted
    elsewhere); 0 serial tokens (serial tokens combine by max along chains, never by sum)."""
    if unit == "generated_tokens":
        return float(completion_tokens)
    if unit == "serial_tokens":
        return 0.0
    if flops is not None:
        return float(flops)
    return attempt_flops(n_params, prompt_tokens + completion_tokens)


def verification_cost(unit: str, verifier_params: int, prompt_tokens: int, completion_tokens: int) -> float:
    """One model-based verification in `unit` (none in serial tokens: it is not on the chain's path)."""
    if unit == "serial_tokens":
        return 0.0
    tokens = prompt_tokens + completion_tokens
    return float(tokens) if unit == "generated_tokens" else attempt_flops(verifier_params, tokens)


def pays_verification(aggregator: str, unit: str) -> bool:
    """Best-of pays for verifying the answers it picks from; majority and coverage do not."""
    return aggregator == "best_of" and unit != "serial_tokens"


@dataclass(frozen=True)
class Cost:
    """Cost of one plan cell on one problem, or a mean over problems."""

    prompt_tokens: float = 0.0
    generated_tokens: float = 0.0
    flops: float = 0.0
    serial_tokens: float = 0.0
    verifier_tokens: float = 0.0
    verifier_flops: float = 0.0
    wall_seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def scaled(self, factor: float) -> Cost:
        return Cost(**{f.name: getattr(self, f.name) * factor for f in fields(self)})

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class AttemptCost:
    """The raw counts the store keeps for one attempt (see module docstring)."""

    prompt_key: str
    prompt_tokens: int
    completion_tokens: int
    serial_tokens: int
    wall_seconds: float
    flops: float | None = None
    """Exact FLOPs reported by the backend (latent reasoners); None: 2 x parameters x tokens."""


@dataclass(frozen=True)
class VerificationCost:
    prompt_tokens: int
    completion_tokens: int


def cell_cost(
    attempts: Iterable[AttemptCost],
    final_round: Iterable[AttemptCost],
    verifications: Iterable[VerificationCost],
    n_params: int,
    shares_prompt_prefix: bool,
    verifier_params: int = 0,
) -> Cost:
    """Cost of one problem's cell: `attempts` are all attempts of w chains up to round d,
    `final_round` those at round d (their serial_tokens are cumulative along the chain)."""
    attempts = list(attempts)
    seen_prompts: set[str] = set()
    prompt_tokens = generated = 0
    wall = 0.0
    exact = [a.flops for a in attempts if a.flops is not None]
    for a in attempts:
        generated += a.completion_tokens
        wall += a.wall_seconds
        if shares_prompt_prefix:
            if a.prompt_key in seen_prompts:
                continue
            seen_prompts.add(a.prompt_key)
        prompt_tokens += a.prompt_tokens
    serial = max((a.serial_tokens for a in final_round), default=0)
    verifier_tokens = sum(v.prompt_tokens + v.completion_tokens for v in verifications)
    return Cost(
        prompt_tokens=prompt_tokens,
        generated_tokens=generated,
        flops=sum(exact) if exact else attempt_flops(n_params, prompt_tokens + generated),
        serial_tokens=serial,
        verifier_tokens=verifier_tokens,
        verifier_flops=attempt_flops(verifier_params, verifier_tokens),
        wall_seconds=wall,
    )


def mean_cost(costs: list[Cost]) -> Cost:
    total = Cost()
    for c in costs:
        total = total + c
    return total.scaled(1.0 / len(costs)) if costs else total
