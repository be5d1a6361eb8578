"""What the command prints: consoles, number formats, and tables that fit the terminal.

A table is printed as a table when its natural width fits the terminal; otherwise each row becomes a
block: its first cell, then one `name  value` line per column (wrapped as text, never cut: no `1,217…`). Long names
(task specs) head each block of rows instead of taking a column. The closing table of `run` is
also written whole to OUT/closing.csv, and `--wide` prints it with every column at any width.

    write_closing_csv(rows, Path("runs/demo/closing.csv"))
    print_closing_table(rows, Path("runs/demo/closing.csv"))
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from widthdepth.closing import CellRow

console = Console()
if not console.is_terminal and "COLUMNS" not in os.environ:  # piped or logged: no terminal to fit
    console = Console(width=150)
errors = Console(stderr=True)


def fmt_flops(value: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if value >= scale:
            return f"{value / scale:,.1f}{unit}"
    return f"{value:,.0f}"


def cost_format(unit: str):  # noqa: ANN201 - a formatter for costs in `unit`
    return fmt_flops if unit == "flops" else (lambda value: f"{value:,.1f}")


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], legend: str = "",
                right: Sequence[str] = ()) -> None:
    """A table if it fits the terminal without wrapping a cell; else one block of lines per row."""
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), title_justify="left")
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    if Measurement.get(console, console.options.update(max_width=100_000), table).maximum <= console.width:
        console.print(table)
    else:
        console.print(title, style="italic")
        pad = max(len(name) for name in columns[1:])
        for head, *rest in rows:
            console.print(head, style="bold", highlight=False)
            for name, value in zip(columns[1:], rest):
                console.print(f"  {name:<{pad}}  {value}", highlight=False)
    if legend:
        console.print(legend, style="dim")


CLOSING = ("w×d", "maj", "best", "cov", "gen", "serial", "FLOPs", "verif", "fail")
WIDE = ("w×d", "majority", "best-of", "coverage", "gen tok", "serial tok", "FLOPs", "verif tok", "failed")
CLOSING_LEGEND = ("w×d: chains × rounds; maj: majority vote; best: verifier best-of (— without a verifier); "
                  "cov: coverage (any chain right); gen, serial, verif: mean generated, serial and verifier "
                  "tokens per problem; FLOPs per problem; fail: failed attempts")


def _closing_cells(r: CellRow) -> list[str]:
    return [f"{r.w}×{r.d}", f"{r.majority:.2f}", "—" if r.best_of is None else f"{r.best_of:.2f}",
            f"{r.coverage:.2f}", f"{r.cost.generated_tokens:,.1f}", f"{r.cost.serial_tokens:,.1f}",
            fmt_flops(r.cost.flops), f"{r.cost.verifier_tokens:,.0f}", str(r.failed)]


def print_closing_table(rows: list[CellRow], csv_path: Path | None = None, wide: bool = False) -> None:
    """Accuracy and mean cost per plan cell: one block per task and plan (its name once, above), or
    with `wide` one table with task and plan columns; the legend names `csv_path`, where the whole
    table was written (`write_closing_csv`)."""
    title = "accuracy and mean cost per problem, per plan cell"
    if wide:
        table = Table(title=title)
        for name in ("task", "plan", *WIDE):
            table.add_column(name, justify="left" if name in ("task", "plan") else "right", no_wrap=True)
        for r in rows:
            table.add_row(r.task, r.plan, *_closing_cells(r))
        natural = Measurement.get(console, console.options.update(max_width=100_000), table).maximum
        Console(width=max(console.width, natural), file=console.file).print(table)
    else:
        groups: dict[tuple[str, str], list[CellRow]] = {}
        for r in rows:
            groups.setdefault((r.task, r.plan), []).append(r)
        for (task, plan), members in groups.items():
            print_table(f"{task} · {plan}", CLOSING, [_closing_cells(r) for r in members], right=CLOSING[1:])
    console.print(CLOSING_LEGEND + (f"; every column, full precision: {csv_path}" if csv_path else ""),
                  style="dim")


def write_closing_csv(rows: list[CellRow], path: Path) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["task", "plan", "w", "d", "problems", "majority", "best_of", "coverage", "failed",
                         "prompt_tokens", "generated_tokens", "serial_tokens", "flops", "verifier_tokens",
                         "wall_seconds"])
        for r in rows:
            writer.writerow([r.task, r.plan, r.w, r.d, r.problems, r.majority, "" if r.best_of is None else r.best_of,
                             r.coverage, r.failed, r.cost.prompt_tokens, r.cost.generated_tokens,
                             r.cost.serial_tokens, r.cost.flops, r.cost.verifier_tokens, r.cost.wall_seconds])


def print_allocations(runs: list) -> None:  # list[AdaptiveRun]
    from collections import Counter

    rows = []
    for r in runs:
        fmt = cost_format(r.unit)
        chosen = Counter(f"{d['w']}x{d['d']} {d['aggregator']}" for d in r.decisions)
        rows.append((f"{r.task} · {r.plan}", str(len(r.decisions)), f"{r.accuracy:.3f}", f"{fmt(r.mean_cost)} {r.unit}",
                     ", ".join(f"{k} ({v})" for k, v in sorted(chosen.items()))))
    print_table("adaptive plans: accuracy and mean cost per problem (probe included), plans chosen",
                ("task · plan", "problems", "accuracy", "mean cost", "plans chosen (problems)"), rows,
                right=("problems", "accuracy", "mean cost"))


def print_methods(runs: list) -> None:  # list[MethodRun]
    """Methods (plans that are not grids): accuracy and mean cost per problem, every attempt charged."""
    from widthdepth.cost import mean_cost

    rows = []
    for r in runs:
        cost = mean_cost([o.cost for o in r.outcomes])
        attempts = sum(o.attempts for o in r.outcomes) / max(1, len(r.outcomes))
        again = f" (repeat {r.repeat + 1})" if r.repeat else ""
        rows.append((f"{r.family.spec} · {r.plan.spec}{again}", str(len(r.outcomes)), f"{r.accuracy:.3f}", f"{attempts:,.1f}",
                     f"{cost.generated_tokens:,.1f}", f"{cost.serial_tokens:,.1f}", fmt_flops(cost.flops)))
    print_table("methods: accuracy and mean cost per problem (every attempt drawn is charged)",
                ("task · plan", "problems", "accuracy", "attempts", "gen", "serial", "FLOPs"), rows,
                right=("problems", "accuracy", "attempts", "gen", "serial", "FLOPs"))


def _versus(c) -> str:  # noqa: ANN001 - analysis.methods.MethodComparison
    """The held-out difference with the grid in a few characters: "-0.34* [-0.47, -0.22]"."""
    if c.held_out_cell is None:
        return "cheaper than all"
    if c.outcome == "too few problems to compare with":
        return "too few problems"
    return f"{c.held_out_difference:+.2f}{'*' if c.significant else ''} [{c.low:+.2f},{c.high:+.2f}]"


METHODS_LEGEND = ("vs grid: the method's accuracy minus that of the grid's best cell within its mean cost (chosen "
                  "on the other half of the problems), 95% interval over problems; * significant; ×R: R repeats "
                  "pooled; the report lists each comparison in full")


def print_method_comparisons(rows: list, unit: str) -> None:
    """Each method against the grid's best cell within its cost, at matched compute and at matched latency."""
    from widthdepth.report.answer import task_labels

    labels = task_labels([compute.task for compute, _ in rows], compact=True)
    print_table("methods against the grid, held out",
                ("task", "method", "acc", f"{'FLOPs' if unit == 'FLOPs' else 'tokens'}", "vs grid, compute",
                 "vs grid, latency"),
                [(labels[compute.task], _method(compute), f"{compute.accuracy:.2f}", fmt_flops(compute.cost),
                  _versus(compute), _versus(latency)) for compute, latency in rows],
                legend=METHODS_LEGEND, right=("acc", "FLOPs", "tokens"))


def _method(c) -> str:  # noqa: ANN001 - analysis.methods.MethodComparison
    """The plan in short, and how many repeats it pools (×R) where more than one."""
    runs = len(c.repeat_accuracy)
    from widthdepth.plans import short_plan

    return short_plan(c.plan) + (f" ×{runs}" if runs > 1 else "")


def print_evaluation(evaluation) -> None:  # noqa: ANN001 - an allocation Evaluation
    """`allocate eval`'s table: adaptive against the baselines, per budget."""
    from widthdepth.allocation import BASELINES

    unit = evaluation.unit
    how = f"{evaluation.folds}-fold cross-validation" if evaluation.folds else "all held out"
    fmt = cost_format(unit)

    def times(value: float) -> str:
        return "never reached" if value == float("inf") else f"{value:.2f}×"

    rows = []
    for point, oracle, ratio in zip(evaluation.adaptive, evaluation.oracle or [None] * len(evaluation.adaptive),
                                    evaluation.ratios):
        plans = " | ".join(f"{w}x{d} {a}" for w, d, a in point.plans) if point.plans else "(per fold)"
        rows.append((fmt(point.budget), f"{point.accuracy:.3f} [{point.ci_low:.3f}, {point.ci_high:.3f}]",
                     fmt(point.cost), f"{oracle.accuracy:.3f}" if oracle else "—", times(ratio["width"]),
                     times(ratio["best_fixed"]), plans))
    print_table(f"adaptive allocation ({evaluation.predictor}, probe {evaluation.probe}) on {evaluation.problems} "
                f"problems, {how}; cost in {unit} per problem",
                ("budget", "adaptive", "cost", "gold-binned", "width needs", "best fixed needs", "plans by bin"),
                rows, right=("cost", "gold-binned", "width needs", "best fixed needs"))
    for name in BASELINES:
        curve = evaluation.baselines.get(name)
        if curve:
            console.print(f"{name:>15}: " + ", ".join(f"{p.accuracy:.3f} at {fmt(p.cost)} ({p.plans[0][0]}x{p.plans[0][1]})"
                                                      for p in curve))
    for m in evaluation.width_matched:
        console.print(f"width-only {m['w']}x1 {m['aggregator']} reaches {m['accuracy']:.3f} at {fmt(m['cost'])}; "
                      f"adaptive at {fmt(m['adaptive_cost'])}" + (
                          f": width spends {m['ratio']:.2f}× as much" if m["adaptive_cost"] != float("inf") else
                          ": adaptive never does"))
    console.print("width needs / best fixed needs: the compute the best width-only (majority or verifier) / best "
                  "fixed plan needs for adaptive's accuracy, over adaptive's (fixed plans picked on the same "
                  "held-out problems: their best case; their first chains are the probe's, as in a run). "
                  "gold-binned: bins from gold pass@1, no probe paid — a reference, not a bound: it knows how "
                  "hard a problem is, not whether the attempts a plan keeps are right.", style="dim")
