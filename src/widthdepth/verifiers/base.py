"""The verifier protocol: score the answers of attempts, recording verdict and cost.

A verifier gets (problem, family, attempt, chain text) items and yields one `Verification` per
item, as soon as it exists, so the runner can commit each at once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from widthdepth.attempts import Attempt, Verification
from widthdepth.tasks.base import Problem, TaskFamily


@dataclass(frozen=True)
class VerifyItem:
    problem: Problem
    family: TaskFamily
    attempt: Attempt
    solution: str
    """The chain's text at this round (what the answer came from)."""


class Verifier(Protocol):
    name: str
    """Stored with each verification, e.g. ``exact`` or ``self:llamacpp:smollm2-135m``."""
    n_params: int
    """Parameters of the verifying model (0 for exact checkers); feeds verifier FLOPs."""

    def verify(self, items: Sequence[VerifyItem]) -> Iterator[tuple[int, Verification]]: ...
