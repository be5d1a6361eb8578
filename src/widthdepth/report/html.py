"""`widthdepth report DIR`: DIR/report.html (one self-contained file, figures embedded as PNG data),
DIR/surface.csv and DIR/verdict.json — from the store alone, the same bytes for the same store.

    paths = write_report("runs/demo")
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections import defaultdict
from pathlib import Path

from widthdepth.analysis.fits import fit_coverage, fit_depth
from widthdepth.analysis.frontier import cells, iso_cost_cells
from widthdepth.analysis.methods import MethodComparison, compare_methods, methods_for, open_method_points
from widthdepth.analysis.surface import Surface, TraceSurface, estimate_surface
from widthdepth.analysis.traces import Scope, open_traces
from widthdepth.analysis.verdict import UNIT_WORDS, Verdict, build_verdict
from widthdepth.cost import UNIT_DEFINITION, default_unit
from widthdepth.errors import WidthdepthError
from widthdepth.jsonsafe import json_safe
from widthdepth.report import figures

GUIDE = {
    "frontier": "Each line is the best accuracy a strategy reaches within the budget on the x axis (log scale): "
                "width = independent attempts only (d = 1), depth = one chain of rounds (w = 1), hybrid = "
                "w ≥ 2 and d ≥ 2, best = any allocation. Bands are 95% bootstrap intervals over problems.",
    "heatmap": "Estimated accuracy of every cell w × d from the one run (exact averages over subsets of "
               "chains). Dashed lines join cells of equal cost: walking along one compares width and depth at "
               "matched compute.",
    "phase": "For each task structure (x) and budget (y), the colour is the depth share of the best "
             "allocation, log d / log(w·d): blue is width, red is depth; the label is the winning w × d.",
    "selection": "Coverage (some chain right: an oracle) beside what an aggregator actually picks (majority, "
                 "verifier best-of, and where the model reports its confidence: confidence-weighted votes and the "
                 "most confident half's majority, estimated by Monte Carlo over subsets) on the same samples. The "
                 "gap is the selection problem.",
    "allocation": "Accuracy on problems the policy was not fitted on, against the mean compute actually spent "
                  "per problem (the probe included). Adaptive: a probe predicts difficulty, its bin's plan spends the "
                  "rest. Gold-binned: bins from gold pass@1, no probe cost — it knows how hard a problem is, not "
                  "whether the attempts a plan keeps are right, so adaptive can beat it. Fixed-plan curves "
                  "are picked on the same held-out problems (their best case). Band: 95% bootstrap over problems.",
    "methods": " Markers: methods (not grids), at their accuracy and mean cost per problem, with 95% bootstrap "
               "intervals over problems.",
    "latency": "Left: best accuracy within a latency budget (serial tokens: rounds add up, parallel chains "
               "do not). Right: every cell's compute against its latency, coloured by accuracy.",
}

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; max-width: 900px; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f4f4f4; } .verdict li { margin: 0.3em 0; } .meta { color: #555; } code { background: #f4f4f4; }
.significant { font-weight: 600; }
.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
"""


def _img(png: bytes, alt: str, guide: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
            f"<figcaption>{html.escape(guide)}</figcaption></figure>")


def _fmt(value: float, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _surface_table(ts: TraceSurface) -> str:
    head = ("<tr><th>w</th><th>d</th><th>aggregator</th><th>accuracy</th><th>95% CI</th><th>MC error</th><th>problems</th>"
            "<th>gen tokens</th><th>serial tokens</th><th>FLOPs</th><th>wall s</th></tr>")
    rows = [f"<tr><td>{r['w']}</td><td>{r['d']}</td><td>{r['aggregator']}</td><td>{_fmt(r['accuracy'])}</td>"
            f"<td>{_fmt(r['ci_low'])}–{_fmt(r['ci_high'])}</td>"
            f"<td>{'' if not r['mc_error'] else format(r['mc_error'], '.3f')}</td><td>{r['problems']}</td>"
            f"<td>{_fmt(r['generated_tokens'], 0)}</td><td>{_fmt(r['serial_tokens'], 0)}</td>"
            f"<td>{r['flops']:.3g}</td><td>{_fmt(r['wall_seconds'], 1)}</td></tr>" for r in ts.rows()]
    return f"<details><summary>surface table ({len(rows)} rows)</summary><table>{head}{''.join(rows)}</table></details>"


def _fits(ts: TraceSurface) -> str:
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


def compute_unit(surface: Surface) -> str:
    """FLOPs for latent reasoners (their "tokens" are iterations), generated tokens for LLMs."""
    return default_unit(any(ts.trace.latent for ts in surface.traces))


def _iso_compute(ts: TraceSurface, unit: str) -> str:
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


def _trace_section(ts: TraceSurface, unit: str, methods: list[MethodComparison]) -> str:
    """One experiment's figures and tables; `methods` are its methods against its grid, in `unit`."""
    t = ts.trace
    partial = t.partial()
    parts = [f"<h2>{html.escape(t.task)} — {html.escape(t.plan.spec)}</h2>",
             f"<p class='warning'>{html.escape(partial)}</p>" if partial else "",
             f"<p class='meta'>{len(t.problems)} problems; model {html.escape(t.model)}; verifier "
             f"{html.escape(t.verifier or 'none')}; sampling {html.escape(json.dumps(t.sampling))}; seed {t.seed}</p>",
             _img(figures.frontier_figure(ts, unit, methods), f"frontier {t.task}",
                  GUIDE["frontier"] + (GUIDE["methods"] if methods else ""))]
    for aggregator in ts.aggregators:
        if aggregator in ("majority", "best_of"):  # the confidence aggregators: selection figure and table
            parts.append(_img(figures.heatmap_figure(ts, aggregator, unit), f"heatmap {aggregator} {t.task}",
                              GUIDE["heatmap"]))
    parts.append(_img(figures.selection_figure(ts), f"coverage vs selection {t.task}", GUIDE["selection"]))
    parts.append(_img(figures.latency_figure(ts), f"compute vs latency {t.task}", GUIDE["latency"]))
    parts.append(_iso_compute(ts, unit))
    parts.append("<h3>Scaling fits</h3>" + _fits(ts))
    parts.append(_surface_table(ts))
    return "\n".join(parts)


def _verdict_note(verdict: Verdict) -> str:
    return ("<p class='meta'>Accuracies and differences: each strategy's best cell on all problems. "
            "<b>Bold</b>: significant — the cells are chosen again on half of the problems and the win is "
            "tested on the other half, with 95% lower bounds that hold for all comparisons of this verdict "
            f"at once (critical value {verdict.critical:.2f}).</p>")


def _verdict_list(sentences: list[tuple[str, bool]]) -> str:
    items = "".join(f"<li class='{'significant' if s else ''}'>{html.escape(text)}</li>" for text, s in sentences)
    return f"<ul class='verdict'>{items}</ul>"


def _num(value: object, spec: str = ".3f") -> str:
    """A number from allocation.json: null (undefined) and "inf" shown as words."""
    if value is None:
        return "—"
    if value == "inf":
        return "never"
    return format(value, spec)


def _allocation_section(evaluation: dict) -> str:
    """From DIR/allocation.json (`widthdepth allocate eval`): the adaptive curve and its ratios."""
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
            + _img(figures.allocation_figure(evaluation), "adaptive allocation", GUIDE["allocation"])
            + "<table><tr><th>budget</th><th>adaptive accuracy [95%]</th><th>spent</th><th>gold-binned</th>"
              "<th>width needs</th><th>best fixed needs</th><th>plans by bin (hardest first)</th></tr>"
            + "".join(rows) + "</table>"
            + "<h3>Width-only against adaptive at equal accuracy</h3><table><tr><th>width-only plan</th>"
              "<th>accuracy</th><th>its compute</th><th>adaptive needs</th><th>ratio</th></tr>" + matched + "</table>")


def _methods_list(comparisons: list[MethodComparison]) -> str:
    if not comparisons:
        return ""
    return ("<h3>Methods against the grid</h3><p class='meta'>Each method's accuracy [95% bootstrap over problems] "
            "at its mean cost, against the grid's best cell within that cost; the held-out difference is "
            "method minus the cell chosen on the other half of the problems. <b>Bold</b>: its 95% interval "
            "excludes 0.</p>" + _verdict_list([(c.sentence(), c.significant) for c in comparisons]))


def render(surface: Surface, store_path: str, allocation: dict | None = None,
           points: dict | None = None) -> tuple[str, dict]:
    unit = compute_unit(surface)
    compute = build_verdict(surface, unit)
    latency = build_verdict(surface, "serial_tokens")
    compared = {id(ts): {u: compare_methods(ts, methods_for(ts, points or {}), u) for u in (unit, "serial_tokens")}
                for ts in surface.traces}
    versus = {u: [c for ts in surface.traces for c in compared[id(ts)][u]] for u in (unit, "serial_tokens")}
    families: dict[str, list[TraceSurface]] = defaultdict(list)
    for ts in surface.traces:
        families[ts.trace.task.split(":", 1)[0]].append(ts)
    body = ["<h1>widthdepth report</h1>",
            f"<p class='meta'>store <code>{html.escape(store_path)}</code>; "
            f"{len(surface.traces)} task × plan experiments.</p>",
            *(f"<p class='warning'>{html.escape(note)}</p>" for note in partial_notes(surface)),
            f"<h2>Verdict at matched compute ({UNIT_WORDS[unit]})</h2>",
            _verdict_note(compute), _verdict_list(compute.summary()), _methods_list(versus[unit]),
            "<h2>Verdict at matched latency (serial tokens)</h2>",
            _verdict_note(latency), _verdict_list(latency.summary()), _methods_list(versus["serial_tokens"]),
            f"<h2>Cost unit</h2><p>{html.escape(UNIT_DEFINITION)}.</p>"]
    for family, members in families.items():
        body.append(f"<h2>Phase diagram: {html.escape(family)}</h2>")
        body.append(_img(figures.phase_figure(members, unit), f"phase diagram {family}", GUIDE["phase"]))
    if allocation:
        body.append(_allocation_section(allocation))
    body += [_trace_section(ts, unit, compared[id(ts)][unit]) for ts in surface.traces]
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>widthdepth report</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>")
    verdict = {unit: compute.to_json(), "serial_tokens": latency.to_json()}
    if any(versus.values()):
        verdict["methods"] = {u: [c.to_json() for c in comparisons] for u, comparisons in versus.items()}
    return page, verdict


def partial_notes(surface: Surface) -> list[str]:
    return [note for note in (ts.trace.partial() for ts in surface.traces) if note]


def write_report(folder: str | Path, notes: list[str] | None = None, scope: Scope | None = None,
                 surface: Surface | None = None) -> dict[str, Path]:
    """Write the report, the surface and the verdict — of everything in the folder, or of what `scope`
    ran; `notes`, where given, receives one line per experiment whose grid is incomplete (a killed or
    failed run: the report shows what there is). `surface`, where the caller has it, is that of the same
    traces (estimated once)."""
    folder = Path(folder)
    if surface is None:
        traces = open_traces(folder, scope)
        if not traces:
            methods = sorted({key[4] for key in open_method_points(folder, scope)})
            if methods:
                raise WidthdepthError(f"{folder}: the store holds methods only ({', '.join(methods)}); the report sets "
                                      "them against a grid of the same model and task: add one to the run, e.g. "
                                      "--plan parallel:16")
            raise WidthdepthError(f"{folder}: the store holds no finished attempts to report; run "
                                  f"`widthdepth run --out {folder}`")
        surface = estimate_surface(traces)
    allocation_path = folder / "allocation.json"
    allocation = json.loads(allocation_path.read_text()) if allocation_path.exists() else None
    page, verdict = render(surface, str(folder), allocation, open_method_points(folder, scope))
    if notes is not None:
        notes += partial_notes(surface)
        models = sorted({ts.trace.model for ts in surface.traces})
        if len(models) > 1:
            notes.append(f"note: {folder} holds {len(models)} models ({', '.join(models)}): the report has a section "
                         f"per model and experiment, costs in {UNIT_WORDS[compute_unit(surface)]}; use --out to keep "
                         "runs apart")
    paths = {"report": folder / "report.html", "surface": folder / "surface.csv", "verdict": folder / "verdict.json"}
    paths["report"].write_text(page, encoding="utf-8")
    surface.frame().to_csv(paths["surface"], index=False)
    paths["verdict"].write_text(json.dumps(json_safe(verdict), indent=2, allow_nan=False), encoding="utf-8")
    return paths
