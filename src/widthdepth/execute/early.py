"""`early:N` — adaptive self-consistency: batches of chains until each problem's majority is settled.

Each batch is the next run of chains of `parallel:N` (same keys and seeds) for every problem still
open, sent to the backend together; a problem leaves once `settled` says so, or at N chains. What a
problem cost is every attempt it drew — the whole last batch, though the vote was settled part-way
through it — and its latency is the batches one after the other (each as long as its longest chain).
"""

from __future__ import annotations

from dataclasses import replace

from widthdepth.analysis.aggregators import majority
from widthdepth.attempts import Attempt
from widthdepth.cost import cell_cost
from widthdepth.execute.base import Executor, MethodRun, Outcome, PlanRun, attempt_counts
from widthdepth.execute.latent import LatentGridExecutor
from widthdepth.execute.text import TextGridExecutor
from widthdepth.plans import GridPlan
from widthdepth.plans.early import EarlyPlan, settled
from widthdepth.tasks import Problem


class EarlyExecutor(Executor):
    plan: EarlyPlan

    def _batch(self, chains: range, problems: list[Problem]) -> PlanRun:
        """Chains `chains` of `parallel:chains.stop` (D iterations for latent reasoners) for `problems`."""
        kind = LatentGridExecutor if self.backend.info.latent else TextGridExecutor
        executor = kind(self.store, self.backend, self.config, self.family, GridPlan(chains.stop, self.plan.depth),
                        problems, None, self.progress, self.made)
        executor.first_chain, executor.repeat = chains.start, self.repeat
        result = executor.execute()
        self.generated += executor.generated
        self.reused += executor.reused
        return result

    def execute(self) -> MethodRun:
        plan, depth = self.plan, self.plan.depth
        drawn: dict[str, list[list[Attempt]]] = {p.key: [] for p in self.problems}
        serial: dict[str, float] = {p.key: 0.0 for p in self.problems}
        outcomes: list[Outcome] = []
        open_problems = list(self.problems)
        for chains in plan.batches():
            if not open_problems:
                break
            self.progress.describe(f"{plan.spec} chains {chains.start + 1}-{chains.stop}: {len(open_problems)} "
                                   f"problems open, {self.family.spec}")
            batch = self._batch(chains, open_problems)
            still_open = []
            for problem in open_problems:
                got = batch.chains[problem.key][chains.start:chains.stop]
                if any(len(c) < depth or any(a.failed for a in c) for c in got):
                    self.progress.advance((plan.samples - chains.stop) * depth)
                    continue  # an attempt failed for good: the problem is left for a rerun
                drawn[problem.key] += got
                serial[problem.key] += max(c[-1].serial_tokens for c in got)
                answers = [c[-1].final_answer for c in drawn[problem.key]]
                if chains.stop < plan.samples and not settled(answers, plan.conf):
                    still_open.append(problem)
                    continue
                self.progress.advance((plan.samples - chains.stop) * depth)
                outcomes.append(self._outcome(problem, drawn[problem.key], serial[problem.key]))
            open_problems = still_open
        order = {p.key: i for i, p in enumerate(self.problems)}
        outcomes.sort(key=lambda o: order[o.problem_key])
        return self.record(MethodRun(self.family, plan, self.problems, outcomes))

    def _outcome(self, problem: Problem, chains: list[list[Attempt]], serial: float) -> Outcome:
        answer = majority([c[-1].final_answer for c in chains])
        spent = [attempt_counts(a) for c in chains for a in c]
        cost = cell_cost(spent, [], [], self.backend.info.n_params, self.backend.info.shares_prompt_prefix)
        return Outcome(problem.key, answer, bool(self.family.check(problem, answer)),
                       replace(cost, serial_tokens=serial), len(spent), {"chains": len(chains)})
