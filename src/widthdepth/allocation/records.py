"""Per-problem estimates for adaptive allocation: a grid run's problems priced and estimated for
every plan (w, d, aggregator) after a probe of the first chains, and without one.

A plan after the probe is a cell (w, d, aggregator): chains 0..w-1 go on to round d, and the first
min(w, probe) of them ARE the probe's chains (same seeds, same stored attempts), so the probe's cost
is part of every plan; probe chains a plan does not continue are still paid for. Its accuracy on a
problem is estimated exactly from one grid run, conditioned on that problem's own probe: the probe
chains are fixed, the other w - probe chains a random subset of the rest (`*_with_fixed` estimators).

    records = problem_records(traces, probe=4, unit="flops")
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from widthdepth.analysis.aggregators import best_of, majority
from widthdepth.analysis.estimators import best_of_with_fixed, expected_max_with_fixed, majority_with_fixed
from widthdepth.analysis.traces import GridTrace, ProblemTrace
from widthdepth.attempts import Attempt, Verification
from widthdepth.cost import attempt_cost, attempt_flops, pays_verification, verification_cost
from widthdepth.cost import check_unit
from widthdepth.errors import WidthdepthError
from widthdepth.plans.policy import PREDICTORS, Choice


@dataclass
class ProblemRecord:
    """One problem of a grid run: predictor values of its probe, its oracle difficulty, and every
    cell's estimated accuracy and mean cost, with the probe fixed (adaptive) and without (fixed plans)."""

    key: str
    task: str
    predictors: dict[str, float]
    oracle: float
    adaptive: dict[Choice, tuple[float, float]]
    """cell -> (accuracy, cost) after this problem's probe."""
    fixed: dict[Choice, tuple[float, float]]
    """cell -> (accuracy, cost) of the cell run as a fixed plan (a random w-subset of the chains)."""


@dataclass(frozen=True)
class _Chain:
    answers: list[str | None]
    correct: list[bool]
    scores: list[float | None]
    cost: list[float]
    """Cumulative cost up to round d (index d-1) in the unit, round-d verification excluded."""
    verify_cost: list[float]
    """Cost of verifying round d's answer."""
    serial: list[float]
    confidence: float | None


def sizes(limit: int, extra: int = 0) -> list[int]:
    """1, 2, 4, ... up to limit, limit itself and `extra`: the plan sizes a policy chooses among."""
    values = {1 << i for i in range(limit.bit_length()) if 1 << i <= limit} | {limit}
    if 1 <= extra <= limit:
        values.add(extra)
    return sorted(values)


def _chains(trace: GridTrace, problem: ProblemTrace, unit: str) -> tuple[list[_Chain], float]:
    """The problem's complete chains (all rounds, no failure), and the cost counted once per problem
    (a round-1 prompt that the backend shares among samples, in the flops unit)."""
    rounds = trace.plan.rounds
    complete = [c for c in problem.chains if len(c) == rounds and not any(a.failed for a in c)]
    return price_chains(trace, complete, trace.verifications, unit)


def price_chains(pricing: GridTrace | Pricing, chains: list[list[Attempt]], verified: dict[str, Verification],
                 unit: str) -> tuple[list[_Chain], float]:
    """Chains of attempts as the estimators see them, and the cost counted once per problem."""
    shared = 0.0
    if unit == "flops" and pricing.shares_prompt_prefix and chains and chains[0][0].flops is None:
        shared = attempt_flops(pricing.n_params, chains[0][0].prompt_tokens)
    out = []
    for chain in chains:
        verifications = [verified.get(a.key) for a in chain]
        out.append(_Chain(
            answers=[a.final_answer for a in chain], correct=[bool(a.correct) for a in chain],
            scores=[v.score if v else None for v in verifications],
            cost=list(np.cumsum([_attempt_cost(pricing, a, unit, first_prompt_shared=shared > 0) for a in chain])),
            verify_cost=[_verify_cost(pricing, v, unit) for v in verifications],
            serial=[float(a.serial_tokens) for a in chain], confidence=chain[0].confidence))
    return out, shared


@dataclass(frozen=True)
class Pricing:
    """What pricing an attempt needs besides its own counts (a GridTrace has the same fields)."""

    n_params: int
    shares_prompt_prefix: bool
    verifier_params: int = 0


def _attempt_cost(pricing: GridTrace | Pricing, a: Attempt, unit: str, first_prompt_shared: bool) -> float:
    prompt = 0 if (a.d == 1 and first_prompt_shared) else a.prompt_tokens  # the shared prompt is priced once
    return attempt_cost(unit, pricing.n_params, prompt, a.completion_tokens, a.flops)


def _verify_cost(pricing: GridTrace | Pricing, v: Verification | None, unit: str) -> float:
    return 0.0 if v is None else verification_cost(unit, pricing.verifier_params, v.prompt_tokens, v.completion_tokens)


def predictor_value(name: str, answers: list[str | None], confidences: list[float | None],
                    scores: list[float | None]) -> float:
    """One probe's predicted easiness (higher: easier). NaN where the probe lacks what it needs."""
    if name == "agreement":
        counts = Counter(a for a in answers if a is not None)
        return max(counts.values()) / len(answers) if counts else 0.0
    if name == "confidence":
        return math.nan if any(c is None for c in confidences) else float(np.mean(confidences))
    if name == "verifier":
        return float(np.mean([0.0 if s is None else s for s in scores]))
    raise WidthdepthError(f"--predictor {name!r}: unknown (valid: {', '.join(PREDICTORS)})")


def aggregate(chains_answers: list[str | None], scores: list[float | None], aggregator: str) -> str | None:
    """The answer a deployed plan gives, by the run's own aggregators (`widthdepth.analysis.aggregators`)."""
    if aggregator == "best_of":
        return best_of(chains_answers, scores)
    return majority(chains_answers)


def plan_cost(chains: list[_Chain], shared: float, probe: int, w: int, d: int, aggregator: str, unit: str,
              probe_verified: bool = False) -> float:
    """What an adaptive run spent on one problem: `chains` are the w chains it ran to round d, then
    the probe's chains it did not continue (at round 1), all realised (none drawn)."""
    return _cell(chains, shared, probe, len(chains), w, d, aggregator, unit, frozenset(), probe_verified)[1]


def _cell(chains: list[_Chain], shared: float, probe: int, fixed_count: int, w: int, d: int, aggregator: str,
          unit: str, gold: frozenset[str], probe_verified: bool = False) -> tuple[float, float]:
    """Accuracy and cost of w chains to round d after a probe of the first `probe` chains (0: a fixed
    plan, no probe). The first min(w, fixed_count) chains are fixed, the rest a random subset of
    chains[fixed_count:]; probe chains beyond w are paid at round 1.

    Costs follow what an adaptive run does: chains beyond the probe are a second request (a shared
    prompt is evaluated again) and start when the whole probe is done (latency: the slowest probe
    attempt, then the longest continuation); the probe's verifications are paid when the predictor
    is the verifier; best-of pays for verifying round d."""
    kept = chains[:min(w, fixed_count)]
    pool = chains[fixed_count:]
    leftover = chains[w:probe]
    drawn = w - len(kept)
    if drawn > len(pool):
        return math.nan, math.nan
    i = d - 1
    if aggregator == "majority":
        accuracy = majority_with_fixed([c.answers[i] for c in kept], [c.answers[i] for c in pool], gold, drawn)
    else:
        accuracy = best_of_with_fixed([c.answers[i] for c in kept], [c.scores[i] for c in kept],
                                      [c.answers[i] for c in pool], [c.scores[i] for c in pool], gold, drawn)
    if unit == "serial_tokens":
        if probe == 0:
            fixed_max = max([c.serial[i] for c in kept], default=0.0)
            return accuracy, expected_max_with_fixed(fixed_max, [c.serial[i] for c in pool], drawn)
        slowest_probe = max(c.serial[0] for c in chains[:probe])
        after = max([c.serial[i] - (c.serial[0] if j < probe else 0.0) for j, c in enumerate(kept)], default=0.0)
        return accuracy, slowest_probe + expected_max_with_fixed(after, [c.serial[i] for c in pool], drawn)

    def spent(c: _Chain) -> float:
        return c.cost[i] + (c.verify_cost[i] if pays_verification(aggregator, unit) else 0.0)

    cost = shared + sum(spent(c) for c in kept) + sum(c.cost[0] for c in leftover)
    if drawn:
        cost += drawn * float(np.mean([spent(c) for c in pool]))
    if probe and w > probe:
        cost += shared  # the chains beyond the probe are a request of their own
    if probe and probe_verified:
        paid = aggregator == "best_of" and d == 1  # round 1 of the kept probe chains is verified already
        cost += sum(c.verify_cost[0] for j, c in enumerate(chains[:probe]) if not (paid and j < len(kept)))
    return accuracy, cost


class Records(list):
    """Problem records, and how many problems were left out for an incomplete grid."""

    left_out: int = 0


def problem_records(traces: list[GridTrace], probe: int, unit: str, predictor: str | None = None) -> Records:
    """Every problem of `traces` (one grid shape), with its cells estimated for a probe of `probe`
    chains (chains 0..probe-1, as an adaptive run probes). A problem with a failed or missing attempt
    is left out (counted in `left_out`): every cell must be estimable on every problem."""
    check_unit(unit)
    records = Records()
    for trace in traces:
        n, depth = trace.plan.chains, trace.plan.rounds
        if probe > n:
            raise WidthdepthError(f"--probe {probe}: more than the {n} chains of {trace.label}")
        aggregators = ("majority", "best_of") if trace.verifier else ("majority",)
        cells = [(w, d, a) for w in sizes(n, probe) for d in sizes(depth) for a in aggregators]
        for problem in trace.problems:
            chains, shared = _chains(trace, problem, unit)
            if len(chains) < n:
                records.left_out += 1  # a failed or missing attempt: a rerun of the grid fills it
                continue
            head = chains[:probe]
            values = {name: predictor_value(name, [c.answers[0] for c in head], [c.confidence for c in head],
                                            [c.scores[0] for c in head]) for name in PREDICTORS}
            if predictor == "verifier" and not trace.verifier:
                raise WidthdepthError(f"--predictor verifier: {trace.label} has no verifier scores; "
                                      "rerun with --verifier, or use --predictor agreement")
            if predictor == "confidence" and math.isnan(values["confidence"]):
                raise WidthdepthError(f"--predictor confidence: the attempts of {trace.model} carry no confidence "
                                      "(its backend reports no token log-probabilities); use --predictor agreement")
            records.append(ProblemRecord(
                key=problem.key, task=trace.task, predictors=values,
                oracle=float(np.mean([c.correct[0] for c in chains])),
                adaptive={cell: _cell(chains, shared, probe, probe, *cell, unit, problem.gold,
                                      probe_verified=predictor == "verifier") for cell in cells},
                # a fixed plan's first chains are the probe's chains too (a width-only run of w chains
                # runs chains 0..w-1): conditioned on them alike, a plan and the adaptive choice of it
                # compare like with like (equal at the lowest level, where both are the probe itself)
                fixed={cell: _cell(chains, shared, 0, probe, *cell, unit, problem.gold) for cell in cells}))
    if not records and records.left_out:
        raise WidthdepthError(incomplete_grid(records.left_out, traces, "no problem is left to fit or judge on"))
    return records


def incomplete_grid(left_out: int, traces: list[GridTrace], what: str) -> str:
    grids = ", ".join(sorted({t.label for t in traces}))
    return (f"{what}: {left_out} problems were left out because their grid is incomplete (a failed or missing "
            f"attempt in {grids}); rerun the grid's `widthdepth run` command to complete it")
