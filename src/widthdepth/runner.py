"""The runner: turns (tasks x plans) on one model into attempts in the store.

Plans run round by round over all problems of a task, so every request of a round can go to the
backend in one batch. Each attempt is committed as soon as the backend yields it; an attempt whose
key is stored is read back instead of generated, which is how a killed run resumes and how plans
share work (round 1 of ``grid:8x2`` contains ``parallel:4``).

    result = run(RunConfig(tasks=["chain:L=2"], plans=["grid:2x2"], problems=3, out="runs/x"))
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from widthdepth.backends import Backend, BackendOptions, Completion, GenerationRequest, load_backend, resolve_model
from widthdepth.config import RunConfig, save_config
from widthdepth.errors import WidthdepthError
from widthdepth.lock import folder_lock
from widthdepth.plans import GridPlan, load_plan
from widthdepth.plans.adaptive import AdaptivePlan
from widthdepth.specs import stable_hash
from widthdepth.store import Store, now
from widthdepth.tasks import Problem, TaskFamily, load_task
from widthdepth.tasks.prompts import Prompt
from widthdepth.trace import Attempt, Verification, attempt_key, attempt_seed
from widthdepth.verifiers import Verifier, VerifyItem, check_verifier_name, load_verifier


LATENT_CHUNK = 64
"""Problems per batch for latent reasoners (fixed, so a resumed run recomputes the same batches)."""


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


def settings_json(config: RunConfig, prompt: Prompt) -> str:
    return json.dumps({"max_tokens": config.max_tokens, "temperature": config.temperature,
                       "top_p": config.top_p, "stop": list(prompt.stop)}, sort_keys=True)


@dataclass
class _Pending:
    problem: Problem
    w0: int
    d: int
    prompt: Prompt
    parent: Attempt | None
    n: int


class _PlanExecutor:
    def __init__(self, store: Store, backend: Backend, config: RunConfig, family: TaskFamily,
                 plan: GridPlan, problems: list[Problem], verifier: Verifier | None, progress: Progress,
                 made: set[str] | None = None) -> None:
        self.store, self.backend, self.config, self.family, self.plan = store, backend, config, family, plan
        self.problems, self.verifier, self.progress = problems, verifier, progress
        self.style = backend.info.prompt_style
        self.generated = self.reused = 0
        self.made = made if made is not None else set()
        """Keys of the attempts generated in this call (shared by an adaptive run's executors): read
        back, they are not "reused from the store"."""

    def _count_stored(self, attempt: Attempt) -> None:
        if attempt.key not in self.made:
            self.reused += 1

    def execute(self) -> PlanRun:
        chains: dict[str, list[list[Attempt]]] = {p.key: [[] for _ in range(self.plan.chains)] for p in self.problems}
        result = PlanRun(self.family, self.plan, self.problems, chains, self.verifier.name if self.verifier else None)
        if self.backend.info.latent:
            return self._execute_latent(result)
        first_raw: dict[str, str] = {}
        for d in range(1, self.plan.rounds + 1):
            self.progress.describe(f"round {d}/{self.plan.rounds} {self.plan.spec} {self.family.spec}")
            pending: list[_Pending] = []
            for problem in self.problems:
                pending += self._plan_round(problem, d, chains[problem.key], first_raw)
            self._generate(pending, chains)
            if self.verifier is not None:
                self._verify(d, chains, result)
        return result

    def _key(self, problem: Problem, d: int, w: int, prompt: Prompt) -> str:
        return attempt_key(self.backend.info.id, problem.key, prompt.identity(), settings_json(self.config, prompt),
                           w, d, attempt_seed(self.config.seed, problem.key, d, w))

    def _lookup(self, problem: Problem, d: int, w: int, prompt: Prompt) -> Attempt | None:
        stored = self.store.get_attempt(self._key(problem, d, w, prompt))
        return stored if stored is not None and not stored.failed else None

    def _plan_round(self, problem: Problem, d: int, chains: list[list[Attempt]],
                    first_raw: dict[str, str]) -> list[_Pending]:
        pending: list[_Pending] = []
        if d == 1:
            prompt = self.plan.first_prompt(self.family, problem, self.style)
            if self.plan.mode == "extend":
                first_raw[problem.key] = prompt.text if prompt.text is not None else \
                    self.backend.render_chat(prompt.messages or ())
            missing = []
            for w in range(self.plan.chains):
                stored = self._lookup(problem, 1, w, prompt)
                if stored is not None:
                    chains[w].append(stored)
                    self._count_stored(stored)
                    self.progress.advance(1)
                else:
                    missing.append(w)
            for w0, n in _runs(missing):  # one request per run of consecutive chains: seeds w0..w0+n-1
                pending.append(_Pending(problem, w0, 1, prompt, None, n))
            return pending
        for w, chain in enumerate(chains):
            if len(chain) != d - 1 or chain[-1].failed:
                self.progress.advance(1)  # a broken chain cannot go on; a rerun retries it
                continue
            prompt = self.plan.next_prompt(self.family, problem, self.style, first_raw.get(problem.key, ""),
                                           [a.text for a in chain])
            stored = self._lookup(problem, d, w, prompt)
            if stored is not None:
                chain.append(stored)
                self._count_stored(stored)
                self.progress.advance(1)
            else:
                pending.append(_Pending(problem, w, d, prompt, chain[-1], 1))
        return pending

    def _generate(self, pending: list[_Pending], chains: dict[str, list[list[Attempt]]]) -> None:
        if not pending:
            return
        requests = [
            GenerationRequest(prompt=p.prompt.text, messages=p.prompt.messages, n=p.n, max_tokens=self.config.max_tokens,
                              temperature=self.config.temperature, top_p=self.config.top_p, stop=p.prompt.stop,
                              seed=attempt_seed(self.config.seed, p.problem.key, p.d, p.w0))
            for p in pending]
        for sample in self.backend.generate(requests):
            item = pending[sample.request_index]
            attempt = self._attempt(item, item.w0 + sample.sample_index, sample.completion)
            self.store.put_attempt(attempt)
            chains[item.problem.key][attempt.w].append(attempt)
            self.generated += 1
            self.made.add(attempt.key)
            self.progress.advance(1, sample.completion.completion_tokens)

    def _attempt(self, item: _Pending, w: int, completion: Completion) -> Attempt:
        problem, parent, prompt = item.problem, item.parent, item.prompt
        settings = settings_json(self.config, prompt)
        seed = attempt_seed(self.config.seed, problem.key, item.d, w)
        failed = completion.finish_reason == "error"
        answer = None if failed else self.family.parse(completion.text, problem)
        final = answer if answer is not None or parent is None else parent.final_answer
        return Attempt(
            key=self._key(problem, item.d, w, prompt),
            model=self.backend.info.id, task=self.family.spec, problem_key=problem.key, w=w, d=item.d,
            mode="" if item.d == 1 else self.plan.mode, parent_key=parent.key if parent else None, seed=seed,
            prompt=prompt.identity(), prompt_key=stable_hash(prompt.identity()), settings=settings,
            text=completion.text, answer=answer, final_answer=None if failed else final,
            correct=None if failed else self.family.check(problem, final),
            finish_reason=completion.finish_reason, status="failed" if failed else "ok", error=completion.error,
            prompt_tokens=completion.prompt_tokens, completion_tokens=completion.completion_tokens,
            serial_tokens=(parent.serial_tokens if parent else 0) + completion.completion_tokens,
            wall_seconds=completion.seconds, created_at=now(), confidence=completion.mean_logprob)

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


    # -- latent reasoners: the whole W x D grid of a chunk of problems in one pass -----------------
    def _execute_latent(self, result: PlanRun) -> PlanRun:
        from widthdepth.verifiers.latent import LatentVerifier

        latent_verifier = self.verifier if isinstance(self.verifier, LatentVerifier) else None
        n, depth = self.plan.chains, self.plan.rounds
        self.progress.describe(f"{self.plan.spec} ({n} trajectories x {depth} iterations) {self.family.spec}")
        # Fixed chunks in problem order: a resumed run recomputes exactly the batches it lost.
        for start in range(0, len(self.problems), LATENT_CHUNK):
            chunk = self.problems[start:start + LATENT_CHUNK]
            plan = {(p.key, w, d): self._latent_key(p, w, d) for p in chunk for w in range(n) for d in range(1, depth + 1)}
            stored = {k: self.store.get_attempt(key) for k, key in plan.items()}
            complete = all(a is not None and not a.failed for a in stored.values()) and (
                latent_verifier is None or all(self.store.get_verification(a.key, latent_verifier.name)
                                               for a in stored.values() if a is not None))
            grid = None if complete else self._sample_latent(chunk)
            for i, problem in enumerate(chunk):
                for w in range(n):
                    parent = None
                    for d in range(1, depth + 1):
                        attempt = stored[(problem.key, w, d)]
                        if attempt is None or attempt.failed:
                            assert grid is not None
                            attempt = self._latent_attempt(problem, w, d, grid[0][i][w][d - 1], grid[1], parent)
                            self.store.put_attempt(attempt)
                            self.generated += 1
                            self.made.add(attempt.key)
                        else:
                            self._count_stored(attempt)
                        if latent_verifier is not None and grid is not None:
                            latent_verifier.record(attempt.key, grid[0][i][w][d - 1].score)
                        result.chains[problem.key][w].append(attempt)
                        parent = attempt
                self.progress.advance(n * depth, n * depth)
            if self.verifier is not None:
                for d in range(1, depth + 1):
                    self._verify(d, {p.key: result.chains[p.key] for p in chunk}, result)
        return result

    def _latent_key(self, problem: Problem, w: int, d: int) -> str:
        return self._key(problem, d, w, Prompt(text=problem.question))

    def _sample_latent(self, chunk: list[Problem]) -> tuple[list, float]:
        seeds = [[attempt_seed(self.config.seed, p.key, 1, w) for w in range(self.plan.chains)] for p in chunk]
        start = time.perf_counter()
        grid = self.backend.sample_grid([p.structure for p in chunk], self.plan.chains, self.plan.rounds, seeds)
        per_attempt = (time.perf_counter() - start) / (len(chunk) * self.plan.chains * self.plan.rounds)
        return grid, per_attempt

    def _latent_attempt(self, problem: Problem, w: int, d: int, sampled, seconds: float,  # noqa: ANN001
                        parent: Attempt | None) -> Attempt:
        prompt = Prompt(text=problem.question)
        settings = settings_json(self.config, prompt)
        answer = sampled.answer or None
        return Attempt(
            key=self._latent_key(problem, w, d), model=self.backend.info.id, task=self.family.spec,
            problem_key=problem.key, w=w, d=d, mode="" if d == 1 else "latent",
            parent_key=parent.key if parent else None, seed=attempt_seed(self.config.seed, problem.key, d, w),
            prompt=prompt.identity(), prompt_key=stable_hash(prompt.identity()), settings=settings,
            text=sampled.text, answer=answer, final_answer=answer, correct=self.family.check(problem, answer),
            finish_reason="stop", status="ok", error=None, prompt_tokens=len(problem.question.split()),
            completion_tokens=1, serial_tokens=d, wall_seconds=seconds, created_at=now(), flops=float(sampled.flops),
            confidence=round(float(sampled.log_probability), 6))


class _AdaptiveExecutor:
    """The probe for every problem, then each problem's plan, grouped so that problems with the same
    plan go to the backend together; the decisions go to the store's allocations table."""

    def __init__(self, store: Store, backend: Backend, config: RunConfig, family: TaskFamily, plan: AdaptivePlan,
                 problems: list[Problem], verifier: Verifier | None, progress: Progress) -> None:
        self.store, self.backend, self.config, self.family, self.plan = store, backend, config, family, plan
        self.problems, self.verifier, self.progress = problems, verifier, progress
        self.generated = self.reused = 0
        self.made: set[str] = set()

    def _grid(self, chains: int, rounds: int, problems: list[Problem]) -> PlanRun:
        executor = _PlanExecutor(self.store, self.backend, self.config, self.family,
                                 GridPlan(chains, rounds, self.plan.mode), problems, self.verifier, self.progress,
                                 self.made)
        result = executor.execute()
        self.generated += executor.generated
        self.reused += executor.reused
        return result

    def execute(self) -> AdaptiveRun:
        from widthdepth.allocation import Pricing, aggregate, plan_cost, predictor_value, price_chains

        policy, level = self.plan.policy, self.plan.policy.level_for(self.plan.budget)
        probe = self._grid(policy.probe, 1, self.problems)
        groups: dict[tuple[int, int, str], list[Problem]] = {}
        predicted: dict[str, tuple[float, int]] = {}
        for problem in self.problems:
            head = [chain[0] for chain in probe.chains[problem.key] if chain and not chain[0].failed]
            if len(head) < policy.probe:
                continue  # a probe attempt failed for good: the problem is left for a rerun
            checked = [probe.verifications.get(a.key) for a in head]
            value = predictor_value(policy.predictor, [a.final_answer for a in head], [a.confidence for a in head],
                                    [v.score if v else None for v in checked])
            if math.isnan(value):
                raise WidthdepthError(f"--plan {self.plan.spec!r}: the policy predicts from {policy.predictor}, "
                                      f"which {self.backend.info.id} does not report; fit a policy with "
                                      "--predictor agreement")
            b = policy.bin_of(value)
            predicted[problem.key] = (value, b)
            groups.setdefault(level.plans[b], []).append(problem)
        pricing = Pricing(self.backend.info.n_params, self.backend.info.shares_prompt_prefix,
                          self.verifier.n_params if self.verifier is not None else 0)
        run_key = stable_hash(self.backend.info.id, self.family.spec, self.plan.spec, self.config.seed,
                              self.config.max_tokens, self.config.temperature, self.config.top_p)
        decisions = []
        for (w, d, aggregator), members in sorted(groups.items()):
            self.progress.add_total(len(members) * w * d)
            grid = self._grid(w, d, members)
            verifications = {**probe.verifications, **grid.verifications}
            for problem in members:
                chains = [c for c in grid.chains[problem.key] if len(c) == d and not any(a.failed for a in c)]
                if len(chains) < w:
                    continue  # an attempt failed for good: left for a rerun, not scored
                leftover = [c[:1] for c in probe.chains[problem.key][w:policy.probe]]
                priced, shared = price_chains(pricing, chains + leftover, verifications, policy.unit)
                final = [c[-1] for c in chains]
                scores = [verifications[a.key].score if a.key in verifications else None for a in final]
                answer = aggregate([a.final_answer for a in final], scores, aggregator)
                value, b = predicted[problem.key]
                decision = {"problem_key": problem.key, "predicted": value, "bin": b, "w": w, "d": d,
                            "aggregator": aggregator, "answer": answer,
                            "correct": bool(self.family.check(problem, answer)),
                            "cost": plan_cost(priced, shared, policy.probe, w, d, aggregator, policy.unit,
                                              probe_verified=policy.predictor == "verifier")}
                self.store.put_allocation(run_key, self.family.spec, self.backend.info.id, self.plan.spec,
                                          policy.predictor, policy.unit, decision)
                decisions.append(decision)
        return AdaptiveRun(self.family.spec, self.plan.spec, policy.unit, decisions)


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """[0, 1, 2, 5, 6] -> [(0, 3), (5, 2)]: runs of consecutive indices as (start, length)."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and runs[-1][0] + runs[-1][1] == i:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((i, 1))
    return runs


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
    for plan in plans:
        if isinstance(plan, AdaptivePlan) and plan.needs_verifier and config.verifier == "none":
            raise WidthdepthError(f"--plan {plan.spec!r}: the policy uses verifier scores; drop --verifier none")
    return Prepared(config, families, plans)


def run(config: RunConfig | Prepared, progress: Progress | None = None, backend: Backend | None = None,
        api_key: str | None = None) -> RunResult:
    """Run every task x plan of `config` on its model, resuming from what the store already has.
    `api_key` (for servers that need one) goes to the backend only: it is never stored."""
    prepared = config if isinstance(config, Prepared) else prepare(config)
    config = prepared.config
    progress = progress or NoProgress()
    with folder_lock(config.out):  # one writer per folder, before any model loads: a second run stops in one line
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
    if not backend.info.supports_raw_continuation:
        extend = [p.spec for p in prepared.plans if p.mode == "extend" and p.rounds > 1]
        if extend:
            raise WidthdepthError(f"--plan {extend[0]!r}: mode=extend continues raw text, which "
                                  f"{backend.info.id} cannot do; use mode=revise")
    verifiers = {f.spec: load_verifier(config.verifier, f, backend, api_key=api_key) for f in prepared.families}
    for plan in prepared.plans:
        for spec, verifier in verifiers.items():
            if isinstance(plan, AdaptivePlan) and plan.needs_verifier and verifier is None:
                raise WidthdepthError(
                    f"--plan {plan.spec!r}: the policy needs verifier scores (fitted with "
                    f"{plan.policy.verifier or 'a verifier'}), and {spec} runs without a verifier; pass --verifier, "
                    "or fit a policy with --predictor agreement on a run without one")
    problems = {f.spec: f.problems(config.problems, config.seed) for f in prepared.families}
    if backend.info.latent:
        for family in prepared.families:
            backend.check_task(problems[family.spec][0].structure)  # type: ignore[attr-defined]
    store = Store.open(config.out)  # only now: bad input above never touches a store
    try:
        save_config(config, config.out)
        store.put_model(backend.info)
        run_id = store.start_run(config.model_dump(), backend.info.id, [f.spec for f in prepared.families],
                                 [p.spec for p in prepared.plans])
        for family in prepared.families:
            store.put_problems(problems[family.spec])
            progress.add_total(len(problems[family.spec]) * sum(p.attempts_per_problem for p in prepared.plans))
        result = RunResult(config, backend.info.id, backend.info.n_params, backend.info.shares_prompt_prefix,
                           {v.name: v.n_params for v in verifiers.values() if v is not None}, [])
        for family in prepared.families:
            for plan in prepared.plans:
                if isinstance(plan, AdaptivePlan):
                    adaptive = _AdaptiveExecutor(store, backend, config, family, plan, problems[family.spec],
                                                 verifiers[family.spec], progress)
                    result.allocations.append(adaptive.execute())
                    result.generated += adaptive.generated
                    result.reused += adaptive.reused
                    continue
                executor = _PlanExecutor(store, backend, config, family, plan, problems[family.spec],
                                         verifiers[family.spec], progress)
                result.plan_runs.append(executor.execute())
                result.generated += executor.generated
                result.reused += executor.reused
        store.finish_run(run_id)
        result.verification_failures = [r for v in verifiers.values() for r in getattr(v, "failures", [])]
        return result
    finally:
        store.close()


__all__ = ["AdaptiveRun", "PlanRun", "Progress", "RunResult", "prepare", "run", "settings_json"]


