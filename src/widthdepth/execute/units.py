"""A run as units of work — one plan (one repeat of it) on a task's problems — and a unit as chunks of
problems that replicas can run apart (issue 19), merged back into the unit's outcome.

    for unit in units_of(families, plans, problems, repeats):
        outcome, generated, reused = run_unit(store, backend, config, unit, verifiers[unit.family.spec], progress)

Units run in this order: plans of one task share attempts (a grid holds the smaller grids, a method's
first repeat shares the grids'), so a later unit reads back what an earlier one made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from widthdepth.backends import Backend
from widthdepth.backends.base import ModelInfo
from widthdepth.config import RunConfig
from widthdepth.execute import executor_for
from widthdepth.execute.base import AdaptiveRun, MethodRun, PlanRun, Progress, Sink
from widthdepth.execute.latent import LATENT_CHUNK
from widthdepth.tasks import Problem, TaskFamily
from widthdepth.verifiers import Verifier

Outcome = PlanRun | MethodRun | AdaptiveRun


@dataclass(frozen=True)
class Unit:
    """One executor's work: a plan, one repeat of it, on problems of a task."""

    family: TaskFamily
    plan: object
    repeat: int
    problems: list[Problem]


def units_of(families: list[TaskFamily], plans: list, problems: dict[str, list[Problem]],
             repeats: Callable[[object], int]) -> list[Unit]:
    """Every unit of a run, in the order a run goes: task by task, plan by plan, repeat by repeat."""
    return [Unit(family, plan, repeat, problems[family.spec]) for family in families for plan in plans
            for repeat in range(repeats(plan))]


def run_unit(sink: Sink, backend: Backend, config: RunConfig, unit: Unit, verifier: Verifier | None,
             progress: Progress) -> tuple[Outcome, int, int]:
    """Run one unit (or chunk) through its executor: (outcome, attempts generated, attempts reused)."""
    executor = executor_for(unit.plan, backend)(sink, backend, config, unit.family, unit.plan, unit.problems,
                                                verifier, progress)
    executor.repeat = unit.repeat
    outcome = executor.execute()
    return outcome, executor.generated, executor.reused


@dataclass(frozen=True)
class Loaded:
    """All `executor_for` asks of a backend: its `ModelInfo` (a driver that does not load the model has
    it from a replica)."""

    info: ModelInfo


def split(unit: Unit, size: int, info: ModelInfo) -> list[Unit]:
    """The unit as chunks of about `size` consecutive problems whose outcomes `merge` back into the
    unit's. A latent model samples blocks of `LATENT_CHUNK` problems, so its grids and searches split
    at whole blocks only, and its other plans (which hand subsets of problems to inner grids) not at all."""
    problems = unit.problems
    if info.latent:
        kind = executor_for(unit.plan, Loaded(info)).__name__
        if kind not in ("LatentGridExecutor", "LatentSearchExecutor"):
            return [unit]
        size = max(1, -(-size // LATENT_CHUNK)) * LATENT_CHUNK
    size = max(1, size)
    return [replace(unit, problems=problems[start:start + size]) for start in range(0, len(problems), size)]


def merge(outcomes: list[Outcome]) -> Outcome:
    """The outcome of a unit from its chunks' outcomes, in chunk order."""
    first = outcomes[0]
    if isinstance(first, PlanRun):
        return replace(first, problems=[p for o in outcomes for p in o.problems],
                       chains={k: v for o in outcomes for k, v in o.chains.items()},
                       verifications={k: v for o in outcomes for k, v in o.verifications.items()})
    if isinstance(first, MethodRun):
        return replace(first, problems=[p for o in outcomes for p in o.problems],
                       outcomes=[x for o in outcomes for x in o.outcomes])
    return replace(first, decisions=[d for o in outcomes for d in o.decisions])
