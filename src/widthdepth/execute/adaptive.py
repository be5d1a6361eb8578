"""Adaptive plans: the policy's probe for every problem, then each problem's plan, grouped so that
problems with the same plan go to the backend together; the decisions go to the store's
allocations table.
"""

from __future__ import annotations

import math

from widthdepth.allocation import Pricing, aggregate, plan_cost, predictor_value, price_chains
from widthdepth.errors import WidthdepthError
from widthdepth.execute.base import AdaptiveRun, Executor, PlanRun
from widthdepth.execute.latent import LatentGridExecutor
from widthdepth.execute.text import TextGridExecutor
from widthdepth.plans import GridPlan
from widthdepth.plans.adaptive import AdaptivePlan
from widthdepth.specs import stable_hash
from widthdepth.tasks import Problem


class AdaptiveExecutor(Executor):
    """The probe for every problem, then each problem's plan, grouped so that problems with the same
    plan go to the backend together; the decisions go to the store's allocations table."""

    plan: AdaptivePlan

    def _grid(self, chains: int, rounds: int, problems: list[Problem]) -> PlanRun:
        plan = GridPlan(chains, rounds, self.plan.mode)
        kind = LatentGridExecutor if self.backend.info.latent else TextGridExecutor
        executor = kind(self.store, self.backend, self.config, self.family, plan, problems, self.verifier,
                        self.progress, self.made)
        result = executor.execute()
        self.generated += executor.generated
        self.reused += executor.reused
        return result

    def execute(self) -> AdaptiveRun:
        policy, level = self.plan.policy, self.plan.level
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
        run_key = stable_hash(self.backend.info.id, self.family.spec, self.plan.spec, self.seed,
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
