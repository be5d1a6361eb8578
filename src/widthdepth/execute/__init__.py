"""Executors, one per plan kind, found by `executor_for`: a new plan kind is one executor file and
one line here.

    executor = executor_for(plan, backend)(store, backend, config, family, plan, problems, verifier, progress)
    outcome = executor.execute()        # a PlanRun (grids), AdaptiveRun (adaptive) or MethodRun (methods)
"""

from __future__ import annotations

import importlib

from widthdepth.backends import Backend
from widthdepth.execute.base import (AdaptiveRun, Executor, MethodRun, NoProgress, Outcome, PlanRun, Progress, RunResult,
                                    settings_json)


EXECUTORS = {
    "AdaptivePlan": "adaptive.AdaptiveExecutor",
    "EarlyPlan": "early.EarlyExecutor",
    "beam": "beam.BeamExecutor",
    "dvts": "beam.BeamExecutor",
    "particles": "particles.ParticleExecutor",
    "RefinePlan": "refine.RefineExecutor",
    "DeepConfPlan": "deepconf.DeepConfExecutor",
}
"""Plan class (or a search plan's kind) -> executor ("module.Class" under widthdepth.execute); grid plans
go by the backend."""


def executor_for(plan: object, backend: Backend) -> type[Executor]:
    if backend.info.latent and getattr(plan, "kind", "") in ("beam", "dvts", "particles"):
        return getattr(importlib.import_module("widthdepth.execute.latent_search"), "LatentSearchExecutor")
    where = EXECUTORS.get(getattr(plan, "kind", type(plan).__name__)) or (
        "latent.LatentGridExecutor" if backend.info.latent else "text.TextGridExecutor")
    module, _, name = where.rpartition(".")
    return getattr(importlib.import_module(f"widthdepth.execute.{module}"), name)


__all__ = ["AdaptiveRun", "Executor", "MethodRun", "NoProgress", "Outcome", "PlanRun", "Progress", "RunResult", "executor_for",
           "settings_json"]
