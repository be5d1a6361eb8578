"""The report's tables and lists: the surface table, the scaling fits, the iso-compute view, the
verdict's sentences, the methods against the grid, and the adaptive allocation's table."""

from __future__ import annotations

import html
import math

from widthdepth.analysis.fits import fit_coverage, fit_depth
from widthdepth.analysis.frontier import cells, iso_cost_cells
from widthdepth.analysis.methods import MethodComparison
from widthdepth.analysis.surface import TraceSurface
from widthdepth.analysis.verdict import UNIT_WORDS, Verdict


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def surface_table(ts: TraceSurface, data: str | None = None) -> str:
    """Every cell of the surface; with `data` (the page's dataset of the experiment), an empty section the
    page fills from that dataset when opened (the heat map already carries the numbers: sent once)."""
    if data is not None:
        return (f"<details class='cells' data-data='{html.escape(data)}'><summary>surface table ({len(ts.rows())} "
                "rows; every column, full precision: surface.csv)</summary></details>")
    head = ("<tr><th>w</th><th>d</th><th>aggregator</th><th>accuracy</th><th>95% CI</th><th>MC error</th><th>problems</th>"
            "<th>gen tokens</th><th>serial tokens</th><th>FLOPs</th><th>wall s</th></tr>")
    rows = [f"<tr><td>{r['w']}</td><td>{r['d']}</td><td>{r['aggregator']}</td><td>{_fmt(r['accuracy'])}</td>"
            f"<td>{_fmt(r['ci_low'])}–{_fmt(r['ci_high'])}</td>"
            f"<td>{'' if not r['mc_error'] else format(r['mc_error'], '.3f')}</td><td>{r['problems']}</td>"
            f"<td>{_fmt(r['generated_tokens'], 0)}</td><td>{_fmt(r['serial_tokens'], 0)}</td>"
            f"<td>{r['flops']:.3g}</td><td>{_fmt(r['wall_seconds'], 1)}</td></tr>" for r in ts.rows()]
    return f"<details><summary>surface table ({len(rows)} rows)</summary><table>{head}{''.join(rows)}</table></details>"


def fits(ts: TraceSurface) -> str:
    items = []
    for fit in (fit_coverage(ts), fit_depth(ts)):
        if not fit.ok:
            items.append(f"<li><code>{html.escape(fit.formula)}</code>: not fitted — {html.escape(fit.reason)}</li>")
            continue
        params = ", ".join(f"{k} = {v:.3g}" for k, v in fit.params.items())
        top = fit.measured_up_to
        ahead = [x for x in (2 * top, 4 * top)]
        predictions = "; ".join(f"{x}: {p['value']:.2f}{' (extrapolated)' if p['extrapolated'] else ''}"
                                for x, p in zip(ahead, fit.extrapolations(ahead)))
        items.append(f"<li><code>{html.escape(fit.formula)}</code>: {params}; RMSE {fit.rmse:.3f} over "
                     f"1..{top}; predicted at {predictions}</li>")
    return "<ul>" + "".join(items) + "</ul>"


def iso_compute(ts: TraceSurface, unit: str) -> str:
    """Iso-compute view: at a few budgets, every allocation of about that cost, from all-width to all-depth."""
    costs = sorted(c.cost for c in cells(ts, unit))
    if not costs:
        return ""
    budgets = sorted({costs[len(costs) // 4], costs[len(costs) // 2], costs[(3 * len(costs)) // 4]})
    rows = []
    for budget in budgets:
        band = iso_cost_cells(ts, unit, budget)
        entries = ", ".join(f"{c.w}×{c.d} {c.accuracy:.2f}" for c in band)
        rows.append(f"<tr><td>{budget:,.3g}</td><td style='text-align:left'>{html.escape(entries)}</td></tr>")
    return (f"<h3>Iso-compute view ({UNIT_WORDS[unit]})</h3><p class='meta'>Allocations whose cost is within a "
            f"factor √2 of each budget, ordered from all width to all depth, best aggregator each.</p>"
            f"<table><tr><th>budget</th><th>w×d accuracy</th></tr>{''.join(rows)}</table>")


def verdict_note(verdict: Verdict) -> str:
    return ("<p class='meta'>Accuracies and differences: each strategy's best cell on all problems. "
            "<b>Bold</b>: significant — the cells are chosen again on half of the problems and the win is "
            "tested on the other half, with 95% lower bounds that hold for all comparisons of this verdict "
            f"at once (critical value {verdict.critical:.2f}).</p>")


def verdict_list(sentences: list[tuple[str, bool]]) -> str:
    items = "".join(f"<li class='{'significant' if s else ''}'>{html.escape(text)}</li>" for text, s in sentences)
    return f"<ul class='verdict'>{items}</ul>"


def task_verdict(verdict: Verdict, task: str, plan: str, heading: str) -> str:
    """One experiment's verdict sentences (its budgets merged where they say the same) and crossovers."""
    part = Verdict(verdict.unit, [j for j in verdict.judgements if j.task == task and j.plan == plan],
                   [c for c in verdict.crossovers if c.kind == "budget" and c.where == task], verdict.critical)
    if not part.judgements:
        return ""
    return f"<h3>Verdict at {html.escape(heading)}</h3>" + verdict_list(part.summary())


def _num(value: object, spec: str = ".3f") -> str:
    """A number from allocation.json: null (undefined) and "inf" shown as words."""
    if value is None:
        return "—"
    if value == "inf":
        return "never"
    return format(value, spec)


def allocation_section(evaluation: dict, figure: str) -> str:
    """From DIR/allocation.json (`widthdepth allocate eval`): the adaptive curve (`figure`) and its ratios."""
    rows = []
    oracle = evaluation.get("oracle") or [None] * len(evaluation["adaptive"])
    for point, ref, ratio in zip(evaluation["adaptive"], oracle, evaluation["ratios"]):
        def times(value: object) -> str:
            return "never" if value == "inf" else ("—" if value is None else f"{value:.2f}×")
        plans = " | ".join(f"{w}×{d} {a}" for w, d, a in point["plans"]) or "per fold"
        rows.append(f"<tr><td>{_num(point['budget'], ',.3g')}</td><td>{_num(point['accuracy'])} "
                    f"[{_num(point['ci_low'])}, {_num(point['ci_high'])}]</td><td>{_num(point['cost'], ',.3g')}</td>"
                    f"<td>{'—' if ref is None else _num(ref['accuracy'])}</td>"
                    f"<td>{times(ratio.get('width'))}</td><td>{times(ratio.get('best_fixed'))}</td>"
                    f"<td style='text-align:left'>{html.escape(plans)}</td></tr>")
    matched = "".join(
        f"<tr><td>{m['w']}×1 {html.escape(m['aggregator'])}</td><td>{_num(m['accuracy'])}</td>"
        f"<td>{_num(m['cost'], ',.3g')}</td><td>{_num(m['adaptive_cost'], ',.3g')}</td>"
        f"<td>{'—' if m['ratio'] in (None, 0) else format(m['ratio'], '.2f') + '×'}</td></tr>"
        for m in evaluation.get("width_matched", []))
    how = f"{evaluation['folds']}-fold cross-validation" if evaluation.get("folds") else "a held-out split"
    return ("<h2>Adaptive allocation</h2>"
            f"<p class='meta'>predictor {html.escape(evaluation['predictor'])}, probe of {evaluation['probe']} "
            f"attempt(s), {evaluation['problems']} problems judged by {how}"
            f"{'; policy ' + html.escape(evaluation['policy']) if evaluation.get('policy') else ''}. "
            "“width needs”: the compute width-only sampling needs for adaptive's accuracy, over adaptive's "
            "(never: no width-only plan reaches it).</p>"
            + figure
            + "<table><tr><th>budget</th><th>adaptive accuracy [95%]</th><th>spent</th><th>gold-binned</th>"
              "<th>width needs</th><th>best fixed needs</th><th>plans by bin (hardest first)</th></tr>"
            + "".join(rows) + "</table>"
            + "<h3>Width-only against adaptive at equal accuracy</h3><table><tr><th>width-only plan</th>"
              "<th>accuracy</th><th>its compute</th><th>adaptive needs</th><th>ratio</th></tr>" + matched + "</table>")


def methods_list(comparisons: list[MethodComparison], heading: str) -> str:
    if not comparisons:
        return ""
    return (f"<h3>Methods against the grid at {html.escape(heading)}</h3><p class='meta'>Each method's accuracy [95% bootstrap over problems] "
            "at its mean cost, against the grid's best cell within that cost; the held-out difference is "
            "method minus the cell chosen on the other half of the problems. <b>Bold</b>: its 95% interval "
            "excludes 0.</p>" + verdict_list([(c.sentence(), c.significant) for c in comparisons]))
