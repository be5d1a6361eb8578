"""What every executor shares: the progress and sink protocols, what a plan's run returns, and the base class
that keys attempts, counts what it reused and verifies a round. One executor per plan kind
(`executor_for`): text grids round by round (`text.py`), latent grids in one pass (`latent.py`),
adaptive plans (`adaptive.py`). A new plan kind is one new executor file plus one line there.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from widthdepth.attempts import Attempt, Verification, attempt_key, attempt_seed
from widthdepth.backends import Backend
from widthdepth.config import RunConfig
from widthdepth.cost import AttemptCost, Cost
from widthdepth.plans import GridPlan
from widthdepth.plans.adaptive import AdaptivePlan
from widthdepth.specs import stable_hash, stable_int
from widthdepth.tasks import Problem, TaskFamily
from widthdepth.tasks.prompts import Prompt
from widthdepth.verifiers import Verifier, VerifyItem


class Progress(Protocol):
    def add_total(self, attempts: int) -> None: ...

    def advance(self, attempts: int, generated_tokens: int = 0) -> None: ...

    def describe(self, text: str) -> None: ...


class NoProgress:
    def add_total(self, attempts: int) -> None:
        pass

    def advance(self, attempts: int, generated_tokens: int = 0) -> None:
        pass

    def describe(self, text: str) -> None:
        pass


class Sink(Protocol):
    """All an executor asks of where attempts go: read back what is stored (resume by key) and write what
    it makes. `Store` is one; a replica running a chunk of problems away from the store (issue 19) will
    be another, its writes applied by the one process that writes the store."""

    def get_attempt(self, key: str) -> Attempt | None: ...

    def get_verification(self, attempt_key: str, verifier: str) -> Verification | None: ...

    def method_points(self, run_key: str | None = None) -> list[dict[str, Any]]: ...

    def put_attempt(self, attempt: Attempt) -> None: ...

    def put_verification(self, verification: Verification) -> None: ...

    def put_tree(self, attempts: list[Attempt], verifications: list[Verification]) -> None: ...

    def put_method_point(self, run_key: str, experiment: dict[str, Any], point: dict[str, Any]) -> None: ...

    def put_allocation(self, run_key: str, task: str, model: str, plan: str, predictor: str, unit: str,
                       decision: dict[str, Any]) -> None: ...


@dataclass
class PlanRun:
    """What one plan produced for one task: chains[problem_key][w] = attempts by round."""

    family: TaskFamily
    plan: GridPlan
    problems: list[Problem]
    chains: dict[str, list[list[Attempt]]]
    verifier: str | None
    verifications: dict[str, Verification] = field(default_factory=dict)


@dataclass
class RunResult:
    config: RunConfig
    model: str
    n_params: int
    shares_prompt_prefix: bool
    verifier_params: dict[str, int]
    plan_runs: list[PlanRun]
    generated: int = 0
    """Attempts generated in this call (the rest were read back from the store)."""
    reused: int = 0
    verification_failures: list[str] = field(default_factory=list)
    """Reasons of verifications that failed for good in this call (left unverified; a rerun retries)."""
    allocations: list[AdaptiveRun] = field(default_factory=list)
    methods: list[MethodRun] = field(default_factory=list)


@dataclass
class AdaptiveRun:
    """What an adaptive plan did on one task: one decision per problem."""

    task: str
    plan: str
    unit: str
    decisions: list[dict]
    """Per problem: problem_key, predicted, bin, w, d, aggregator, answer, correct, cost."""

    @property
    def accuracy(self) -> float:
        return sum(bool(d["correct"]) for d in self.decisions) / max(1, len(self.decisions))

    @property
    def mean_cost(self) -> float:
        return sum(d["cost"] for d in self.decisions) / max(1, len(self.decisions))


@dataclass(frozen=True)
class Outcome:
    """What a method (a plan that is not a grid) gave one problem: its answer and all it cost."""

    problem_key: str
    answer: str | None
    correct: bool
    cost: Cost
    """Everything the method spent on the problem (see `widthdepth.cost`), cancelled work included."""
    attempts: int
    """Attempts generated for the problem (expansions, samples), counted once."""
    detail: dict = field(default_factory=dict)
    """Method-specific facts, e.g. how many chains an early stop drew."""


@dataclass
class MethodRun:
    """What a method plan did on one task: one outcome per problem that it finished."""

    family: TaskFamily
    plan: Any
    problems: list[Problem]
    outcomes: list[Outcome]
    verifier: str | None = None
    repeat: int = 0
    """Which of the run's repeats of the plan (`RunConfig.repeats`) this is."""

    @property
    def accuracy(self) -> float:
        return sum(o.correct for o in self.outcomes) / max(1, len(self.outcomes))


def attempt_counts(a: Attempt) -> AttemptCost:
    """The raw counts `cost.cell_cost` prices (the store keeps them per attempt; exact FLOPs where the
    backend reported them)."""
    return AttemptCost(a.prompt_key, a.prompt_tokens, a.completion_tokens, a.serial_tokens, a.wall_seconds, a.flops)


def settings_json(config: RunConfig, prompt: Prompt) -> str:
    return json.dumps({"max_tokens": config.max_tokens, "temperature": config.temperature,
                       "top_p": config.top_p, "stop": list(prompt.stop)}, sort_keys=True)



class Executor(ABC):
    """Runs one plan on one task's problems against the store: attempts whose key is stored are read
    back, the rest generated and committed one by one. `made` (shared by an adaptive run's executors)
    holds the keys generated in this call: read back, they are not "reused from the store".
    Grid executors leave chains below `first_chain` alone (a caller that already has them sets it)."""

    first_chain = 0
    repeat = 0
    """Which run of a method this is (`RunConfig.repeats`): 0 samples with the run's seed and shares its
    attempts with the run's grids; r > 0 with a sampling seed of its own, on the same problems."""

    def __init__(self, store: Sink, backend: Backend, config: RunConfig, family: TaskFamily,
                 plan: GridPlan | AdaptivePlan, problems: list[Problem], verifier: Verifier | None,
                 progress: Progress, made: set[str] | None = None) -> None:
        self.store, self.backend, self.config, self.family, self.plan = store, backend, config, family, plan
        self.problems, self.verifier, self.progress = problems, verifier, progress
        self.generated = self.reused = 0
        self.made = made if made is not None else set()

    @abstractmethod
    def execute(self) -> PlanRun | AdaptiveRun:
        """Run the plan: a `PlanRun` (grid executors) or an `AdaptiveRun` (adaptive plans)."""

    @property
    def seed(self) -> int:
        """The sampling seed of this executor's attempts (the run's seed unless this is a method's repeat)."""
        return self.config.seed if self.repeat == 0 else stable_int("repeat", self.config.seed, self.repeat)

    def _count_stored(self, attempt: Attempt) -> None:
        if attempt.key not in self.made:
            self.reused += 1

    def _key(self, problem: Problem, d: int, w: int, prompt: Prompt) -> str:
        return attempt_key(self.backend.info.id, problem.key, prompt.identity(), settings_json(self.config, prompt),
                           w, d, attempt_seed(self.seed, problem.key, d, w))


    def experiment(self, verifier: str | None) -> tuple[str, dict[str, Any]]:
        """The key of a method's run and what identifies its experiment (model, task, plan, seed, sampling),
        with the repeat it is."""
        config = self.config
        sampling = {"max_tokens": config.max_tokens, "temperature": config.temperature, "top_p": config.top_p}
        experiment = {"model": self.backend.info.id, "task": self.family.spec, "plan": self.plan.spec,
                      "seed": config.seed, "sampling": sampling, "verifier": verifier}
        key = stable_hash(*experiment.values(), *([self.repeat] if self.repeat else []))  # repeat 0: keys as before
        return key, {**experiment, "repeat": self.repeat}

    def record(self, run: MethodRun) -> MethodRun:
        """Put a method's outcomes in the store, beside what identifies its experiment."""
        run_key, experiment = self.experiment(run.verifier)
        run.repeat = self.repeat
        for outcome in run.outcomes:
            self.store.put_method_point(run_key, experiment, {**asdict(outcome), "cost": outcome.cost.as_dict()})
        return run

    def _verify(self, d: int, chains: dict[str, list[list[Attempt]]], result: PlanRun) -> None:
        assert self.verifier is not None
        items: list[VerifyItem] = []
        by_key = {p.key: p for p in self.problems}
        for problem_key, problem_chains in chains.items():
            for chain in problem_chains:
                if len(chain) < d or chain[d - 1].failed:
                    continue
                attempt = chain[d - 1]
                stored = self.store.get_verification(attempt.key, self.verifier.name)
                if stored is not None:
                    result.verifications[attempt.key] = stored
                    continue
                solution = self.plan.chain_text([a.text for a in chain[:d]])
                items.append(VerifyItem(by_key[problem_key], self.family, attempt, solution))
        if items:
            self.progress.describe(f"verifying round {d} {self.plan.spec} {self.family.spec}")
        for _, verification in self.verifier.verify(items):
            self.store.put_verification(verification)
            result.verifications[verification.attempt_key] = verification
