"""`grid:NxD` — N independent chains of D rounds; `parallel:N` is grid:Nx1, `sequential:D` is grid:1xD.

Round 1 of every chain answers the problem. Round d > 1 builds on round d-1 of the same chain:

- ``mode=revise`` (default): the model sees the problem and the previous attempt, checks it and gives
  an improved final answer. Works with chat and raw-text backends.
- ``mode=extend`` (budget forcing): the previous attempt is continued after a "Wait," cue, as raw
  text. Needs a backend that continues raw text.

Chains of different plans share attempts: chain w, round d of ``parallel:4`` is the same attempt
(same key, stored once) as chain w, round d of ``grid:8x2`` under the same model and settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from widthdepth.tasks.base import Problem, TaskFamily
from widthdepth.tasks.prompts import EXTEND_CUE, Prompt, attempt_prompt, extend_prompt, revise_prompt

MODES = ("revise", "extend")


@dataclass(frozen=True)
class GridPlan:
    chains: int
    rounds: int
    mode: str = "revise"

    @property
    def spec(self) -> str:
        suffix = "" if self.mode == "revise" else f",mode={self.mode}"
        return f"grid:{self.chains}x{self.rounds}{suffix}"

    @property
    def attempts_per_problem(self) -> int:
        return self.chains * self.rounds

    def first_prompt(self, family: TaskFamily, problem: Problem, style: str) -> Prompt:
        return attempt_prompt(family, problem, style)

    def next_prompt(self, family: TaskFamily, problem: Problem, style: str, first_raw: str,
                    chain_texts: list[str]) -> Prompt:
        """Round len(chain_texts)+1 of a chain whose earlier rounds wrote `chain_texts`.
        `first_raw` is the round-1 prompt as raw text (only used by extend)."""
        if self.mode == "extend":
            return extend_prompt(first_raw, [chain_texts[0]] + [EXTEND_CUE + t for t in chain_texts[1:]])
        return revise_prompt(family, problem, chain_texts[-1], style)

    def chain_text(self, chain_texts: list[str]) -> str:
        """The text whose answer counts for the chain at its latest round."""
        if self.mode == "extend":
            return EXTEND_CUE.join(chain_texts)
        return chain_texts[-1]
