"""Verifiers, by name. A new verifier is one module with a ``build`` function plus one line in
`VERIFIERS` (its description) and one in `MODULES`.

    exact   the task family's gold-free checker (search; code: its tests); free
    steps   an exact step checker (chain): the share of right intermediate values; free
    self    LLM self-verification by the run's own model
    none    no verifier (the verifier best-of aggregator is then not reported)
    latent  the built-in reasoner's verifier head (builtin: models only)
    auto    see VERIFIERS["auto"]: the one definition, shown by --help, `widthdepth tasks` and the README
    reward:URL[,format=json|tei,...]   a served reward model over HTTP (see reward.py)
"""

from __future__ import annotations

import importlib

from widthdepth.backends.base import Backend
from widthdepth.errors import WidthdepthError
from widthdepth.tasks.base import TaskFamily
from widthdepth.verifiers.base import Verifier, VerifyItem

VERIFIERS = {
    "auto": "the task family's gold-free checker where it has one (exact: search, code), else the built-in "
            "reasoner's verifier head for builtin: models (latent), else none",
    "exact": "the task family's own gold-free checker (search: plug the answer in; code: run the tests); no model tokens",
    "steps": "an exact step checker (chain): the share of written steps whose value is right; costs nothing",
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


MODULES = {"exact": "widthdepth.verifiers.exact", "steps": "widthdepth.verifiers.steps",
           "self": "widthdepth.verifiers.self_verify",
           "latent": "widthdepth.verifiers.latent", "reward": "widthdepth.verifiers.reward"}
"""Where each verifier is built: a module with ``build(name, family, backend, option, api_key)``."""


def load_verifier(name: str, family: TaskFamily, backend: Backend, option: str = "--verifier",
                  api_key: str | None = None) -> Verifier | None:
    check_verifier_name(name, option)
    if name == "auto":
        name = "exact" if family.exact_checkable else ("latent" if backend.info.latent else "none")
    if name == "none":
        return None
    module = importlib.import_module(MODULES[name.partition(":")[0]])
    return module.build(name, family, backend, option, api_key=api_key)


__all__ = ["VERIFIERS", "Verifier", "VerifyItem", "check_verifier_name", "load_verifier"]
