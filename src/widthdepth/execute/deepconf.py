"""`deepconf:N` — DeepConf online: the warm-up chains (parallel:W's, read back or generated), a floor per
problem from their lowest group confidence, then the other chains sent with that floor, which the
backend applies as it decodes ("low_confidence" marks a chain it stopped). The answer is the weighted
vote of the chains at or above the floor. A problem cost every token drawn, stopped chains included;
its latency is the warm-up's longest chain, then the rest's.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np

from widthdepth.analysis.aggregators import weighted
from widthdepth.attempts import Attempt, attempt_key, attempt_seed
from widthdepth.cost import cell_cost
from widthdepth.execute.base import Executor, MethodRun, Outcome, attempt_counts, settings_json
from widthdepth.execute.text import TextGridExecutor
from widthdepth.plans import GridPlan
from widthdepth.plans.deepconf import DeepConfPlan
from widthdepth.tasks import Problem
from widthdepth.tasks.prompts import Prompt

STOPPED = "low_confidence"


class _Online(TextGridExecutor):
    """Chains `first_chain`.. of parallel:N, each problem's sent with its own confidence floor (in its keys)."""

    floors: dict[str, float]

    def _request_extra(self, problem: Problem) -> dict:
        return {"confidence_floor": self.floors[problem.key]}

    def _settings(self, problem: Problem, prompt: Prompt) -> str:
        settings = json.loads(settings_json(self.config, prompt))
        return json.dumps({**settings, "confidence_floor": self.floors[problem.key]}, sort_keys=True)

    def _key(self, problem: Problem, d: int, w: int, prompt: Prompt) -> str:
        return attempt_key(self.backend.info.id, problem.key, prompt.identity(), self._settings(problem, prompt), w, d,
                           attempt_seed(self.seed, problem.key, d, w))


class DeepConfExecutor(Executor):
    plan: DeepConfPlan

    def _run(self, kind: type[TextGridExecutor], chains: range, problems: list[Problem], floors: dict | None = None):  # noqa: ANN202
        executor = kind(self.store, self.backend, self.config, self.family, GridPlan(chains.stop, 1), problems, None,
                        self.progress, self.made)
        executor.first_chain, executor.repeat = chains.start, self.repeat
        if floors is not None:
            executor.floors = floors
        result = executor.execute()
        self.generated += executor.generated
        self.reused += executor.reused
        return result

    def execute(self) -> MethodRun:
        plan = self.plan
        self.progress.describe(f"{plan.spec}: {plan.warmup} warm-up chains, {self.family.spec}")
        warm = self._run(TextGridExecutor, range(0, plan.warmup), self.problems)
        floors: dict[str, float] = {}
        for problem in self.problems:
            lows = [c[0].lowest_confidence for c in warm.chains[problem.key] if c and not c[0].failed]
            if len(lows) == plan.warmup and all(low is not None for low in lows):
                floors[problem.key] = round(float(np.quantile(lows, round(1 - plan.keep, 12))), 6)
        ready = [p for p in self.problems if p.key in floors]  # the others: a warm-up chain failed, left for a rerun
        self.progress.describe(f"{plan.spec}: {plan.samples - plan.warmup} chains with their floors, {self.family.spec}")
        online = self._run(_Online, range(plan.warmup, plan.samples), ready, floors)
        outcomes = []
        for problem in ready:
            warmup = [c[0] for c in warm.chains[problem.key]]
            rest = [c[0] for c in online.chains[problem.key][plan.warmup:] if c]
            if len(rest) < plan.samples - plan.warmup or any(a.failed for a in rest):
                continue
            outcomes.append(self._outcome(problem, warmup, rest, floors[problem.key]))
        return self.record(MethodRun(self.family, plan, self.problems, outcomes))

    def _outcome(self, problem: Problem, warmup: list[Attempt], rest: list[Attempt], floor: float) -> Outcome:
        kept = [a for a in warmup + rest if a.finish_reason != STOPPED and a.lowest_confidence is not None
                and a.lowest_confidence >= floor]
        answer = weighted([a.final_answer for a in kept], [a.lowest_confidence for a in kept])
        info = self.backend.info
        spent = warmup + rest
        cost = cell_cost([attempt_counts(a) for a in spent], [], [], info.n_params, info.shares_prompt_prefix)
        serial = max(a.completion_tokens for a in warmup) + max(a.completion_tokens for a in rest)
        stopped = sum(a.finish_reason == STOPPED for a in rest)
        return Outcome(problem.key, answer, bool(self.family.check(problem, answer)), replace(cost, serial_tokens=serial),
                       len(spent), {"floor": floor, "stopped": stopped, "voted": len(kept)})
