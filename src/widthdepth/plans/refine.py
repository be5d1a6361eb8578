"""`refine:N,D` — N chains, then D - 1 rounds in which every chain revises its own previous attempt
with the other chains' answers in view (aggregation across chains, mixture-of-agents style), not only
its own attempt as `grid:NxD` does. The answer is the majority of the N chains at round D.

Round 1 is `parallel:N`'s (same chains, stored once). A round waits for every chain of the round
before (it shows their answers), so its latency is the rounds one after another, each as long as its
longest chain.

    >>> from widthdepth.plans import load_plan
    >>> load_plan("refine:4,3")
    RefinePlan(chains=4, rounds=3, mode='refine')
"""

from __future__ import annotations

from dataclasses import dataclass

from widthdepth.errors import WidthdepthError
from widthdepth.specs import Spec
from widthdepth.tasks.base import Problem, TaskFamily
from widthdepth.tasks.prompts import Prompt, attempt_prompt, refine_prompt


@dataclass(frozen=True)
class RefinePlan:
    chains: int
    rounds: int
    mode: str = "refine"

    @property
    def spec(self) -> str:
        return f"refine:{self.chains},{self.rounds}"

    @property
    def attempts_per_problem(self) -> int:
        return self.chains * self.rounds

    def check_backend(self, info) -> None:  # noqa: ANN001 - backends.ModelInfo
        if info.latent:
            raise WidthdepthError(f"--plan {self.spec!r}: refine shows chains each other's answers as text; "
                                  f"{info.id} reads no text — use grid:NxD or particles:N")

    def first_prompt(self, family: TaskFamily, problem: Problem, style: str) -> Prompt:
        return attempt_prompt(family, problem, style)

    def refine_prompt(self, family: TaskFamily, problem: Problem, style: str, own: str, others: list[str | None]) -> Prompt:
        return refine_prompt(family, problem, own, others, style)

    def chain_text(self, chain_texts: list[str]) -> str:
        return chain_texts[-1]


def parse_refine(spec: Spec) -> RefinePlan:
    spec.check_known(set())
    if len(spec.args) != 2 or not all(a.isdigit() for a in spec.args):
        raise spec.error("expected refine:N,D, e.g. refine:4,3 (N chains, D rounds)")
    chains, rounds = (int(a) for a in spec.args)
    if not 2 <= chains <= 256 or not 1 <= rounds <= 64:
        raise spec.error(f"N={chains} must be 2..256 (the chains see each other) and D={rounds} 1..64")
    return RefinePlan(chains, rounds)
