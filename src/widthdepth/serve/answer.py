"""What a served request answers and what it cost.

The answer is the plan's own: a grid's chains at their last round, aggregated as the run aggregates
them (majority voting, or best-of where the server has a verifier); a policy's decision; a method's
outcome. The text sent back is the chosen attempt's whole solution (a chain's rounds joined where
the plan continues text, a search path's steps joined). The cost is every attempt the request
generated, cancelled ones included, and every verification, priced by `widthdepth.cost`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from widthdepth.allocation import aggregate
from widthdepth.attempts import Attempt
from widthdepth.backends import ModelInfo
from widthdepth.cost import VerificationCost, cell_cost
from widthdepth.execute import AdaptiveRun, MethodRun, PlanRun
from widthdepth.execute.base import attempt_counts
from widthdepth.store import Store
from widthdepth.tasks import Problem
from widthdepth.tasks.prompts import EXTEND_CUE
from widthdepth.verifiers import Verifier


@dataclass(frozen=True)
class Choice:
    text: str
    answer: str | None
    """The answer as compared for voting (`ServedFamily.parse`)."""
    finish_reason: str
    """"stop" or "length", as OpenAI says it."""
    attempt_key: str | None
    agreement: float | None = None
    """The share of the plan's final answers that are this one (a grid's chains), a gold-free confidence."""


def choose(store: Store, plan: Any, problem: Problem, outcome: PlanRun | AdaptiveRun | MethodRun,
           verifier: Verifier | None) -> Choice:
    if isinstance(outcome, PlanRun):
        chains = [c for c in outcome.chains[problem.key] if len(c) == plan.rounds and not c[-1].failed]
        finals = [c[-1] for c in chains]
        scores = [v.score if (v := outcome.verifications.get(a.key)) is not None else None for a in finals]
        answer = aggregate([a.final_answer for a in finals], scores, "best_of" if verifier is not None else "majority")
        agreement = sum(a.final_answer == answer for a in finals) / len(finals) if finals and answer is not None else None
        chosen = next((c for c in chains if c[-1].final_answer == answer), chains[0] if chains else None)
        if chosen is None:
            return _nothing()
        return _choice(plan.chain_text([a.text for a in chosen]), answer, chosen[-1], agreement)
    if isinstance(outcome, AdaptiveRun):
        answer = outcome.decisions[0]["answer"] if outcome.decisions else None
    else:
        answer = outcome.outcomes[0].answer if outcome.outcomes else None
    done = [a for a in store.attempts(problem_key=problem.key) if not a.failed]
    pick = max((a for a in done if a.final_answer == answer), key=_depth, default=None) or max(done, key=_depth, default=None)
    return _choice(_solution(store, pick, plan), answer, pick) if pick is not None else _nothing()


def _depth(attempt: Attempt) -> tuple[int, int]:
    return attempt.serial_tokens, -attempt.w


def _solution(store: Store, attempt: Attempt, plan: Any) -> str:
    """An attempt's whole solution: with the text of the rounds or steps it continues, where it continues text."""
    joiner = EXTEND_CUE if attempt.mode == "extend" else getattr(plan, "delimiter", None)
    if joiner is None:
        return attempt.text
    parts, current = [attempt.text], attempt
    while current.parent_key and (parent := store.get_attempt(current.parent_key)) is not None:
        parts.append(parent.text)
        current = parent
    return joiner.join(reversed(parts))


def _choice(text: str, answer: str | None, attempt: Attempt, agreement: float | None = None) -> Choice:
    return Choice(text, answer, "length" if attempt.finish_reason == "length" else "stop", attempt.key, agreement)


def _nothing() -> Choice:
    return Choice("", None, "error", None)


def price(store: Store, keys: list[str], info: ModelInfo, verifier: Verifier | None, reused: int,
          plan: str) -> dict[str, Any]:
    """The request's usage, OpenAI's fields and widthdepth's: what its generated attempts and their
    verifications cost (a shared prompt counted once where the backend evaluates it once)."""
    attempts = [a for a in (store.get_attempt(k) for k in keys) if a is not None]
    checked = [v for a in attempts if verifier is not None
               and (v := store.get_verification(a.key, verifier.name)) is not None]
    counts = [attempt_counts(a) for a in attempts]
    cost = cell_cost(counts, counts, [VerificationCost(v.prompt_tokens, v.completion_tokens) for v in checked],
                     info.n_params, info.shares_prompt_prefix, verifier.n_params if verifier is not None else 0)
    prompt = int(cost.prompt_tokens) + sum(v.prompt_tokens for v in checked)
    completion = int(cost.generated_tokens) + sum(v.completion_tokens for v in checked)
    return {
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "widthdepth": {
            "plan": plan, "calls": len(attempts) + len(checked), "attempts": len(attempts),
            "verifications": len(checked), "reused": reused,
            "cancelled": sum(a.status == "cancelled" for a in attempts),
            "failed": sum(a.status == "failed" for a in attempts),
            "flops": cost.flops + cost.verifier_flops, "serial_tokens": int(cost.serial_tokens),
            "wall_seconds": round(cost.wall_seconds, 4), "attempt_keys": [a.key for a in attempts]}}
