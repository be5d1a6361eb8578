"""Read a run's traces back from the store: the analysis never calls a backend.

An experiment is one (model, task, plan, seed, sampling settings) found in the store's run log.
Its traces are rebuilt from the attempts alone: round 1 of chain w is the attempt with the seed the
runner gives that chain, and round d+1 is the child of round d with the plan's mode.

    for trace in load_grid_traces(Store.open("runs/demo")):
        print(trace.task, trace.plan.spec, len(trace.problems))
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from widthdepth.analysis.arrays import SAMPLING_KEYS, TraceArrays, from_problems, read_arrays, sampling_of
from widthdepth.attempts import Attempt, Verification, attempt_seed
from widthdepth.plans import GridPlan, is_grid, load_plan
from widthdepth.store import Store


@dataclass(frozen=True)
class ProblemTrace:
    key: str
    index: int
    gold: frozenset[str]
    structure: dict[str, Any]
    chains: list[list[Attempt]]
    """chains[w] = the chain's attempts by round (shorter where a round failed or is missing)."""


@dataclass
class GridTrace:
    """One grid experiment. The surface reads `arrays`; `problems` (every attempt as an object) and
    `verifications` are read from the store only when something asks for them (adaptive allocation's
    records, served traffic), so a report of a million attempts never holds a million objects."""

    model: str
    task: str
    plan: GridPlan
    seed: int
    sampling: dict[str, Any]
    loaded_problems: list[ProblemTrace] | None
    """The problems with their attempts, or None: read by `load` on first use."""
    n_params: int
    shares_prompt_prefix: bool
    latent: bool = False
    """A built-in latent reasoner: compute is best compared in FLOPs (its "tokens" are iterations)."""
    verifier: str | None = None
    verifier_params: int = 0
    loaded_verifications: dict[str, Verification] | None = None
    expected_problems: int = 0
    """The task's problems in the store: the run set out to give each one the whole grid."""
    load: Callable[[], tuple[list[ProblemTrace], dict[str, Verification]]] | None = field(default=None, repr=False)
    stored_arrays: TraceArrays | None = field(default=None, repr=False)

    @property
    def problems(self) -> list[ProblemTrace]:
        if self.loaded_problems is None:
            self._load()
        return self.loaded_problems or []

    @problems.setter
    def problems(self, problems: list[ProblemTrace]) -> None:
        self.loaded_problems, self.stored_arrays = problems, None

    @property
    def verifications(self) -> dict[str, Verification]:
        """The verifier's verifications of the trace's attempts, by attempt key."""
        if self.loaded_verifications is None and self.loaded_problems is None:
            self._load()
        return self.loaded_verifications or {}

    @verifications.setter
    def verifications(self, verifications: dict[str, Verification]) -> None:
        self.loaded_verifications, self.stored_arrays = verifications, None

    def _load(self) -> None:
        problems, verifications = self.load() if self.load else ([], {})
        self.loaded_problems = problems
        if self.loaded_verifications is None:
            self.loaded_verifications = verifications

    @property
    def arrays(self) -> TraceArrays:
        """The trace as arrays (problems × chains × rounds): read from the store without attempt objects
        where the trace came from one, else made from `problems`."""
        if self.stored_arrays is None:
            self.stored_arrays = from_problems(self.problems, self.verifications, self.plan.chains, self.plan.rounds)
        return self.stored_arrays

    @property
    def problem_count(self) -> int:
        return len(self.arrays.keys)

    @property
    def label(self) -> str:
        return f"{self.task} {self.plan.spec}"

    def partial(self) -> str:
        """One sentence saying what is missing ("" when every problem has the whole grid): a run killed
        part-way, or one whose attempts failed, reports what it has and says so."""
        n, depth = self.plan.chains, self.plan.rounds
        arrays = self.arrays
        whole = int(arrays.reached[:, :, depth - 1].all(axis=1).sum()) if arrays.keys else 0
        expected = max(self.expected_problems, len(arrays.keys))
        if whole == expected:
            return ""
        stored = int(arrays.present.sum())
        failed = int((arrays.present & arrays.failed).sum())
        return (f"partial: {self.label} has the whole {n}×{depth} grid for {whole} of {expected} problems "
                f"({stored} of {expected * n * depth} attempts stored, {failed} failed); each cell uses the problems "
                "that reached it; rerun the same `widthdepth run` command to complete it")


@dataclass(frozen=True)
class Scope:
    """What one command ran: its report and verdict show exactly that, though the folder's store may
    hold more (other models, settings, problems). `run` and `study` make one from what they ran."""

    model: str
    """The model's id in the store (settings that change samples included)."""
    tasks: frozenset[str]
    plans: frozenset[str]
    seed: int
    sampling: tuple[tuple[str, Any], ...]
    problem_keys: frozenset[str]

    def holds(self, model: str, task: str, plan: str, seed: int, sampling: dict[str, Any]) -> bool:
        return (model == self.model and task in self.tasks and plan in self.plans and seed == self.seed
                and tuple(sorted(sampling.items())) == self.sampling)


def _experiments(store: Store) -> list[tuple[str, str, str, int, dict[str, Any]]]:
    """Distinct (model, task, plan, seed, sampling) over the run log, in first-run order. The verifier
    is not part of an experiment: a rerun with another `--verifier` scores the same attempts, and
    the trace carries one verifier's scores (`attach_verifications`)."""
    seen: dict[tuple, None] = {}
    for run in store.runs():
        if not run.get("model"):
            continue
        config = run["config"]
        sampling = {k: config.get(k) for k in SAMPLING_KEYS}
        for task in run["task_specs"]:
            if task == "served":  # `widthdepth serve`'s requests: no gold answers, a plan of their own each
                continue
            for plan in filter(is_grid, run["plan_specs"]):  # an adaptive run's problems differ in shape
                key = (run["model"], task, plan, config.get("seed", 0), json.dumps(sampling, sort_keys=True))
                seen.setdefault(key, None)
    return [(m, t, p, s, json.loads(sm)) for (m, t, p, s, sm) in seen]


def open_traces(folder: str | Path, scope: Scope | None = None) -> list[GridTrace]:
    """The grid traces of a run folder's store (one line, exit 2, where there is no store)."""
    store = Store.open(folder, create=False)
    try:
        return load_grid_traces(store, scope)
    finally:
        store.close()


def load_grid_traces(store: Store, scope: Scope | None = None) -> list[GridTrace]:
    """Every grid experiment in the store, or only what `scope` ran (its problems only): read as arrays,
    a problem at a time; attempt objects are read only if something asks for `problems`."""
    names, settings = store.names(), store.settings_json()
    traces = (read_trace(store, experiment, scope, names, settings) for experiment in experiments_in(store, scope))
    return [trace for trace in traces if trace is not None]


Experiment = tuple[str, str, str, int, dict[str, Any]]
"""(model, task, plan spec, seed, sampling settings)"""


def experiments_in(store: Store, scope: Scope | None = None) -> list[Experiment]:
    """The grid experiments in the store (what `scope` ran, if given), in first-run order."""
    return [e for e in _experiments(store) if scope is None or scope.holds(*e)]


def read_trace(store: Store, experiment: Experiment, scope: Scope | None = None, names: dict[int, str] | None = None,
               settings: dict[int, str] | None = None) -> GridTrace | None:
    """One experiment's trace (None where none of its problems was stored); `names`, `settings`: the
    store's (`Store.names`, `Store.settings_json`), read once for many traces."""
    model, task, plan_spec, seed, sampling = experiment
    plan = load_plan(plan_spec)
    rows = [r for r in store.problems(task) if scope is None or r["key"] in scope.problem_keys]
    later = store.grid_rows(model, task, modes=(plan.mode, "latent"),  # the rounds a grid chain links
                            chain_seed=partial(attempt_seed, seed, w=0))
    stored = read_arrays(later, rows, plan.mode, plan.chains, plan.rounds, seed, sampling,
                         store.names() if names is None else names,
                         store.settings_json() if settings is None else settings)
    if not stored.arrays.keys:
        return None
    info = store.model_info(model)
    keys = frozenset(stored.arrays.keys)
    trace = GridTrace(model, task, plan, seed, sampling, None, info.n_params if info else 0,
                      info.shares_prompt_prefix if info else False, latent=bool(info and info.latent),
                      verifier=stored.verifier, expected_problems=len(rows), stored_arrays=stored.arrays,
                      load=partial(_objects, store.path.parent, model, task, plan, seed, sampling, keys))
    trace.verifier_params = _verifier_params(store, stored.verifier)
    return trace


def _objects(folder: Path, model: str, task: str, plan: GridPlan, seed: int, sampling: dict[str, Any],
             keys: frozenset[str]) -> tuple[list[ProblemTrace], dict[str, Verification]]:
    """A trace's problems as attempt objects, and its verifier's verifications, read from the store."""
    store = Store.open(folder, create=False)
    try:
        trace = _build(store, model, task, plan, seed, sampling, list(store.attempts(model=model, task=task)), keys)
        return trace.problems, trace.verifications
    finally:
        store.close()


def _verifier_params(store: Store, verifier: str | None) -> int:
    """The parameters of the model that verified (self-verification), else 0."""
    if verifier is None or not verifier.startswith("self:"):
        return 0
    info = store.model_info(verifier[len("self:"):])
    return info.n_params if info else 0


def other_experiments(folder: str | Path, scope: Scope) -> str:
    """One line on what else the folder holds ("" when nothing): a command reports only what it ran."""
    store = Store.open(folder, create=False)
    try:
        experiments = _experiments(store)
    finally:
        store.close()
    models = sorted({m for m, *_ in experiments if m != scope.model})
    settings = sum(1 for m, t, p, s, sm in experiments if m == scope.model and not scope.holds(m, t, p, s, sm))
    if not models and not settings:
        return ""
    held = ", ".join(filter(None, [f"other models ({', '.join(models)})" if models else "",
                                   f"{settings} experiments of this model with other tasks, plans or settings"
                                   if settings else ""]))
    return (f"note: {folder} also holds {held}; this command's tables and report show only what it ran "
            "(`widthdepth report` on the folder shows everything); use --out for a folder of its own")


def _build(store: Store, model: str, task: str, plan: GridPlan, seed: int, sampling: dict[str, Any],
           attempts: list[Attempt], problem_keys: frozenset[str] | None = None) -> GridTrace:
    matching = [a for a in attempts if a.task == task and sampling_of(a.settings) == sampling]
    children: dict[str, list[Attempt]] = defaultdict(list)
    first: dict[tuple[str, int], Attempt] = {}
    for a in matching:
        if a.d == 1 and a.seed == attempt_seed(seed, a.problem_key, 1, a.w):
            first[(a.problem_key, a.w)] = a
        elif a.parent_key is not None and a.mode in (plan.mode, "latent"):  # latent: one more iteration
            children[a.parent_key].append(a)
    problems = []
    rows = [r for r in store.problems(task) if problem_keys is None or r["key"] in problem_keys]
    for row in rows:
        chains = []
        for w in range(plan.chains):
            chain: list[Attempt] = []
            current = first.get((row["key"], w))
            while current is not None and len(chain) < plan.rounds:
                chain.append(current)
                d = current.d + 1
                current = next((c for c in children.get(current.key, ())
                                if c.w == w and c.seed == attempt_seed(seed, row["key"], d, w)), None)
            chains.append(chain)
        if any(chains):
            problems.append(ProblemTrace(row["key"], row["idx"], frozenset(row["gold"]), row["structure"], chains))
    info = store.model_info(model)
    trace = GridTrace(model, task, plan, seed, sampling, problems, info.n_params if info else 0,
                      info.shares_prompt_prefix if info else False, latent=bool(info and info.latent),
                      expected_problems=len(rows))
    attach_verifications(store, trace)
    return trace


def attach_verifications(store: Store, trace: GridTrace) -> None:
    keys = [a.key for p in trace.problems for chain in p.chains for a in chain]
    if not keys:
        return
    found: dict[str, dict[str, Verification]] = defaultdict(dict)
    for v in store.verifications_of(keys):
        found[v.verifier][v.attempt_key] = v
    if not found:
        return
    # the verifier that scored the most of this trace's attempts; between equals, the latest to score
    name = max(found, key=lambda n: (len(found[n]), max(v.created_at for v in found[n].values()), n))
    trace.verifier, trace.verifications = name, found[name]
    trace.verifier_params = _verifier_params(store, name)
