"""Verifiers, by name. A new verifier is one module plus one branch in `load_verifier`.

    exact   the task family's gold-free checker (search); free
    self    LLM self-verification by the run's own model
    none    no verifier (the verifier best-of aggregator is then not reported)
    latent  the built-in reasoner's verifier head (builtin: models only)
    auto    see VERIFIERS["auto"]: the one definition, shown by --help, `widthdepth tasks` and the README
    reward:URL[,format=json|tei,...]   a served reward model over HTTP (see reward.py)
"""

from __future__ import annotations

from widthdepth.backends.base import Backend
from widthdepth.errors import WidthdepthError
from widthdepth.tasks.base import TaskFamily
from widthdepth.verifiers.base import Verifier, VerifyItem

VERIFIERS = {
    "auto": "the task family's gold-free checker where it has one (exact: search), else the built-in "
            "reasoner's verifier head for builtin: models (latent), else none",
    "exact": "the task family's own gold-free checker (search); costs nothing",
    "self": "LLM self-verification: the run's model judges each answer (P(yes) from log-probabilities)",
    "latent": "the built-in reasoner's verifier head scores each trajectory (builtin: models only)",
    "none": "no verifier",
    "reward:URL": "a served reward or process-reward model over HTTP: reward:URL[,format=json|tei,name=N,params=N]",
}


def check_verifier_name(name: str, option: str = "--verifier") -> None:
    if name.startswith("reward:"):
        from widthdepth.verifiers.reward import parse_reward

        parse_reward(name, option)
        return
    if name not in VERIFIERS or name == "reward:URL":
        raise WidthdepthError(f"{option} {name!r}: unknown verifier (valid: {', '.join(VERIFIERS)})")


def load_verifier(name: str, family: TaskFamily, backend: Backend, option: str = "--verifier",
                  api_key: str | None = None) -> Verifier | None:
    check_verifier_name(name, option)
    latent = backend.info.latent
    if name.startswith("reward:"):
        if latent:
            raise WidthdepthError(f"{option} {name}: {backend.info.id} reads problems, not text; use --verifier latent")
        from widthdepth.verifiers.reward import build

        return build(name, api_key)
    if name == "auto":
        name = "exact" if family.exact_checkable else ("latent" if latent else "none")
    if name == "latent":
        if not latent:
            raise WidthdepthError(f"{option} latent: only built-in latent reasoners have a verifier head; "
                                  "use --verifier self or exact")
        from widthdepth.verifiers.latent import LatentVerifier
        return LatentVerifier(backend.info.id)
    if name == "self" and latent:
        raise WidthdepthError(f"{option} self: {backend.info.id} reads problems, not text; use --verifier latent")
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
