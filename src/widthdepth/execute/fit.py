"""What a loaded model and its verifiers must be able to do for a run's plans and tasks, checked where
the model is loaded (this process, or a replica on Ray) before any store is touched.

    check_loaded(plans, backend, verifiers, {spec: problems[0].structure for spec, problems in ...})
"""

from __future__ import annotations

from typing import Any, cast

from widthdepth.backends import Backend
from widthdepth.backends.base import LatentBackend, ModelInfo
from widthdepth.errors import WidthdepthError
from widthdepth.plans.adaptive import AdaptivePlan
from widthdepth.verifiers import Verifier


def check_loaded(plans: list, backend: Backend, verifiers: dict[str, Verifier | None],
                 structures: dict[str, Any]) -> None:
    """`check_fit`, and a latent model's check of each task's structure (one problem's, by task spec)."""
    check_fit(plans, backend.info, verifiers)
    if backend.info.latent:
        for structure in structures.values():
            cast(LatentBackend, backend).check_task(structure)


def check_fit(plans: list, info: ModelInfo, verifiers: dict[str, Verifier | None]) -> None:
    """What the loaded model and the verifiers must be able to do for these plans; raises WidthdepthError
    (before any store is touched)."""
    if not info.supports_raw_continuation:
        extend = [p.spec for p in plans if p.mode == "extend" and p.rounds > 1]
        if extend:
            raise WidthdepthError(f"--plan {extend[0]!r}: mode=extend continues raw text, which "
                                  f"{info.id} cannot do; use mode=revise")
    for plan in plans:
        if hasattr(plan, "check_backend"):
            plan.check_backend(info)  # a method the model cannot run: one line before the store
    for plan in plans:
        for spec, verifier in verifiers.items():
            if (getattr(plan, "needs_partial_verifier", False) and not info.latent
                    and not getattr(verifier, "scores_partial", False)):
                raise WidthdepthError(
                    f"--plan {plan.spec!r}: search needs a verifier that scores partial solutions, and "
                    f"{getattr(verifier, 'name', 'none')} on {spec} scores only finished ones; use --verifier steps "
                    "(chain), self, or a step-wise process reward model, reward:URL,format=steps")
            if isinstance(plan, AdaptivePlan) and plan.needs_verifier and verifier is None:
                raise WidthdepthError(
                    f"--plan {plan.spec!r}: the policy needs verifier scores (fitted with "
                    f"{plan.policy.verifier or 'a verifier'}), and {spec} runs without a verifier; pass --verifier, "
                    "or fit a policy with --predictor agreement on a run without one")
