"""The verdict: per task structure and budget, does width, depth or a hybrid win, by how much, and
how sure are we? And where does the winner change (crossovers)?

For each budget the best cell of each strategy (see `frontier`) is taken; the winner is the most
accurate, compared with the runner-up by a paired bootstrap over problems (the same resampled
problems for both cells). The difference counts as significant when its 95% interval excludes 0.
Budgets are shared by all tasks of a family, so winners can be compared across structure values.

    verdict = build_verdict(surface, unit="generated_tokens")
    print(verdict.sentences())
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field

import numpy as np

from widthdepth.analysis.frontier import Cell, best_within, budgets_for, cells
from widthdepth.analysis.surface import Surface, TraceSurface

COMPARED = ("width", "depth", "hybrid")
UNIT_WORDS = {"generated_tokens": "generated tokens", "flops": "FLOPs", "serial_tokens": "serial tokens"}


@dataclass(frozen=True)
class Judgement:
    task: str
    plan: str
    family: str
    structure: float
    unit: str
    budget: float
    winner: str
    """"width", "depth", "hybrid", "tie" (equal accuracy), or "none" (a single allocation fits)."""
    runner_up: str | None
    accuracy: dict[str, float]
    cells: dict[str, str]
    """strategy -> "w×d aggregator" of its best cell within the budget."""
    difference: float
    ci_low: float
    ci_high: float
    significant: bool

    def merge_key(self) -> tuple:
        """Judgements with equal keys say the same thing at different budgets."""
        contest = [self.winner, self.runner_up]
        return (self.task, self.plan, self.winner, self.runner_up, [self.cells.get(s) for s in contest if s],
                self.significant)

    def sentence(self, up_to: float | None = None) -> str:
        """One plain sentence; with `up_to`, for the whole range of budgets from this one to `up_to`."""
        budget = _fmt_budget(self.budget, self.unit)
        where = f"{self.task}, budget ≤ {budget}"
        if up_to is not None and up_to > self.budget:
            low, high = _fmt_budget(self.budget, self.unit).split(" ", 1)[0], _fmt_budget(up_to, self.unit)
            where = f"{self.task}, budgets {low}–{high}"
        if self.runner_up is None:
            cell = next(iter(self.cells.values()))
            return f"{where}: only {cell} fits, accuracy {max(self.accuracy.values()):.2f}."
        if self.winner == "tie":
            best = self.cells[self.runner_up]
            return (f"{where}: no strategy wins; the best is {best} at {max(self.accuracy.values()):.2f}, "
                    "and more compute within this budget does not beat it.")
        sure = "significant" if self.significant else "not significant"
        digits = 3 if abs(self.difference) < 0.01 else 2  # a tiny but significant difference must not read +0.00
        return (f"{where}: {self.winner} wins, {self.accuracy[self.winner]:.{digits}f} vs "
                f"{self.accuracy[self.runner_up]:.{digits}f} for {self.runner_up} ({self.cells[self.winner]} vs "
                f"{self.cells[self.runner_up]}; difference {self.difference:+.{digits}f}, 95% CI "
                f"{self.ci_low:+.{digits}f} to {self.ci_high:+.{digits}f}, {sure}).")


@dataclass(frozen=True)
class Crossover:
    kind: str
    """"budget" (the winner changes as the budget grows) or "structure" (as the structure value grows).
    Only changes between significant winners count."""
    family: str
    unit: str
    where: str
    before: str
    after: str
    at: float

    def sentence(self) -> str:
        if self.kind == "budget":
            return (f"{self.where}: the winner changes from {self.before} to {self.after} at about "
                    f"{_fmt_budget(self.at, self.unit)}.")
        return (f"{self.family} at budget {self.where}: {self.before} wins below structure value {self.at:g}, "
                f"{self.after} from there on.")


@dataclass
class Verdict:
    unit: str
    judgements: list[Judgement] = field(default_factory=list)
    crossovers: list[Crossover] = field(default_factory=list)

    def sentences(self) -> list[str]:
        return [j.sentence() for j in self.judgements] + [c.sentence() for c in self.crossovers]

    def summary(self) -> list[tuple[str, bool]]:
        """Sentences with runs of budgets that pick the same cells merged into one range; each with
        whether its difference is significant."""
        out: list[tuple[str, bool]] = []
        run: list[Judgement] = []
        for judgement in self.judgements + [None]:  # type: ignore[list-item]
            if run and (judgement is None or judgement.merge_key() != run[0].merge_key()):
                out.append((run[0].sentence(up_to=run[-1].budget), run[0].significant))
                run = []
            if judgement is not None:
                run.append(judgement)
        return out + [(c.sentence(), False) for c in self.crossovers]

    def to_json(self) -> dict:
        return {"unit": self.unit, "judgements": [{**asdict(j), "sentence": j.sentence()} for j in self.judgements],
                "crossovers": [{**asdict(c), "sentence": c.sentence()} for c in self.crossovers]}


def _fmt_budget(value: float, unit: str) -> str:
    for suffix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix} {UNIT_WORDS[unit]}"
    return f"{value:.3g} {UNIT_WORDS[unit]}"


def _label(cell: Cell) -> str:
    return f"{cell.w}×{cell.d} {cell.aggregator}"


def paired_difference(ts: TraceSurface, a: Cell, b: Cell) -> tuple[float, float, float]:
    diff = ts.accuracy[(a.w, a.d, a.aggregator)] - ts.accuracy[(b.w, b.d, b.aggregator)]
    if not np.isfinite(diff).any():
        return math.nan, math.nan, math.nan
    means = ts.bootstrap_means(diff)
    return float(np.nanmean(diff)), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def judge(ts: TraceSurface, unit: str, budget: float) -> Judgement | None:
    candidates = cells(ts, unit)
    best = {s: best_within(candidates, budget, s) for s in COMPARED}
    present = {s: c for s, c in best.items() if c is not None}
    if not present:
        return None
    ranked = sorted(present, key=lambda s: (-present[s].accuracy, present[s].cost))
    distinct: list[str] = []
    for strategy in ranked:  # (1, 1) is both width and depth: one cell, not a contest
        if all(present[strategy] != present[other] for other in distinct):
            distinct.append(strategy)
    ranked = distinct
    first = ranked[0]
    common = dict(task=ts.trace.task, plan=ts.trace.plan.spec, family=ts.family,
                  structure=ts.structure, unit=unit, budget=budget,
                  accuracy={s: c.accuracy for s, c in present.items()},
                  cells={s: _label(c) for s, c in present.items()})
    if len(ranked) == 1:
        fitting = {(c.w, c.d) for c in candidates if c.cost <= budget * (1 + 1e-9)}
        if len(fitting) > 1:  # more compute fits but buys nothing: every strategy's best is the same cell
            return Judgement(**common, winner="tie", runner_up=first, difference=0.0, ci_low=0.0, ci_high=0.0,
                             significant=False)
        return Judgement(**common, winner="none", runner_up=None, difference=math.nan, ci_low=math.nan,
                         ci_high=math.nan, significant=False)
    second = ranked[1]
    if present[first].accuracy - present[second].accuracy < 1e-12:
        return Judgement(**common, winner="tie", runner_up=second, difference=0.0, ci_low=0.0, ci_high=0.0,
                         significant=False)
    diff, low, high = paired_difference(ts, present[first], present[second])
    return Judgement(**common, winner=first, runner_up=second, difference=diff, ci_low=low, ci_high=high,
                     significant=bool(low > 0))


def build_verdict(surface: Surface, unit: str = "generated_tokens") -> Verdict:
    verdict = Verdict(unit)
    by_family: dict[str, list[TraceSurface]] = defaultdict(list)
    for ts in surface.traces:
        if ts.trace.problems:
            by_family[ts.trace.task.split(":", 1)[0]].append(ts)
    for family, members in by_family.items():
        budgets = budgets_for([c.cost for ts in members for c in cells(ts, unit)], points=6)
        winners: dict[float, list[tuple[float, str]]] = defaultdict(list)
        for ts in sorted(members, key=lambda t: t.structure):
            previous: Judgement | None = None
            for budget in budgets:
                judgement = judge(ts, unit, budget)
                if judgement is None:
                    continue
                verdict.judgements.append(judgement)
                # only significant winners mark a crossover: a change inside the noise is not one
                winners[budget].append((judgement.structure, judgement.winner if judgement.significant else ""))
                if previous is not None and judgement.winner != previous.winner and judgement.significant \
                        and previous.significant:
                    verdict.crossovers.append(Crossover("budget", family, unit, ts.trace.task, previous.winner,
                                                        judgement.winner, math.sqrt(previous.budget * budget)))
                previous = judgement
        for budget, by_structure in winners.items():
            ordered = sorted((s, w) for s, w in by_structure if math.isfinite(s))
            for (s0, w0), (s1, w1) in zip(ordered, ordered[1:]):
                if w0 != w1 and "" not in (w0, w1):
                    verdict.crossovers.append(Crossover("structure", family, unit, _fmt_budget(budget, unit),
                                                        w0, w1, s1))
    return verdict
