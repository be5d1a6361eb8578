"""`adaptive:POLICY@BUDGET` — per-problem allocation by a fitted policy (`widthdepth allocate fit`).

Each problem first gets the policy's probe (its first `probe` chains, round 1); a predictor turns the
probe into a predicted difficulty, its bin and the policy's level for BUDGET (mean compute per
problem, in the policy's unit, probe included) give a plan w x d with an aggregator; chains 0..w-1
then go on to round d. The probe's chains are the plan's first chains (same seeds, same stored
attempts), so nothing the probe paid for is generated twice.

    adaptive:policy.json@2e7
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from widthdepth.plans.policy import Level, Policy, load_policy
from widthdepth.specs import Spec


@dataclass(frozen=True)
class AdaptivePlan:
    path: str
    budget: float
    policy: Policy = field(compare=False, repr=False)
    budget_text: str = ""

    @property
    def spec(self) -> str:
        return f"adaptive:{self.path}@{self.budget_text or format(self.budget, 'g')}"

    @property
    def mode(self) -> str:
        return self.policy.mode

    @property
    def level(self) -> Level:
        """The policy's most generous level within the budget: the one place a budget becomes plans."""
        return self.policy.level_for(self.budget)

    @property
    def rounds(self) -> int:
        return max(d for _, d, _ in self.level.plans)

    @property
    def attempts_per_problem(self) -> int:
        """What the probe takes; the progress bar grows by each problem's plan once it is chosen."""
        return self.policy.probe

    @property
    def needs_verifier(self) -> bool:
        return self.policy.predictor == "verifier" or any(
            a == "best_of" for _, _, a in self.level.plans)


def parse_adaptive(spec: Spec) -> AdaptivePlan:
    spec.check_known(set())
    if len(spec.args) != 1 or "@" not in spec.args[0]:
        raise spec.error("expected adaptive:POLICY.json@BUDGET, e.g. adaptive:policy.json@2e7")
    path, _, raw = spec.args[0].rpartition("@")
    try:
        budget = float(raw)
    except ValueError:
        raise spec.error(f"budget {raw!r} is not a number (mean compute per problem in the policy's unit)") from None
    if not math.isfinite(budget) or budget <= 0:
        raise spec.error(f"budget {raw!r} must be a positive number")
    policy = load_policy(path, option=f"{spec.option} {spec.text!r}:")
    plan = AdaptivePlan(path, budget, policy, raw)
    try:
        plan.level
    except Exception as error:  # a WidthdepthError naming the cheapest level
        raise spec.error(str(error)) from None
    return plan
