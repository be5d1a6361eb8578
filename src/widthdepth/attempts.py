"""Attempt and verification rows — what the store keeps per generated answer and per score — with
their deterministic keys and seeds. Chains link through ``parent_key``; the traces an analysis
reads are rebuilt from these rows (`widthdepth.analysis.traces`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from widthdepth.specs import stable_hash, stable_int


@dataclass(frozen=True)
class Attempt:
    key: str
    """sha256 of (model, problem, prompt, sampling settings, chain, round, seed): deterministic."""
    model: str
    task: str
    problem_key: str
    w: int
    """Chain index, from 0."""
    d: int
    """Round, from 1."""
    mode: str
    """"" for round 1 (shared by every mode), else "revise" or "extend"."""
    parent_key: str | None
    seed: int
    prompt: str
    prompt_key: str
    settings: str
    """JSON of max_tokens, temperature, top_p and stop strings."""
    text: str
    answer: str | None
    """Parsed from this attempt's own text (None when it states none)."""
    final_answer: str | None
    """The chain's answer at this round: own answer, else the previous round's (revise mode)."""
    correct: bool | None
    """None for a failed attempt (failures are counted apart, never as wrong answers) and where the
    problem has no gold answer (served traffic)."""
    finish_reason: str
    status: str
    """"ok", "failed", or "cancelled" (its request's client went away: what it generated is charged)."""
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    serial_tokens: int
    """Decode steps from the start of the chain to the end of this attempt."""
    wall_seconds: float
    created_at: str
    flops: float | None = None
    """Exact FLOPs where the backend reports them (latent reasoners); None: derived from tokens."""
    confidence: float | None = None
    """The model's own confidence in this attempt where the backend reports it: mean token
    log-probability (text), log-probability of the answer (latent reasoners)."""
    lowest_confidence: float | None = None
    """The lowest mean token log-probability over a sliding window (DeepConf's lowest group
    confidence), where the backend reports it (llama.cpp)."""

    @property
    def failed(self) -> bool:
        return self.status != "ok"

    def to_row(self) -> dict[str, Any]:
        row = {name: getattr(self, name) for name in _ATTEMPT_FIELDS}  # shallow: every field is a plain value
        row["correct"] = None if self.correct is None else int(self.correct)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Attempt:
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}
        values["correct"] = None if row["correct"] is None else bool(row["correct"])
        return cls(**values)


@dataclass(frozen=True)
class Verification:
    attempt_key: str
    verifier: str
    score: float | None
    """In [0, 1]; higher means more likely correct. None when the attempt had no answer to check."""
    verdict: str
    prompt_tokens: int
    completion_tokens: int
    prompt: str
    text: str
    wall_seconds: float
    created_at: str

    def to_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _VERIFICATION_FIELDS}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Verification:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


_ATTEMPT_FIELDS = tuple(f.name for f in fields(Attempt))
_VERIFICATION_FIELDS = tuple(f.name for f in fields(Verification))

TIMING_FIELDS = frozenset({"wall_seconds", "created_at"})
"""Fields that differ between two runs of the same command; everything else is reproducible."""


def attempt_status(finish_reason: str) -> str:
    """An attempt's status from how its generation ended: "failed" (an error), "cancelled", else "ok"."""
    return {"error": "failed", "cancelled": "cancelled"}.get(finish_reason, "ok")


def attempt_seed(run_seed: int, problem_key: str, d: int, w: int) -> int:
    """Chain w at round d draws with this seed; chains of one round use consecutive seeds so that
    one request with n samples (seed s, samples s..s+n-1) serves a run of chains."""
    return stable_int(run_seed, problem_key, d, bits=30) + w


def attempt_key(model: str, problem_key: str, prompt: str, settings: str, w: int, d: int, seed: int) -> str:
    return stable_hash(model, problem_key, prompt, settings, w, d, seed)
