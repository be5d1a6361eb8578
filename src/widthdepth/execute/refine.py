"""`refine:N,D` — round 1 as `parallel:N`, then every round shows each chain its own previous attempt and
the other chains' answers; the answer is the majority at round D. A problem whose chain failed for good
stops there (left for a rerun, not scored): the next round needs every chain's answer.
"""

from __future__ import annotations

from dataclasses import replace

from widthdepth.analysis.aggregators import majority
from widthdepth.attempts import Attempt
from widthdepth.cost import cell_cost
from widthdepth.execute.base import MethodRun, Outcome, attempt_counts
from widthdepth.execute.text import TextGridExecutor, _Pending
from widthdepth.plans.refine import RefinePlan
from widthdepth.tasks import Problem


class RefineExecutor(TextGridExecutor):
    plan: RefinePlan

    def execute(self) -> MethodRun:  # type: ignore[override]
        self.verifier = None  # the answer is the majority: nothing needs a score
        grid = super().execute()
        outcomes = [self._outcome(p, grid.chains[p.key]) for p in self.problems
                    if all(len(c) == self.plan.rounds and not c[-1].failed for c in grid.chains[p.key])]
        return self.record(MethodRun(self.family, self.plan, self.problems, outcomes))

    def _plan_round(self, problem: Problem, d: int, chains: list[list[Attempt]],
                    first_raw: dict[str, str]) -> list[_Pending]:
        if d == 1:
            return super()._plan_round(problem, d, chains, first_raw)
        if any(len(c) != d - 1 or c[-1].failed for c in chains):
            self.progress.advance(len(chains))  # a round needs every chain's answer; a rerun retries
            return []
        answers = [c[-1].final_answer for c in chains]
        pending = []
        for w, chain in enumerate(chains):
            prompt = self.plan.refine_prompt(self.family, problem, self.style, chain[-1].text,
                                             answers[:w] + answers[w + 1:])
            pending += self._continue(problem, d, w, chain, prompt)
        return pending

    def _outcome(self, problem: Problem, chains: list[list[Attempt]]) -> Outcome:
        answer = majority([c[-1].final_answer for c in chains])
        spent = [a for c in chains for a in c]
        info = self.backend.info
        cost = cell_cost([attempt_counts(a) for a in spent], [], [], info.n_params, info.shares_prompt_prefix)
        serial = sum(max(c[d].completion_tokens for c in chains) for d in range(self.plan.rounds))
        return Outcome(problem.key, answer, bool(self.family.check(problem, answer)), replace(cost, serial_tokens=serial),
                       len(spent), {"round_1_majority": majority([c[0].final_answer for c in chains])})
