"""`latent`: the built-in reasoner's own verifier head, which scores each trajectory as it is sampled.

The runner hands the head's scores over as it builds the attempts (`record`); `verify` stores them.
Its FLOPs are part of each iteration's FLOPs, so it adds no cost of its own.
"""

from __future__ import annotations

from widthdepth.backends.base import Backend
from widthdepth.errors import WidthdepthError
from widthdepth.tasks.base import TaskFamily

from collections.abc import Iterator, Sequence

from widthdepth.attempts import Verification
from widthdepth.store import now
from widthdepth.verifiers.base import VerifyItem


class LatentVerifier:
    n_params = 0
    scores_partial = True
    """It scores a trajectory after every iteration (what latent search resamples by)."""

    def __init__(self, model_id: str) -> None:
        self.name = f"latent:{model_id}"
        self.scores: dict[str, float] = {}

    def record(self, attempt_key: str, score: float) -> None:
        self.scores[attempt_key] = score

    def verify(self, items: Sequence[VerifyItem]) -> Iterator[tuple[int, Verification]]:
        for index, item in enumerate(items):
            score = self.scores.get(item.attempt.key)
            if score is None:
                continue  # not sampled in this process: the runner resamples the chunk
            yield index, Verification(item.attempt.key, self.name, round(score, 6), "scored", 0, 0, "", "", 0.0, now())


def build(name: str, family: TaskFamily, backend: Backend, option: str, api_key: str | None = None) -> LatentVerifier:
    if not backend.info.latent:
        raise WidthdepthError(f"{option} latent: only built-in latent reasoners have a verifier head; "
                              "use --verifier self or exact")
    return LatentVerifier(backend.info.id)
