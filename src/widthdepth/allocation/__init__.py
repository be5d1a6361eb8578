"""Adaptive allocation (Snell et al. 2024, with a probe whose cost is charged): per-problem
estimates from one grid run (`records`), a policy fitted on training problems (`fit`), judged on
held-out ones (`judge`), from a run folder (`folder`). The policy file itself is data in
`widthdepth.plans.policy`, which `adaptive:` plans read.

A problem's predicted difficulty comes from a probe — its first `probe` chains at round 1 — with
no gold answers: ``agreement`` (share of probe answers equal to the most common one), ``confidence``
(the model's mean token log-probability) or ``verifier`` (mean verifier score).

    selection = select("runs/alloc")
    records = problem_records(selection.traces, selection.probe, selection.unit, selection.predictor)
    evaluation = cross_validate(records, selection.predictor, selection.probe, bins=3, unit=selection.unit, folds=5)
"""

from widthdepth.allocation.fit import allocate, budget_levels, fit_policy, quantile_edges
from widthdepth.allocation.folder import Selection, fit_from, select
from widthdepth.allocation.judge import (BASELINES, CurvePoint, Evaluation, cross_validate, evaluate, fold_assignment,
                                         needed_cost, save_evaluation, split)
from widthdepth.allocation.records import (Pricing, ProblemRecord, Records, aggregate, plan_cost, predictor_value,
                                           price_chains, problem_records, sizes)
from widthdepth.plans.policy import Level, Policy, load_policy, short_key

__all__ = ["BASELINES", "CurvePoint", "Evaluation", "Level", "Policy", "Pricing", "ProblemRecord", "Records",
           "Selection", "aggregate", "allocate", "budget_levels", "cross_validate", "evaluate", "fit_from",
           "fit_policy", "fold_assignment", "load_policy", "needed_cost", "plan_cost", "predictor_value",
           "price_chains", "problem_records", "quantile_edges", "save_evaluation", "select", "short_key", "sizes",
           "split"]
