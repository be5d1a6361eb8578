"""Executors, one per plan kind, found by `executor_for`: a new plan kind is one executor file and
one line here.

    executor = executor_for(plan, backend)(store, backend, config, family, plan, problems, verifier, progress)
    outcome = executor.execute()        # a PlanRun, or an AdaptiveRun for adaptive plans
"""

from __future__ import annotations

from widthdepth.backends import Backend
from widthdepth.execute.base import AdaptiveRun, Executor, NoProgress, PlanRun, Progress, RunResult, settings_json


def executor_for(plan: object, backend: Backend) -> type[Executor]:
    from widthdepth.plans.adaptive import AdaptivePlan

    if isinstance(plan, AdaptivePlan):
        from widthdepth.execute.adaptive import AdaptiveExecutor
        return AdaptiveExecutor
    if backend.info.latent:
        from widthdepth.execute.latent import LatentGridExecutor
        return LatentGridExecutor
    from widthdepth.execute.text import TextGridExecutor
    return TextGridExecutor


__all__ = ["AdaptiveRun", "Executor", "NoProgress", "PlanRun", "Progress", "RunResult", "executor_for",
           "settings_json"]
