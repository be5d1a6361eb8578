"""`steps`: an exact step checker for `chain` problems, a process reward free of cost.

The score of a chain's text is the share of its ``Step i:`` lines that end in the true value after
step i (`ChainFamily.score_steps`), so it scores unfinished solutions too. It reads the problem's
own steps: an oracle that only a synthetic task can have, standing in for a trained process reward
model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from widthdepth.attempts import Verification
from widthdepth.backends.base import Backend
from widthdepth.errors import WidthdepthError
from widthdepth.store import now
from widthdepth.tasks.base import TaskFamily
from widthdepth.verifiers.base import VerifyItem


class StepVerifier:
    name = "steps"
    n_params = 0
    scores_partial = True

    def verify(self, items: Sequence[VerifyItem]) -> Iterator[tuple[int, Verification]]:
        for index, item in enumerate(items):
            counted = item.family.score_steps(item.problem, item.solution)
            score = None if counted is None else counted[0] / counted[1]
            verdict = "no steps" if counted is None else f"{counted[0]}/{counted[1]} steps right"
            yield index, Verification(
                attempt_key=item.attempt.key, verifier=self.name, score=score, verdict=verdict,
                prompt_tokens=0, completion_tokens=0, prompt="", text="", wall_seconds=0.0, created_at=now())


def build(name: str, family: TaskFamily, backend: Backend, option: str, api_key: str | None = None) -> StepVerifier:
    if not hasattr(family, "score_steps"):
        raise WidthdepthError(f"{option} steps: task {family.spec!r} has no step checker (only chain has one); "
                              "use --verifier self, exact or none")
    return StepVerifier()
