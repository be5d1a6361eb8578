"""The verdict: per task structure and budget, does width, depth or a hybrid win, by how much, and
how sure are we? And where does the winner change (crossovers)?

For each budget the best cell of each strategy (see `frontier`) is taken on all problems; the winner
is the most accurate, and the sentence gives its accuracy, the runner-up's and their difference.
Whether the win is *significant* is decided by a selection-aware test (`heldout`): the cells are
chosen again on one half of the problems and their differences measured on the other half, with
intervals simultaneous over every comparison of the verdict. A win is significant when the choosing
half picks the same winner and the testing half confirms it against every other strategy.
Budgets are shared by all tasks of a family, so winners can be compared across structure values.

    verdict = build_verdict(surface, unit="generated_tokens")
    print(verdict.sentences())
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from widthdepth.analysis.frontier import Cell, budgets_for, cells
from widthdepth.analysis.heldout import (COMPARED, MIN_TESTED, HeldOutTest, critical_value, held_out_test, label,
                                         lower_bound, ranked_strategies, split_problems)
from widthdepth.analysis.surface import Surface, TraceSurface

UNIT_WORDS = {"generated_tokens": "generated tokens", "flops": "FLOPs", "serial_tokens": "serial tokens"}
__all__ = ["COMPARED", "UNIT_WORDS", "Crossover", "Judgement", "Verdict", "build_verdict", "fmt_budget", "judge"]


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
    """strategy -> accuracy of its best cell within the budget, on all problems."""
    cells: dict[str, str]
    """strategy -> "w×d aggregator" of its best cell within the budget, on all problems."""
    difference: float
    """Winner minus runner-up, on all problems (descriptive: these cells were chosen on the same data)."""
    held_out_difference: float
    """The same, for the cells chosen on the choosing half, measured on the testing half."""
    lower_bound: float
    """95% lower confidence bound of `held_out_difference`, simultaneous over every comparison of the
    verdict (`heldout`); the win is significant when it and the other comparisons' bounds are above 0."""
    significant: bool
    chosen_by_half: str | None
    """The winner on the choosing half (None where it has no winner)."""
    held_out_cells: dict[str, str]
    """strategy -> the cell chosen on the choosing half."""

    def merge_key(self) -> tuple:
        """Judgements with equal keys say the same thing at different budgets."""
        contest = [self.winner, self.runner_up]
        return (self.task, self.plan, self.winner, self.runner_up, [self.cells.get(s) for s in contest if s],
                self.significant)

    def sentence(self, up_to: float | None = None) -> str:
        """One plain sentence; with `up_to`, for the whole range of budgets from this one to `up_to`."""
        budget = fmt_budget(self.budget, self.unit)
        where = f"{self.task}, budget ≤ {budget}"
        if up_to is not None and up_to > self.budget:
            low, high = fmt_budget(self.budget, self.unit).split(" ", 1)[0], fmt_budget(up_to, self.unit)
            where = f"{self.task}, budgets {low}–{high}"
        if self.runner_up is None:
            cell = next(iter(self.cells.values()))
            return f"{where}: only {cell} fits, accuracy {max(self.accuracy.values()):.2f}."
        if self.winner == "tie":
            best = self.cells[self.runner_up]
            return (f"{where}: no strategy wins; the best is {best} at {max(self.accuracy.values()):.2f}, "
                    "and more compute within this budget does not beat it.")
        digits = 3 if abs(self.difference) < 0.01 else 2  # a tiny difference must not read +0.00
        head = (f"{where}: {self.winner} wins, {self.accuracy[self.winner]:.{digits}f} vs "
                f"{self.accuracy[self.runner_up]:.{digits}f} for {self.runner_up} ({self.cells[self.winner]} vs "
                f"{self.cells[self.runner_up]}; difference {self.difference:+.{digits}f}")
        if self.chosen_by_half != self.winner:
            why = (f"the half of the problems that chooses picks {self.chosen_by_half}" if self.chosen_by_half
                   else "the half of the problems that chooses shows no winner")
            return f"{head}; not significant: {why})."
        if not math.isfinite(self.lower_bound):
            return (f"{head}; not significant: the held-out half cannot test it — fewer than {MIN_TESTED} "
                    "problems with both cells, or a strategy not chosen there).")
        sure = "significant" if self.significant else "not significant"
        bound = 3 if abs(self.lower_bound) < 0.01 else digits  # a bound just above 0 must not read +0.00
        return (f"{head}; on held-out problems {self.held_out_difference:+.{digits}f}, at least "
                f"{self.lower_bound:+.{bound}f} at 95% confidence, {sure}).")


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
                    f"{fmt_budget(self.at, self.unit)}.")
        return (f"{self.family} at budget {self.where}: {self.before} wins below structure value {self.at:g}, "
                f"{self.after} from there on.")


@dataclass
class Verdict:
    unit: str
    judgements: list[Judgement] = field(default_factory=list)
    crossovers: list[Crossover] = field(default_factory=list)
    critical: float = math.nan
    """The one-sided max-T critical value shared by every held-out lower bound of this verdict (1.645
    would be one comparison alone)."""

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
        return {"unit": self.unit, "critical": self.critical,
                "judgements": [{**asdict(j), "sentence": j.sentence()} for j in self.judgements],
                "crossovers": [{**asdict(c), "sentence": c.sentence()} for c in self.crossovers]}


def fmt_budget(value: float, unit: str) -> str:
    for suffix, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{suffix} {UNIT_WORDS[unit]}"
    return f"{value:.3g} {UNIT_WORDS[unit]}"


def judge(ts: TraceSurface, unit: str, budget: float, test: HeldOutTest | None = None,
          critical: float = math.nan, candidates: list[Cell] | None = None) -> Judgement | None:
    """The judgement at one budget: the strategies' best cells on all problems (what the frontier
    shows; `candidates` = `cells(ts, unit)` if given), and, given the held-out test and the verdict's
    critical value, whether it is significant."""
    candidates = cells(ts, unit) if candidates is None else candidates
    ranked, present = ranked_strategies(candidates, budget)
    if not present:
        return None
    first = ranked[0]
    common = dict(task=ts.trace.task, plan=ts.trace.plan.spec, family=ts.family,
                  structure=ts.structure, unit=unit, budget=budget,
                  accuracy={s: c.accuracy for s, c in present.items()},
                  cells={s: label(c) for s, c in present.items()})
    untested = dict(held_out_difference=math.nan, lower_bound=math.nan, significant=False,
                    chosen_by_half=test.winner if test else None, held_out_cells=test.cells if test else {})
    if len(ranked) == 1:
        fitting = {(c.w, c.d) for c in candidates if c.cost <= budget * (1 + 1e-9)}
        if len(fitting) > 1:  # more compute fits but buys nothing: every strategy's best is the same cell
            return Judgement(**common, winner="tie", runner_up=first, difference=0.0, **untested)
        return Judgement(**common, winner="none", runner_up=None, difference=math.nan, **untested)
    second = ranked[1]
    difference = present[first].accuracy - present[second].accuracy
    if difference < 1e-12:
        return Judgement(**common, winner="tie", runner_up=second, difference=0.0, **untested)
    comparison = test.comparisons.get(second) if test and test.winner == first else None
    if comparison is None:
        return Judgement(**common, winner=first, runner_up=second, difference=difference, **untested)
    # the claim is "first beats every other strategy": each comparison must clear zero
    confirmed = all(lower_bound(c, critical) > 0 for c in test.comparisons.values()) and \
        set(test.comparisons) >= set(ranked[1:])
    return Judgement(**common, winner=first, runner_up=second, difference=difference,
                     held_out_difference=comparison.difference, lower_bound=lower_bound(comparison, critical),
                     significant=bool(confirmed), chosen_by_half=test.winner, held_out_cells=test.cells)


def build_verdict(surface: Surface, unit: str = "generated_tokens") -> Verdict:
    verdict = Verdict(unit)
    by_family: dict[str, list[TraceSurface]] = defaultdict(list)
    for ts in surface.traces:
        if ts.trace.problem_count:
            by_family[ts.trace.task.split(":", 1)[0]].append(ts)
    # every budget of every task is tested first: the comparisons share one critical value
    plan: list[tuple[str, TraceSurface, list[Cell], list[tuple[float, HeldOutTest]]]] = []
    for family, members in by_family.items():
        candidates = {id(ts): cells(ts, unit) for ts in members}
        budgets = budgets_for([c.cost for ts in members for c in candidates[id(ts)]], points=6)
        for ts in sorted(members, key=lambda t: t.structure):
            split = split_problems(ts)
            on_half = cells(ts, unit, problems=split.choose)
            plan.append((family, ts, candidates[id(ts)], [(b, held_out_test(ts, split, on_half, b)) for b in budgets]))
    verdict.critical = critical_value([c for *_, tests in plan for _, t in tests for c in t.comparisons.values()])
    winners: dict[tuple[str, float], list[tuple[float, str]]] = defaultdict(list)
    for family, ts, candidates, tests in plan:
        previous: Judgement | None = None
        for budget, test in tests:
            judgement = judge(ts, unit, budget, test, verdict.critical, candidates)
            if judgement is None:
                continue
            verdict.judgements.append(judgement)
            # only significant winners mark a crossover: a change inside the noise is not one
            winners[(family, budget)].append((judgement.structure, judgement.winner if judgement.significant else ""))
            if previous is not None and judgement.winner != previous.winner and judgement.significant \
                    and previous.significant:
                verdict.crossovers.append(Crossover("budget", family, unit, ts.trace.task, previous.winner,
                                                    judgement.winner, math.sqrt(previous.budget * budget)))
            previous = judgement
    for (family, budget), by_structure in winners.items():
        ordered = sorted((s, w) for s, w in by_structure if math.isfinite(s))
        for (s0, w0), (s1, w1) in zip(ordered, ordered[1:]):
            if w0 != w1 and "" not in (w0, w1):
                verdict.crossovers.append(Crossover("structure", family, unit, fmt_budget(budget, unit), w0, w1, s1))
    return verdict
