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

UNIT_DEFINITION = (
    "prompt_tokens: prompt tokens processed (a shared prompt counted once where the backend shares it); "
    "generated_tokens: tokens produced; flops ~= 2 x parameters x (prompt_tokens + generated_tokens); "
    "serial_tokens: decode steps on the longest dependent path (rounds add up, parallel chains do not); "
    "verifier_tokens/verifier_flops: model-based verification of the final round's answers; "
    "wall_seconds: compute time summed over attempts"
)


def attempt_flops(n_params: int, tokens: int | float) -> float:
    """Forward-pass FLOPs for processing `tokens` tokens with an `n_params` model."""
    return 2.0 * float(n_params) * float(tokens)


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
