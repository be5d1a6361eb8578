"""Compute-optimal adaptive allocation: difficulty predicted from a cheap probe, the width/depth mix
chosen per predicted-difficulty bin, judged on problems the policy was not fitted on.

The probe is the first `probe` chains' round-1 attempts of a problem. A predictor turns them into
one number, higher meaning easier, without any gold answer:

- ``agreement``: the share of probe attempts that give the most common answer;
- ``confidence``: the mean of the model's own confidence in them (mean token log-probability for
  text models, the answer's log-probability for the built-in reasoners);
- ``verifier``: their mean verifier score.

A plan after the probe is a cell (w, d, aggregator): chains 0..w-1 go on to round d, and the first
min(w, probe) of them ARE the probe's chains (same seeds, same stored attempts), so the probe's cost
is part of every plan; probe chains a plan does not continue are still paid for. Its accuracy on a
problem is estimated exactly from one grid run, conditioned on that problem's own probe: the probe
chains are fixed, the other w - probe chains a random subset of the rest (`*_with_fixed` estimators).

Fitting splits the training problems into quantile bins of the predictor and allocates a mean
budget across bins (a multiple-choice knapsack solved greedily along each bin's convex hull of
cost against accuracy), so easy problems can stop at the probe and hard ones get more. Gold-binned
allocation (`oracle` in the code and JSON) bins by gold pass@1 — the share of a problem's round-1
attempts that are right — with no probe to pay for: it knows how hard each problem is, not whether
the attempts a plan keeps are right, so it is a reference, not a bound; adaptive can beat it, because
its probe sees the very attempts its plan keeps (stopping when they agree is stopping when they are
likely right). Evaluation is on held-out problems only.

    problems = problem_records(traces, probe=4, unit="flops")
    policy = fit_policy(problems[:200], predictor="agreement", probe=4, bins=3, unit="flops")
    evaluation = evaluate(policy, problems[200:])
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.analysis.aggregators import best_of, majority
from widthdepth.analysis.estimators import best_of_with_fixed, expected_max_with_fixed, majority_with_fixed
from widthdepth.analysis.traces import GridTrace, ProblemTrace
from widthdepth.cost import attempt_flops
from widthdepth.errors import WidthdepthError
from widthdepth.specs import stable_hash
from widthdepth.trace import Attempt, Verification

PREDICTORS = ("agreement", "confidence", "verifier")
UNITS = ("generated_tokens", "flops", "serial_tokens")
POLICY_FORMAT = 1
BUDGET_LEVELS = 12
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 20241
KEY_CHARS = 16
"""Problem keys in a policy file are hashed and cut to this many hex digits (collisions: ~2^-64 per pair)."""

Cell = tuple[int, int, str]  # (w, d, aggregator)


# -- per-problem estimates ----------------------------------------------------------------------------
@dataclass
class ProblemRecord:
    """One problem of a grid run: predictor values of its probe, its oracle difficulty, and every
    cell's estimated accuracy and mean cost, with the probe fixed (adaptive) and without (fixed plans)."""

    key: str
    task: str
    predictors: dict[str, float]
    oracle: float
    adaptive: dict[Cell, tuple[float, float]]
    """cell -> (accuracy, cost) after this problem's probe."""
    fixed: dict[Cell, tuple[float, float]]
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


def _attempt_cost(trace: GridTrace | Pricing, a: Attempt, unit: str, first_prompt_shared: bool) -> float:
    if unit == "generated_tokens":
        return float(a.completion_tokens)
    if unit == "serial_tokens":
        return 0.0  # combined by max, not summed: see _Chain.serial
    if a.flops is not None:
        return float(a.flops)
    prompt = 0 if (a.d == 1 and first_prompt_shared) else a.prompt_tokens
    return attempt_flops(trace.n_params, prompt + a.completion_tokens)


def _verify_cost(trace: GridTrace | Pricing, v: Verification | None, unit: str) -> float:
    if v is None or unit == "serial_tokens":
        return 0.0
    tokens = v.prompt_tokens + v.completion_tokens
    return float(tokens) if unit == "generated_tokens" else attempt_flops(trace.verifier_params, tokens)


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
        return c.cost[i] + (c.verify_cost[i] if aggregator == "best_of" else 0.0)

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
    if unit not in UNITS:
        raise WidthdepthError(f"--unit {unit!r}: unknown (valid: {', '.join(UNITS)})")
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


# -- fitting ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Level:
    budget: float
    """Mean cost per problem this level may spend (in the policy's unit, probe included)."""
    plans: list[Cell]
    """One cell per bin."""
    train_accuracy: float
    train_cost: float


@dataclass
class Policy:
    predictor: str
    probe: int
    unit: str
    edges: list[float]
    """Bin b holds predictor values in [edges[b-1], edges[b]) (open at both ends)."""
    weights: list[float]
    levels: list[Level]
    fitted_on: list[str]
    grid: str = ""
    mode: str = "revise"
    model: str = ""
    tasks: list[str] = field(default_factory=list)
    verifier: str = ""
    """The verifiers of the runs it was fitted on, comma-separated (for the record: a run that uses
    the policy needs a verifier when its plans use best-of or it predicts from verifier scores)."""

    @property
    def bins(self) -> int:
        return len(self.edges) + 1

    def bin_of(self, value: float) -> int:
        return int(np.searchsorted(self.edges, value, side="right"))

    def level_for(self, budget: float) -> Level:
        """The most generous level within `budget`."""
        fitting = [level for level in self.levels if level.budget <= budget * (1 + 1e-9)]
        if not fitting:
            raise WidthdepthError(f"budget {budget:g} is below the policy's cheapest level "
                                  f"{self.levels[0].budget:g} {self.unit} (the probe alone costs about that)")
        return fitting[-1]

    def to_json(self) -> dict[str, Any]:
        return {"widthdepth_policy": POLICY_FORMAT, "model": self.model, "tasks": self.tasks, "grid": self.grid,
                "mode": self.mode, "verifier": self.verifier, "predictor": self.predictor, "probe": self.probe,
                "unit": self.unit,
                "bins": {"edges": self.edges, "weights": self.weights},
                "levels": [{"budget": lv.budget, "train_accuracy": lv.train_accuracy, "train_cost": lv.train_cost,
                            "plans": [{"bin": b, "w": w, "d": d, "aggregator": a}
                                      for b, (w, d, a) in enumerate(lv.plans)]} for lv in self.levels],
                "fitted_on": self.fitted_on}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")


def load_policy(path: str | Path, option: str = "--policy") -> Policy:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise WidthdepthError(f"{option} {path}: no such file; make one with `widthdepth allocate fit`") from None
    except (OSError, json.JSONDecodeError) as error:
        raise WidthdepthError(f"{option} {path}: not a policy file ({error})") from None
    if not isinstance(data, dict) or data.get("widthdepth_policy") != POLICY_FORMAT:
        raise WidthdepthError(f"{option} {path}: not a widthdepth policy (format {POLICY_FORMAT}); "
                              "make one with `widthdepth allocate fit`")
    try:
        levels = [Level(float(lv["budget"]), [(int(p["w"]), int(p["d"]), str(p["aggregator"])) for p in lv["plans"]],
                        float(lv["train_accuracy"]), float(lv["train_cost"])) for lv in data["levels"]]
        policy = Policy(str(data["predictor"]), int(data["probe"]), str(data["unit"]),
                        [float(e) for e in data["bins"]["edges"]], [float(x) for x in data["bins"]["weights"]],
                        levels, [str(k) for k in data["fitted_on"]], str(data.get("grid", "")),
                        str(data.get("mode", "revise")), str(data.get("model", "")), list(data.get("tasks", [])),
                        str(data.get("verifier") or ""))
    except (KeyError, TypeError, ValueError) as error:
        raise WidthdepthError(f"{option} {path}: a policy field is missing or malformed ({error!r})") from None
    if not policy.levels or any(len(lv.plans) != policy.bins for lv in policy.levels):
        raise WidthdepthError(f"{option} {path}: every level needs one plan per bin ({policy.bins})")
    if policy.predictor not in PREDICTORS or policy.unit not in UNITS or policy.probe < 1:
        raise WidthdepthError(f"{option} {path}: unknown predictor, unit or probe size")
    return policy


def short_key(key: str) -> str:
    """A problem's key as a policy file keeps it: the start of its hash."""
    return stable_hash(key)[:KEY_CHARS]


def quantile_edges(values: list[float], bins: int) -> list[float]:
    """Inner bin edges at the training values' quantiles; ties merge bins (a predictor with few
    distinct values gets fewer bins). A value equal to an edge goes to the upper bin."""
    values = sorted(v for v in values if math.isfinite(v))
    if bins < 1:
        raise WidthdepthError(f"--bins {bins}: must be at least 1")
    if not values:
        raise WidthdepthError("no training problem has a predictor value to bin")
    edges: list[float] = []
    for q in range(1, bins):
        edge = values[min(len(values) - 1, math.ceil(q * len(values) / bins))] if values else 0.0
        if edge > values[0] and (not edges or edge > edges[-1]):
            edges.append(float(edge))
    return edges


def _hull(points: list[tuple[float, float, Cell]]) -> list[tuple[float, float, Cell]]:
    """The upper-left concave hull of (cost, accuracy): the only cells a compute-optimal allocation uses."""
    points = sorted(points, key=lambda p: (p[0], -p[1]))
    frontier: list[tuple[float, float, Cell]] = []
    for p in points:
        if frontier and p[1] <= frontier[-1][1]:
            continue
        while len(frontier) >= 2:
            (c1, a1, _), (c2, a2, _) = frontier[-2], frontier[-1]
            if (a2 - a1) * (p[0] - c1) <= (p[1] - a1) * (c2 - c1):  # frontier[-1] is under the chord
                frontier.pop()
            else:
                break
        frontier.append(p)
    return frontier


def allocate(tables: list[dict[Cell, tuple[float, float]]], weights: list[float],
             budgets: list[float]) -> list[tuple[float, list[Cell], float, float]]:
    """For each budget: one cell per bin maximising the weighted mean accuracy with weighted mean
    cost within the budget — greedy upgrades along each bin's hull, steepest first."""
    hulls = [_hull([(c, a, cell) for cell, (a, c) in table.items() if math.isfinite(a) and math.isfinite(c)])
             for table in tables]
    if any(not hull for hull in hulls):
        raise WidthdepthError("a difficulty bin has no plan estimable on all its problems; use fewer --bins")
    state = [0] * len(hulls)
    steps = []
    for b, hull in enumerate(hulls):
        for i in range(1, len(hull)):
            slope = (hull[i][1] - hull[i - 1][1]) / max(hull[i][0] - hull[i - 1][0], 1e-300)
            steps.append((-slope, b, i))
    steps.sort()
    path = [list(state)]
    for _, b, i in steps:  # within a bin slopes fall, so its steps come in order
        state[b] = max(state[b], i)
        path.append(list(state))
    out = []
    for budget in budgets:
        best = path[0]
        for candidate in path:
            if sum(w * hulls[b][s][0] for b, (w, s) in enumerate(zip(weights, candidate))) <= budget * (1 + 1e-9):
                best = candidate
        cost = sum(w * hulls[b][s][0] for b, (w, s) in enumerate(zip(weights, best)))
        accuracy = sum(w * hulls[b][s][1] for b, (w, s) in enumerate(zip(weights, best)))
        out.append((budget, [hulls[b][s][2] for b, s in enumerate(best)], accuracy, cost))
    return out


def _bin_tables(records: list[ProblemRecord], bins_of: list[int], n_bins: int,
                which: str) -> tuple[list[dict[Cell, tuple[float, float]]], list[float]]:
    tables, weights = [], []
    for b in range(n_bins):
        members = [r for r, bb in zip(records, bins_of) if bb == b]
        weights.append(len(members) / len(records))
        table = {}
        if members:
            for cell in getattr(members[0], which):
                values = np.array([getattr(r, which)[cell] for r in members])
                if np.isfinite(values).all():
                    table[cell] = (float(values[:, 0].mean()), float(values[:, 1].mean()))
        tables.append(table)
    return tables, weights


def budget_levels(records: list[ProblemRecord], points: int = BUDGET_LEVELS) -> list[float]:
    """Log-spaced mean budgets from the probe alone to the largest cell (costs only: no gold used)."""
    costs = [np.mean([r.adaptive[c][1] for r in records]) for c in records[0].adaptive]
    costs = [c for c in costs if math.isfinite(c) and c > 0]
    low, high = min(costs), max(costs)
    return [float(b) for b in np.geomspace(low, high, points)] if high > low else [low]


def fit_policy(records: list[ProblemRecord], predictor: str, probe: int, bins: int, unit: str,
               budgets: list[float] | None = None, oracle: bool = False) -> Policy:
    """Bins on the training problems' predictor values (or their oracle difficulty), then the
    allocation per budget level. An oracle policy runs no probe: its cells are fixed plans."""
    if not records:
        raise WidthdepthError("no training problems to fit a policy on")
    values = [r.oracle if oracle else r.predictors[predictor] for r in records]
    edges = quantile_edges(values, bins)
    bins_of = [int(np.searchsorted(edges, v, side="right")) for v in values]
    tables, weights = _bin_tables(records, bins_of, len(edges) + 1, "fixed" if oracle else "adaptive")
    levels = [Level(budget, plans, accuracy, cost) for budget, plans, accuracy, cost in
              allocate(tables, weights, budgets or budget_levels(records))]
    if budgets is None:  # a saved policy only keeps levels it can keep (judging uses given budgets as they come)
        levels = [level for level in levels if level.train_cost <= level.budget * (1 + 1e-9)]
    return Policy("oracle" if oracle else predictor, 0 if oracle else probe, unit, edges, weights, levels,
                  sorted(short_key(r.key) for r in records))


# -- evaluation ---------------------------------------------------------------------------------------
@dataclass
class CurvePoint:
    budget: float
    cost: float
    accuracy: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    plans: list[Cell] = field(default_factory=list)


@dataclass
class Evaluation:
    unit: str
    predictor: str
    probe: int
    problems: int
    adaptive: list[CurvePoint]
    oracle: list[CurvePoint]
    baselines: dict[str, list[CurvePoint]]
    """width_majority, width_best_of, depth, hybrid, best_fixed: Pareto points of fixed plans on the
    held-out problems (chosen on them: the baselines' best case)."""
    ratios: list[dict[str, float]]
    """Per adaptive point: the compute each baseline needs for the same accuracy, over adaptive's."""
    folds: int = 0
    width_matched: list[dict[str, Any]] = field(default_factory=list)
    """Per width-only plan: its cost and accuracy, the compute adaptive needs for that accuracy, and
    the ratio (the comparison at equal accuracy, finite wherever adaptive reaches width's accuracy)."""

    def to_json(self) -> dict[str, Any]:
        def points(curve: list[CurvePoint]) -> list[dict]:
            return [{"budget": p.budget, "cost": p.cost, "accuracy": p.accuracy, "ci_low": p.ci_low,
                     "ci_high": p.ci_high, "plans": [list(c) for c in p.plans]} for p in curve]

        return {"unit": self.unit, "predictor": self.predictor, "probe": self.probe, "problems": self.problems,
                "folds": self.folds, "adaptive": points(self.adaptive), "oracle": points(self.oracle),
                "baselines": {k: points(v) for k, v in self.baselines.items()}, "ratios": self.ratios,
                "width_matched": self.width_matched}


BASELINES = {
    "width_majority": lambda w, d, a: d == 1 and a == "majority",
    "width_best_of": lambda w, d, a: d == 1 and a == "best_of",
    "depth": lambda w, d, a: w == 1,
    "hybrid": lambda w, d, a: w >= 2 and d >= 2,
    "best_fixed": lambda w, d, a: True,
}


def _pareto(points: list[CurvePoint]) -> list[CurvePoint]:
    out: list[CurvePoint] = []
    for p in sorted(points, key=lambda p: (p.cost, -p.accuracy)):
        if not out or p.accuracy > out[-1].accuracy + 1e-12:
            out.append(p)
    return out


def needed_cost(curve: list[CurvePoint], accuracy: float) -> float:
    """The cost at which a Pareto curve first reaches `accuracy`, log-linear between its points;
    inf where it never does."""
    for i, p in enumerate(curve):
        if p.accuracy >= accuracy - 1e-12:
            if i == 0:
                return p.cost
            q = curve[i - 1]
            t = (accuracy - q.accuracy) / (p.accuracy - q.accuracy)
            return float(math.exp(math.log(q.cost) + t * (math.log(p.cost) - math.log(q.cost))))
    return math.inf


def _interval(values: np.ndarray) -> tuple[float, float]:
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    means = values[rng.integers(0, len(values), size=(BOOTSTRAP_SAMPLES, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _apply(level_plans: list[tuple[float, list[Cell]]], records: list[ProblemRecord], bins_of: list[int],
           which: str) -> list[tuple[np.ndarray, np.ndarray, list[Cell]]]:
    """Per level: the per-problem accuracy and cost of the plan each problem's bin gets."""
    out = []
    for _, plans in level_plans:
        chosen = [getattr(r, which)[plans[b]] for r, b in zip(records, bins_of)]
        out.append((np.array([c[0] for c in chosen]), np.array([c[1] for c in chosen]), plans))
    return out


def _curve(budgets: list[float], per_level: list[tuple[np.ndarray, np.ndarray, list[Cell]]]) -> list[CurvePoint]:
    curve = []
    for budget, (accuracy, cost, plans) in zip(budgets, per_level):
        low, high = _interval(accuracy)
        curve.append(CurvePoint(budget, float(cost.mean()), float(accuracy.mean()), low, high, plans))
    return curve


def _held_out(policy: Policy, records: list[ProblemRecord]) -> list[tuple[np.ndarray, np.ndarray, list[Cell]]]:
    oracle = policy.predictor == "oracle"
    values = [r.oracle if oracle else r.predictors[policy.predictor] for r in records]
    bins_of = [policy.bin_of(v) for v in values]
    return _apply([(lv.budget, lv.plans) for lv in policy.levels], records, bins_of, "fixed" if oracle else "adaptive")


def _finish(unit: str, predictor: str, probe: int, test: list[ProblemRecord], budgets: list[float],
            adaptive: list[tuple[np.ndarray, np.ndarray, list[Cell]]],
            oracle: list[tuple[np.ndarray, np.ndarray, list[Cell]]], folds: int = 0) -> Evaluation:
    baselines = {}
    for name, keep in BASELINES.items():
        points = []
        for cell in test[0].fixed:
            if not keep(*cell):
                continue
            values = np.array([r.fixed[cell] for r in test])
            if np.isfinite(values).all():
                low, high = _interval(values[:, 0])
                points.append(CurvePoint(math.nan, float(values[:, 1].mean()), float(values[:, 0].mean()),
                                         low, high, [cell]))
        if points:
            baselines[name] = _pareto(points)
    adaptive_curve = _curve(budgets, adaptive)
    ratios = []
    for point in adaptive_curve:
        row = {"budget": point.budget, "cost": point.cost, "accuracy": point.accuracy}
        for name, curve in baselines.items():
            row[name] = needed_cost(curve, point.accuracy) / point.cost
        width = [row[n] for n in ("width_majority", "width_best_of") if n in row]
        row["width"] = min(width) if width else math.nan
        ratios.append(row)
    adaptive_front = _pareto(adaptive_curve)
    width_front = _pareto([p for n in ("width_majority", "width_best_of") for p in baselines.get(n, [])])
    matched = []
    for point in width_front:
        needs = needed_cost(adaptive_front, point.accuracy)
        w, d, aggregator = point.plans[0]
        matched.append({"w": w, "d": d, "aggregator": aggregator, "cost": point.cost, "accuracy": point.accuracy,
                        "adaptive_cost": needs, "ratio": point.cost / needs})
    return Evaluation(unit, predictor, probe, len(test), adaptive_curve, _curve(budgets, oracle), baselines,
                      ratios, folds, matched)


def evaluate(policy: Policy, records: list[ProblemRecord]) -> Evaluation:
    """The policy on the problems it was not fitted on (an error if there are none), against
    gold-binned allocation at the same budgets: fitted on the policy's training problems where
    they are in `records`, else by 5-fold cross-validation over the held-out problems."""
    fitted = set(policy.fitted_on)
    test = [r for r in records if short_key(r.key) not in fitted]
    if not test:
        raise WidthdepthError("every problem here was used to fit the policy: evaluate it on other problems "
                              "(a run with another --seed, or `allocate fit --holdout`)")
    raise_if_incompatible(policy, test)
    budgets = [lv.budget for lv in policy.levels]
    train = [r for r in records if short_key(r.key) in fitted]
    if train:
        oracle = _held_out(fit_policy(train, "oracle", 0, policy.bins, policy.unit, budgets, oracle=True), test)
    elif len(test) >= 2:
        oracle = _cross_validated(test, "oracle", 0, policy.bins, policy.unit, min(5, len(test)), 0, budgets,
                                  oracle=True)
    else:
        oracle = []
    return _finish(policy.unit, policy.predictor, policy.probe, test, budgets, _held_out(policy, test), oracle)


def raise_if_incompatible(policy: Policy, records: list[ProblemRecord]) -> None:
    cells = set(records[0].adaptive)
    missing = [p for lv in policy.levels for p in lv.plans if p not in cells]
    if missing:
        w, d, a = missing[0]
        raise WidthdepthError(f"the policy's plan {w}x{d} {a} is outside this run's grid; evaluate it on a "
                              f"run of {policy.grid or 'the grid it was fitted on'}")


def split(records: list[ProblemRecord], holdout: float, seed: int) -> tuple[list[ProblemRecord], list[ProblemRecord]]:
    """(train, test): a problem is held out when its hash with `seed` falls below `holdout`."""
    if not 0.0 < holdout < 1.0:
        raise WidthdepthError(f"--holdout {holdout:g}: must be between 0 and 1 (a share of the problems)")
    test = [r for r in records if int(stable_hash(seed, r.key)[:8], 16) / 16 ** 8 < holdout]
    keys = {r.key for r in test}
    train = [r for r in records if r.key not in keys]
    if not train or not test:
        raise WidthdepthError(f"--holdout {holdout:g}: {len(records)} problems leave an empty split; "
                              "use more problems or --folds")
    return train, test


def fold_assignment(keys: list[str], folds: int, seed: int) -> list[int]:
    """The fold of each record, by problem: records of one problem (the same problem in runs with
    another seed) share a fold, so no problem is trained on and judged at once."""
    distinct = sorted(set(keys), key=lambda key: stable_hash(seed, key))
    fold_of_key = {key: n % folds for n, key in enumerate(distinct)}
    return [fold_of_key[key] for key in keys]


def cross_validate(records: list[ProblemRecord], predictor: str, probe: int, bins: int, unit: str,
                   folds: int, seed: int = 0) -> Evaluation:
    """k-fold: every problem is judged by a policy fitted on the other folds (same budget levels),
    and so is the gold-binned allocation."""
    problems = len({r.key for r in records})
    if folds < 2 or folds > problems:
        message = f"--folds {folds}: must be between 2 and the number of problems ({problems})"
        left_out = getattr(records, "left_out", 0)
        raise WidthdepthError(message + (f"; {left_out} more were left out because their grid is incomplete "
                                         "(rerun the grid's `widthdepth run` command to complete it)" if left_out else ""))
    budgets = budget_levels(records)
    adaptive = _cross_validated(records, predictor, probe, bins, unit, folds, seed, budgets)
    oracle = _cross_validated(records, "oracle", 0, bins, unit, folds, seed, budgets, oracle=True)
    return _finish(unit, predictor, probe, records, budgets, adaptive, oracle, folds)


def _cross_validated(records: list[ProblemRecord], predictor: str, probe: int, bins: int, unit: str, folds: int,
                     seed: int, budgets: list[float], oracle: bool = False) -> list[tuple[np.ndarray, np.ndarray, list[Cell]]]:
    fold_of = fold_assignment([r.key for r in records], folds, seed)
    out = [(np.zeros(len(records)), np.zeros(len(records)), []) for _ in budgets]
    for f in range(folds):
        test_idx = [i for i in range(len(records)) if fold_of[i] == f]
        train = [records[i] for i in range(len(records)) if fold_of[i] != f]
        policy = fit_policy(train, predictor, probe, bins, unit, budgets, oracle=oracle)
        for level, (accuracy, cost, _) in zip(out, _held_out(policy, [records[i] for i in test_idx])):
            level[0][test_idx], level[1][test_idx] = accuracy, cost
    return out


# -- from a run folder ----------------------------------------------------------------------------------
@dataclass
class Selection:
    """The grid traces a policy is fitted on or judged with, and what they share."""

    traces: list[GridTrace]
    model: str
    grid: str
    mode: str
    unit: str
    predictor: str
    probe: int

    @property
    def tasks(self) -> list[str]:
        return [t.task for t in self.traces]


def select(folder: str | Path, tasks: list[str] | None = None, plan: str | None = None, model: str | None = None,
           predictor: str = "auto", probe: int = 0, unit: str = "auto") -> Selection:
    """One model's grid traces of one shape from a run folder (by default the model and grid with the
    most problems), with `auto` settings resolved: unit flops for latent reasoners, else generated
    tokens; predictor confidence where every attempt carries one, else agreement; probe 1 for
    confidence and verifier, 4 for agreement."""
    from widthdepth.analysis.traces import load_grid_traces
    from widthdepth.plans import load_plan
    from widthdepth.store import Store

    store = Store.open(folder, create=False)
    try:
        traces = load_grid_traces(store)
    finally:
        store.close()
    traces = [t for t in traces if t.plan.rounds >= 1 and t.plan.chains >= 2]
    if not traces:
        raise WidthdepthError(f"{folder}: no grid run with at least 2 chains; run e.g. "
                              "`widthdepth run --plan grid:16x8` first")
    if model:
        kept = [t for t in traces if t.model == model or ("@" not in model and t.model.split("@")[0] == model)]
        if not kept:
            raise WidthdepthError(f"{folder}: no grid run of {model} (another model: it has "
                                  f"{', '.join(sorted({t.model for t in traces}))})")
        traces = kept
    if plan:
        wanted = load_plan(plan, option="--plan").spec
        kept = [t for t in traces if t.plan.spec == wanted]
        if not kept:
            raise WidthdepthError(f"{folder}: no {wanted} run{f' of {model}' if model else ''} (another grid: it "
                                  f"has {', '.join(sorted({t.plan.spec for t in traces}))})")
        traces = kept
    if tasks:
        unknown = [t for t in tasks if t not in {tr.task for tr in traces}]
        if unknown:
            raise WidthdepthError(f"--task {unknown[0]!r}: not in {folder} (has: "
                                  f"{', '.join(sorted({tr.task for tr in traces})) or 'nothing'})")
        traces = [t for t in traces if t.task in tasks]
    sizes_by_shape: Counter = Counter()
    for t in traces:
        sizes_by_shape[(t.model, t.plan.spec)] += len(t.problems)
    chosen_model, grid = max(sizes_by_shape, key=lambda k: (sizes_by_shape[k], k))
    traces = [t for t in traces if (t.model, t.plan.spec) == (chosen_model, grid)]
    if unit == "auto":
        unit = "flops" if traces[0].latent else "generated_tokens"
    if unit not in UNITS:
        raise WidthdepthError(f"--unit {unit!r}: unknown (valid: auto, {', '.join(UNITS)})")
    if predictor == "auto":
        has_confidence = all(a.confidence is not None for t in traces for p in t.problems for c in p.chains
                             for a in c[:1] if not a.failed)
        predictor = "confidence" if has_confidence else "agreement"
    if predictor not in PREDICTORS:
        raise WidthdepthError(f"--predictor {predictor!r}: unknown (valid: auto, {', '.join(PREDICTORS)})")
    if probe == 0:
        probe = 4 if predictor == "agreement" else 1
    if probe < 1:
        raise WidthdepthError(f"--probe {probe}: must be at least 1 (attempts in the probe)")
    if predictor == "agreement" and probe < 2:
        raise WidthdepthError("--probe 1 with --predictor agreement: one attempt always agrees with itself; "
                              "use --probe 4")
    return Selection(traces, chosen_model, grid, traces[0].plan.mode, unit, predictor, probe)


def fit_from(selection: Selection, bins: int = 3, holdout: float = 0.5, seed: int = 0,
             records: Records | None = None) -> tuple[Policy, list[ProblemRecord], list[ProblemRecord], int]:
    """Fit on the problems not held out (the selection's records, unless given); returns (policy,
    train, test, problems left out for an incomplete grid)."""
    if records is None:
        records = problem_records(selection.traces, selection.probe, selection.unit, selection.predictor)
    train, test = (records, []) if holdout == 0 else split(records, holdout, seed)
    policy = fit_policy(train, selection.predictor, selection.probe, bins, selection.unit)
    policy.grid, policy.mode, policy.model, policy.tasks = selection.grid, selection.mode, selection.model, selection.tasks
    policy.verifier = ", ".join(sorted({t.verifier for t in selection.traces if t.verifier}))
    return policy, train, test, records.left_out


def save_evaluation(evaluation: Evaluation, folder: str | Path, policy_path: str = "") -> Path:
    path = Path(folder) / "allocation.json"
    data = evaluation.to_json()
    data["policy"] = policy_path

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, list):
            return [finite(v) for v in value]
        return value

    path.write_text(json.dumps(finite(data), indent=1) + "\n")
    return path
