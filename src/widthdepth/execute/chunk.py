"""A chunk of problems run away from the store: the executor writes into a `ChunkSink`, and the one
process that writes the store applies what it queued (issue 19: replicas on other machines, one
writer).

    sink = prefetch(store, model_id, [p.key for p in chunk])   # what the store has for these problems
    executor_for(plan, backend)(sink, backend, config, family, plan, chunk, verifier, progress).execute()
    apply(store, sink.outbox)                                   # in order: parents before children

The sink answers reads from the prefetched rows and its own writes with the store's rules (a stored
failure is replaced by a later try, a stored success never; a verification already stored is kept),
so an executor behaves as it would on the store. Writes it drops under those rules are not queued.
A chunk cut short (its replica died) is run again from a fresh prefetch: what was applied is read
back, not generated again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from widthdepth.attempts import Attempt, Verification
from widthdepth.store import Store
from widthdepth.store_read import problem_rows

Write = tuple[str, tuple]
"""(the `Store` method, its arguments)"""


class ChunkSink:
    """`execute.base.Sink` over what the store held for a chunk's problems when it was prefetched."""

    def __init__(self, attempts: Iterable[Attempt], verifications: Iterable[Verification],
                 points: Iterable[dict[str, Any]]) -> None:
        self.attempts = {a.key: a for a in attempts}
        self.verifications = {(v.attempt_key, v.verifier): v for v in verifications}
        self.points = list(points)
        self.outbox: list[Write] = []

    def get_attempt(self, key: str) -> Attempt | None:
        return self.attempts.get(key)

    def get_verification(self, attempt_key: str, verifier: str) -> Verification | None:
        return self.verifications.get((attempt_key, verifier))

    def method_points(self, run_key: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.points if run_key is None or p["run_key"] == run_key]

    def put_attempt(self, attempt: Attempt) -> None:
        if self._keep(attempt):
            self.outbox.append(("put_attempt", (attempt,)))

    def put_verification(self, verification: Verification) -> None:
        if self._keep_verification(verification):
            self.outbox.append(("put_verification", (verification,)))

    def put_tree(self, attempts: list[Attempt], verifications: list[Verification]) -> None:
        kept = [a for a in attempts if self._keep(a)]
        checked = [v for v in verifications if self._keep_verification(v)]
        if kept or checked:
            self.outbox.append(("put_tree", (kept, checked)))

    def put_method_point(self, run_key: str, experiment: dict[str, Any], point: dict[str, Any]) -> None:
        self.outbox.append(("put_method_point", (run_key, experiment, point)))

    def put_allocation(self, run_key: str, task: str, model: str, plan: str, predictor: str, unit: str,
                       decision: dict[str, Any]) -> None:
        self.outbox.append(("put_allocation", (run_key, task, model, plan, predictor, unit, decision)))

    def _keep(self, attempt: Attempt) -> bool:
        """The store's rule: a new attempt, or a later try of a stored failure (then it is the one read)."""
        stored = self.attempts.get(attempt.key)
        if stored is not None and stored.status == "ok":
            return False
        self.attempts[attempt.key] = attempt
        return True

    def _keep_verification(self, verification: Verification) -> bool:
        key = (verification.attempt_key, verification.verifier)
        if key in self.verifications:
            return False
        self.verifications[key] = verification
        return True


def prefetch(store: Store, model: str, problem_keys: Iterable[str]) -> ChunkSink:
    """A sink holding what `store` has of `model` on these problems: attempts, their verifications (by
    any verifier) and the method points of the problems."""
    keys = set(problem_keys)
    attempts, verifications = problem_rows(store, model, keys)
    points = [p for p in store.method_points() if p["model"] == model and p["problem_key"] in keys]
    return ChunkSink(attempts, verifications, points)


def apply(store: Store, outbox: Iterable[Write]) -> None:
    """A chunk's writes, in the order the executor made them, into the store."""
    for method, args in outbox:
        getattr(store, method)(*args)
