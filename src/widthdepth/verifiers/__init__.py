"""Verifiers, by name. A new verifier is one module plus one branch in `load_verifier`.

    exact   the task family's gold-free checker (search); free
    self    LLM self-verification by the run's own model
    none    no verifier (the verifier best-of aggregator is then not reported)
    auto    exact where the family has it, else none
"""

from __future__ import annotations

from widthdepth.backends.base import Backend
from widthdepth.errors import WidthdepthError
from widthdepth.tasks.base import TaskFamily
from widthdepth.verifiers.base import Verifier, VerifyItem

VERIFIERS = {
    "auto": "exact where the task family has a gold-free checker, else none",
    "exact": "the task family's own gold-free checker (search); costs nothing",
    "self": "LLM self-verification: the run's model judges each answer (P(yes) from log-probabilities)",
    "none": "no verifier",
}


def check_verifier_name(name: str, option: str = "--verifier") -> None:
    if name not in VERIFIERS:
        raise WidthdepthError(f"{option} {name!r}: unknown verifier (valid: {', '.join(VERIFIERS)})")


def load_verifier(name: str, family: TaskFamily, backend: Backend, option: str = "--verifier") -> Verifier | None:
    check_verifier_name(name, option)
    if name == "auto":
        name = "exact" if family.exact_checkable else "none"
    if name == "none":
        return None
    if name == "exact":
        if not family.exact_checkable:
            raise WidthdepthError(f"{option} exact: task {family.spec!r} has no gold-free checker "
                                  "(only search does); use --verifier self or none")
        from widthdepth.verifiers.exact import ExactVerifier
        return ExactVerifier()
    from widthdepth.verifiers.self_verify import SelfVerifier
    return SelfVerifier(backend)


__all__ = ["VERIFIERS", "Verifier", "VerifyItem", "check_verifier_name", "load_verifier"]
