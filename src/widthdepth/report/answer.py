"""The report's top screen: the answer in a few plain sentences and one phase diagram over every task
structure — which strategy wins at each budget, and whether the win survives the held-out test.

    sentences = answer(verdict, comparisons)      # one per task family, one for the methods
    spec, rows = phase_chart(verdict, comparisons, "FLOPs")
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from widthdepth.analysis.verdict import Judgement, Verdict, fmt_budget
from widthdepth.plans import short_plan
from widthdepth.report.charts import COLOURS, SCHEMA, SHAPES, WINNERS, rounded


def _who(j: Judgement) -> str:
    return j.winner if j.winner in ("width", "depth", "hybrid") else "no winner"


def task_labels(tasks: list[str], compact: bool = False) -> dict[str, str]:
    """Short names: within a family, the parameters that tell its tasks apart ("chain L=4"); a family's
    only task keeps all of its parameters (`compact`: none, its family's name alone)."""
    by_family: dict[str, list[str]] = defaultdict(list)
    for task in dict.fromkeys(tasks):
        by_family[task.partition(":")[0]].append(task)
    out = {}
    for family, members in by_family.items():
        params = {t: [p for p in t.partition(":")[2].split(",") if p] for t in members}
        sets = [set(p) for p in params.values()]
        differ = set.union(*sets) - set.intersection(*sets)
        for task in members:
            keep = [p for p in params[task] if p in differ] if len(members) > 1 else [] if compact else params[task]
            out[task] = f"{family} {','.join(keep)}" if keep else family
    return out


@dataclass(frozen=True)
class Segment:
    """Consecutive budgets of one task with the same winner ("single": only one attempt fits)."""

    who: str
    low: float
    high: float
    significant: int
    budgets: int

    def words(self, unit: str, first: bool, last: bool) -> str:
        if self.who == "single":
            head = "only a single attempt fits"
        elif self.who == "no winner":
            head = "no strategy wins"
        else:
            how = ("significant" if self.significant == self.budgets else "within the noise"
                   if not self.significant else f"significant at {self.significant} of {self.budgets} budgets")
            head = f"{self.who} wins ({how})"
        low, high = (_short_budget(b, unit) for b in (self.low, self.high))
        if first and last:
            return f"{head} at {'any' if self.who == 'no winner' else 'every'} budget"
        if self.budgets == 1:
            return f"{head} at {low}"
        if first:
            return f"{head} up to {high}"
        return f"{head} from {low}" + ("" if last else f" to {high}")


def _short_budget(value: float, unit: str) -> str:
    """"3.13M": the unit is in the heading."""
    return fmt_budget(value, unit).split(" ", 1)[0]


def segments(judgements: list[Judgement]) -> list[Segment]:
    out: list[Segment] = []
    for j in judgements:
        who = "single" if j.winner == "none" else _who(j)
        if out and out[-1].who == who:
            s = out[-1]
            out[-1] = Segment(who, s.low, j.budget, s.significant + j.significant, s.budgets + 1)
        else:
            out.append(Segment(who, j.budget, j.budget, int(j.significant), 1))
    return out


def task_phrase(judgements: list[Judgement], unit: str) -> str:
    """Who wins one task across its budgets, in words; budgets where a single attempt is all that fits,
    or where no strategy wins, are left out when some strategy wins elsewhere."""
    parts = segments(judgements)
    told = [s for s in parts if s.who not in ("single", "no winner")] or parts[-1:]
    def first(s: Segment) -> bool:  # only budgets where a single attempt fits come before it
        return all(p.who == "single" for p in parts[:parts.index(s)])

    return ", then ".join(s.words(unit, first(s), s is parts[-1]) for s in told)


def answer(verdict: Verdict, comparisons: list) -> list[str]:
    """One sentence per task family (its tasks with the same story grouped), and one for the methods."""
    by_task: dict[str, list[Judgement]] = defaultdict(list)
    for j in verdict.judgements:
        by_task[j.task].append(j)
    labels = task_labels([*by_task, *(c.task for c in comparisons)])
    families: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for task, judged in by_task.items():
        family = judged[0].family
        families[family][task_phrase(judged, verdict.unit)].append(labels[task].removeprefix(family).strip())
    sentences = []
    for family, phrases in families.items():
        told = "; ".join(f"{', '.join(tasks)}: {phrase}" if any(tasks) else phrase for phrase, tasks in phrases.items())
        sentences.append(f"On {family} — {told}.")
    if comparisons:
        sentences.append(_methods_sentence(comparisons, labels))
    return sentences


OUTCOME_WORDS = {"beats": "beats it", "is within the noise of": "within the noise", "loses to": "loses",
                 "below every grid cell": "cheaper than every cell", "too few problems to compare with": "too few problems"}


def _places(tasks: list[str], labels: dict[str, str]) -> str:
    """Task labels with each family named once: "chain L=1, L=4, search n=8"."""
    out, last = [], None
    for task in tasks:
        family, _, rest = labels[task].partition(" ")
        out.append(rest if family == last and rest else labels[task])
        last = family
    return ", ".join(out)


def _methods_sentence(comparisons: list, labels: dict[str, str]) -> str:
    by_plan: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for c in comparisons:
        by_plan[short_plan(c.plan)][OUTCOME_WORDS[c.outcome]].append(c)
    parts = []
    for plan, outcomes in by_plan.items():
        said = []
        for outcome, listed in outcomes.items():
            places = _places([c.task for c in listed], labels)
            if outcome in ("beats it", "loses"):
                places += " (" + ", ".join(f"{c.held_out_difference:+.2f}" for c in listed) + ")"
            said.append(f"{outcome} on {places}")
        parts.append(f"{plan} {'; '.join(said)}")
    return "Methods against the grid's best cell within their cost, held out: " + ". ".join(parts) + "."


def phase_rows(verdict: Verdict, comparisons: list) -> list[dict]:
    """One row per judgement (task, budget, winner, significance) and one per method point."""
    order = list(dict.fromkeys(j.task for j in verdict.judgements))
    labels = task_labels(order)
    rows = []
    for j in verdict.judgements:
        runner = j.runner_up if j.runner_up in j.cells else None
        rows.append({"task": labels[j.task], "order": order.index(j.task), "budget": rounded(j.budget), "who": _who(j),
                     "sig": "significant" if j.significant else "within the noise",
                     "cell": j.cells.get(j.winner, next(iter(j.cells.values()), "")),
                     "acc": rounded(max(j.accuracy.values())),
                     "runner": f"{runner} {j.cells[runner]} {j.accuracy[runner]:.2f}" if runner else "—",
                     "held_out": (f"{j.held_out_difference:+.3f} (95% lower bound {j.lower_bound:+.3f})"
                                  if math.isfinite(j.held_out_difference) else "—")})
    for c in comparisons:
        if c.task in order and math.isfinite(c.cost) and c.cost > 0:
            rows.append({"task": labels[c.task], "order": order.index(c.task), "budget": rounded(c.cost), "who": "method",
                         "sig": "significant" if c.significant else "within the noise",
                         "cell": short_plan(c.plan), "acc": rounded(c.accuracy),
                         "runner": f"{c.outcome} the grid's {c.grid_cell or '—'}",
                         "held_out": (f"{c.held_out_difference:+.3f} [{c.low:+.3f}, {c.high:+.3f}]"
                                      if math.isfinite(c.held_out_difference) else "—")})
    return rows


def phase_chart(title: str, unit_words: str, tasks: int) -> dict:
    """x: task (ordered by family and structure), y: budget; colour and shape: the winner (or a method);
    filled: the win holds on held-out problems, hollow: within the noise."""
    domain = list(WINNERS[:3]) + ["no winner", "method"]
    index = [WINNERS.index(w) for w in domain]
    return {
        "$schema": SCHEMA, "title": {"text": title, "anchor": "start", "fontSize": 14, "subtitleFontSize": 11,
                                     "subtitle": "filled: the win holds on held-out problems (95%, simultaneous); "
                                                 "hollow: within the noise"},
        "width": max(300, min(760, 64 * tasks)), "height": 300, "data": {"name": "phase"},
        "config": {"axis": {"labelFontSize": 11, "titleFontSize": 12}, "legend": {"labelFontSize": 11}},
        "mark": {"type": "point", "size": 190, "strokeWidth": 2, "opacity": 1, "filled": True},
        "encoding": {
            "x": {"field": "task", "type": "nominal", "sort": {"field": "order"}, "title": "task, by family and "
                  "structure (chain length L, search size n)", "axis": {"labelAngle": -30, "labelLimit": 220}},
            "y": {"field": "budget", "type": "quantitative", "scale": {"type": "log"},
                  "title": f"budget per problem ({unit_words}, log scale)", "axis": {"format": "~s"}},
            "color": {"field": "who", "type": "nominal", "title": "winner",
                      "scale": {"domain": domain, "range": [COLOURS[i] for i in index]}},
            "shape": {"field": "who", "type": "nominal", "title": "winner",
                      "scale": {"domain": domain, "range": [SHAPES[i] for i in index]}},
            "stroke": {"field": "who", "type": "nominal", "title": "winner",
                       "scale": {"domain": domain, "range": [COLOURS[i] for i in index]}},
            "fillOpacity": {"field": "sig", "type": "nominal", "legend": None, "sort": ["significant"],
                            "scale": {"domain": ["significant", "within the noise"], "range": [1, 0]}},
            "tooltip": [{"field": "task"}, {"field": "budget", "title": "budget", "format": ".4~s"},
                        {"field": "who", "title": "winner"}, {"field": "cell", "title": "its best cell / method"},
                        {"field": "acc", "title": "accuracy", "format": ".3f"}, {"field": "runner", "title": "against"},
                        {"field": "sig", "title": "held-out test"}, {"field": "held_out", "title": "held-out difference"}],
        },
    }
