"""The runner: turns (tasks x plans) on one model into attempts in the store.

Plans run round by round over all problems of a task, so every request of a round can go to the
backend in one batch. Each attempt is committed as soon as the backend yields it; an attempt whose
key is stored is read back instead of generated, which is how a killed run resumes and how plans
share work (round 1 of ``grid:8x2`` contains ``parallel:4``).

    result = run(RunConfig(tasks=["chain:L=2"], plans=["grid:2x2"], problems=3, out="runs/x"))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from widthdepth.backends import Backend, BackendOptions, is_latent, load_backend, resolve_model
from widthdepth.backends.base import ModelInfo
from widthdepth.config import RunConfig, save_config
from widthdepth.errors import WidthdepthError
from widthdepth.execute import AdaptiveRun, MethodRun, NoProgress, PlanRun, Progress, RunResult, settings_json
from widthdepth.execute.dispatch import dispatch
from widthdepth.execute.fit import check_loaded
from widthdepth.execute.units import Outcome, Unit, run_unit, units_of
from widthdepth.lock import folder_lock
from widthdepth.plans import GridPlan, is_method, load_plan
from widthdepth.plans.adaptive import AdaptivePlan
from widthdepth.store import Store
from widthdepth.tasks import Problem, TaskFamily, load_task
from widthdepth.verifiers import check_verifier_name, load_verifier


@dataclass
class Prepared:
    """Everything checked before any store is touched."""

    config: RunConfig
    families: list[TaskFamily]
    plans: list[GridPlan | AdaptivePlan]


def prepare(config: RunConfig) -> Prepared:
    """Validate every name, spec and file of a config; raises WidthdepthError on bad input."""
    resolve_model(config.model)
    check_verifier_name(config.verifier)
    if Path(config.out).exists() and not Path(config.out).is_dir():
        raise WidthdepthError(f"--out {config.out!r}: is a file, not a folder; choose another --out")
    families = [load_task(t) for t in config.tasks]
    plans = [load_plan(p) for p in config.plans]
    if config.repeats > 1 and not any(is_method(p) for p in config.plans):
        raise WidthdepthError(f"--repeats {config.repeats}: repeats rerun methods (early, beam, dvts, particles, refine, "
                              "deepconf) with fresh seeds; a grid's surface already averages over its chains' subsets, "
                              "so add a method --plan or drop --repeats")
    for plan in plans:
        for family in families:
            if hasattr(plan, "check_family"):
                plan.check_family(family)
        if getattr(plan, "needs_partial_verifier", False) and config.verifier == "none" and not is_latent(config.model):
            raise WidthdepthError(f"--plan {plan.spec!r}: search is guided by a verifier that scores partial "
                                  "solutions; pass --verifier steps (chain), self, or reward:URL,format=steps")
        if isinstance(plan, AdaptivePlan) and plan.needs_verifier and config.verifier == "none":
            raise WidthdepthError(f"--plan {plan.spec!r}: the policy uses verifier scores; drop --verifier none")
    return Prepared(config, families, plans)


def run(config: RunConfig | Prepared, progress: Progress | None = None, backend: Backend | None = None,
        api_key: str | None = None) -> RunResult:
    """Run every task x plan of `config` on its model, resuming from what the store already has.
    `api_key` (for servers that need one) goes to the backend only: it is never stored. With
    `config.executor` ray[:ADDRESS] (and no `backend` given), replicas on a Ray cluster generate and this
    process alone writes the store."""
    prepared = config if isinstance(config, Prepared) else prepare(config)
    config = prepared.config
    progress = progress or NoProgress()
    with folder_lock(config.out):  # one writer per folder, before any model loads: a second run stops in one line
        if backend is None and config.executor != "local":
            return _run_on_ray(prepared, progress, api_key)
        own_backend = backend is None
        if backend is None:
            progress.describe(f"loading {config.model}")
            backend = load_backend(config.model, BackendOptions(config.threads, config.context_length, api_key))
        try:
            return _run(prepared, backend, progress, api_key)
        finally:
            if own_backend:
                backend.close()


def _run(prepared: Prepared, backend: Backend, progress: Progress, api_key: str | None = None) -> RunResult:
    config = prepared.config
    verifiers = {f.spec: load_verifier(config.verifier, f, backend, api_key=api_key) for f in prepared.families}
    problems = _problems(prepared)
    check_loaded(prepared.plans, backend, verifiers, {spec: p[0].structure for spec, p in problems.items()})

    def execute(store: Store, units: list[Unit]) -> Iterator[tuple[Outcome, int, int]]:
        for unit in units:
            yield run_unit(store, backend, config, unit, verifiers[unit.family.spec], progress)

    verifier_params = {v.name: v.n_params for v in verifiers.values() if v is not None}
    result = _record(prepared, backend.info, verifier_params, problems, progress, execute)
    result.verification_failures = [r for v in verifiers.values() for r in getattr(v, "failures", [])]
    return result


def _run_on_ray(prepared: Prepared, progress: Progress, api_key: str | None) -> RunResult:
    """The run with replicas on a Ray cluster: each loads the model and checks it as `_run` does; one
    line and no store where the cluster, its resources or a replica's model fail."""
    try:
        from widthdepth.execute import ray_pool
    except ImportError as exc:
        if exc.name != "ray":
            raise
        raise WidthdepthError(f"--executor {prepared.config.executor}: Ray is not installed; pip install "
                              "'widthdepth[ray]' (make install does), or use --executor local") from None
    config, problems = prepared.config, _problems(prepared)
    with ray_pool.cluster(config.executor):
        progress.describe(f"loading {config.model} on the replicas")
        pool = ray_pool.start(config, prepared.families, api_key)
        try:
            info, verifier_params = pool.check(prepared.plans, {spec: p[0].structure for spec, p in problems.items()})
            result = _record(prepared, info, verifier_params, problems, progress,
                             lambda store, units: dispatch(store, units, pool, config.chunk, info, progress))
            result.verification_failures = pool.failures
            return result
        finally:
            pool.close()


def _problems(prepared: Prepared) -> dict[str, list[Problem]]:
    config = prepared.config
    return {f.spec: f.problems(config.problems, config.seed) for f in prepared.families}


Execute = Callable[[Store, list[Unit]], Iterable[tuple[Outcome, int, int]]]


def _record(prepared: Prepared, info: ModelInfo, verifier_params: dict[str, int], problems: dict[str, list[Problem]],
            progress: Progress, execute: Execute) -> RunResult:
    """The run's record in the store around `execute` (its units, in order, each's outcome)."""
    config = prepared.config
    store = Store.open(config.out)  # only now: bad input above never touches a store
    try:
        save_config(config, config.out)
        store.put_model(info)
        run_id = store.start_run(config.model_dump(), info.id, [f.spec for f in prepared.families],
                                 [p.spec for p in prepared.plans])
        for family in prepared.families:
            store.put_problems(problems[family.spec])
            progress.add_total(len(problems[family.spec]) * sum(p.attempts_per_problem * _runs(p, config)
                                                                for p in prepared.plans))
        result = RunResult(config, info.id, info.n_params, info.shares_prompt_prefix, verifier_params, [])
        units = units_of(prepared.families, prepared.plans, problems, lambda plan: _runs(plan, config))
        for outcome, generated, reused in execute(store, units):
            outcomes = {AdaptiveRun: result.allocations, MethodRun: result.methods}
            outcomes.get(type(outcome), result.plan_runs).append(outcome)
            result.generated += generated
            result.reused += reused
        store.finish_run(run_id)
        return result
    finally:
        store.close()


def _runs(plan: object, config: RunConfig) -> int:
    """How many times a plan runs: a method `config.repeats` times, a grid or a policy once."""
    return config.repeats if is_method(getattr(plan, "spec", "")) else 1


__all__ = ["AdaptiveRun", "PlanRun", "Progress", "RunResult", "prepare", "run", "settings_json"]


