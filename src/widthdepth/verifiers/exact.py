"""`exact`: the task family's own gold-free checker (`search`: plug the candidate in; `code`: run the tests).
Costs no model tokens."""

from __future__ import annotations

from widthdepth.backends.base import Backend
from widthdepth.errors import WidthdepthError
from widthdepth.tasks.base import TaskFamily

from collections.abc import Iterator, Sequence

from widthdepth.attempts import Verification
from widthdepth.store import now
from widthdepth.verifiers.base import VerifyItem


class ExactVerifier:
    name = "exact"
    n_params = 0

    def verify(self, items: Sequence[VerifyItem]) -> Iterator[tuple[int, Verification]]:
        for index, item in enumerate(items):
            answer = item.attempt.final_answer
            ok = item.family.verify(item.problem, answer) if answer is not None else None
            verdict = "no answer" if ok is None else ("valid" if ok else "invalid")
            yield index, Verification(
                attempt_key=item.attempt.key, verifier=self.name, score=None if ok is None else float(ok),
                verdict=verdict, prompt_tokens=0, completion_tokens=0, prompt="", text="",
                wall_seconds=0.0, created_at=now())


def build(name: str, family: TaskFamily, backend: Backend, option: str, api_key: str | None = None) -> ExactVerifier:
    if not family.exact_checkable:
        raise WidthdepthError(f"{option} exact: task {family.spec!r} has no gold-free checker "
                              "(search and code have one); use --verifier self or none")
    return ExactVerifier()
