"""The closing table of a run: per task, plan and round d, at the plan's full width N.

Accuracy by aggregator (majority, verifier best-of, coverage) and the mean cost per problem as
defined in `widthdepth.cost`. Sub-cells w < N with unbiased estimators are the surface's job.
"""

from __future__ import annotations

from dataclasses import dataclass

from widthdepth.analysis.aggregators import best_of, coverage, majority
from widthdepth.analysis.traces import SAMPLING_KEYS, Scope
from widthdepth.cost import Cost, VerificationCost, cell_cost, mean_cost
from widthdepth.execute import PlanRun, RunResult
from widthdepth.execute.base import attempt_counts


@dataclass(frozen=True)
class CellRow:
    task: str
    plan: str
    w: int
    d: int
    problems: int
    majority: float
    best_of: float | None
    """None when no verifier ran."""
    coverage: float
    failed: int
    """Attempts that failed (server error, context overflow): counted apart, never as wrong."""
    cost: Cost


def scope_of(result: RunResult) -> Scope:
    """What a run ran (its grid plans and methods on its problems), for a report of exactly that."""
    config = result.config.model_dump()
    runs = [*result.plan_runs, *result.methods]
    return Scope(result.model, frozenset(r.family.spec for r in runs), frozenset(r.plan.spec for r in runs),
                 result.config.seed, tuple(sorted((k, config.get(k)) for k in SAMPLING_KEYS)),
                 frozenset(p.key for r in runs for p in r.problems))


def cell_rows(plan_run: PlanRun, result: RunResult) -> list[CellRow]:
    rows = []
    n = plan_run.plan.chains
    verifier_params = result.verifier_params.get(plan_run.verifier or "", 0)
    for d in range(1, plan_run.plan.rounds + 1):
        hits = {"majority": 0, "best_of": 0, "coverage": 0}
        costs, failed = [], 0
        for problem in plan_run.problems:
            chains = plan_run.chains[problem.key][:n]
            final = [c[d - 1] if len(c) >= d and not c[d - 1].failed else None for c in chains]
            answers = [a.final_answer if a else None for a in final]
            verifications = [plan_run.verifications.get(a.key) if a else None for a in final]
            scores = [v.score if v else None for v in verifications]
            hits["majority"] += plan_run.family.check(problem, majority(answers))
            hits["best_of"] += plan_run.family.check(problem, best_of(answers, scores))
            hits["coverage"] += coverage([a.correct if a else None for a in final])
            spent = [a for c in chains for a in c[:d]]
            failed += sum(a.failed for a in spent)
            costs.append(cell_cost(
                [attempt_counts(a) for a in spent], [attempt_counts(a) for a in final if a],
                [VerificationCost(v.prompt_tokens, v.completion_tokens) for v in verifications if v],
                result.n_params, result.shares_prompt_prefix, verifier_params))
        k = len(plan_run.problems)
        rows.append(CellRow(
            task=plan_run.family.spec, plan=plan_run.plan.spec, w=n, d=d, problems=k,
            majority=hits["majority"] / k, best_of=hits["best_of"] / k if plan_run.verifier else None,
            coverage=hits["coverage"] / k, failed=failed, cost=mean_cost(costs)))
    return rows


def closing_table(result: RunResult) -> list[CellRow]:
    return [row for plan_run in result.plan_runs for row in cell_rows(plan_run, result)]
