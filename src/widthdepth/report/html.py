"""`widthdepth report DIR`: DIR/report.html, DIR/surface.csv and DIR/verdict.json — from the store
alone, the same bytes for the same store.

The page answers first: a few plain sentences and one phase diagram over every task structure, at
matched compute and at matched latency. Every verdict sentence, the adaptive allocation and one
collapsed section per experiment (frontier, heat map, selection, latency, tables) follow. Figures are
Vega-Lite drawn in the page (one self-contained file: the drawing code is inlined once, each
experiment's data once; a figure is drawn when it scrolls into view) or, with `static=True`, PNG
images for papers.

    paths = write_report("runs/demo")
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from widthdepth.analysis.methods import MethodComparison, compare_methods, methods_for, open_method_points
from widthdepth.analysis.stored import open_surface
from widthdepth.analysis.surface import Surface, TraceSurface
from widthdepth.analysis.traces import Scope
from widthdepth.analysis.verdict import UNIT_WORDS, Verdict, build_verdict
from widthdepth.cost import UNIT_DEFINITION, default_unit
from widthdepth.errors import WidthdepthError
from widthdepth.jsonsafe import json_safe
from widthdepth.report import answer, charts, forecasts, sections
from widthdepth.store import Store
from widthdepth.report.page import CSS, Figures

GUIDE = {
    "phase": "Each column is a task, ordered by family and structure value; each mark, a budget per problem. "
             "Colour and shape name the strategy whose best cell is most accurate within that budget (blue squares "
             "width: independent attempts only; vermillion triangles depth: one chain of rounds; green diamonds "
             "hybrid: both); filled marks won on held-out problems with 95% simultaneous bounds, hollow ones are "
             "within the noise. Purple crosses are methods (search, early stopping) at their mean cost, filled "
             "where the held-out comparison with the grid is significant either way. Hover a mark for its numbers.",
    "frontier": "Best accuracy a strategy reaches within the budget on the x axis: width = independent attempts "
                "only (d = 1), depth = one chain of rounds (w = 1), hybrid = w ≥ 2 and d ≥ 2, best = any "
                "allocation. Bands: 95% bootstrap intervals over problems. Choose the cost unit above the figure; "
                "hover a point for its cell, accuracy and interval.",
    "methods": " Crosses: methods (not grids) at their accuracy and mean cost per problem, bars their 95% intervals.",
    "heatmap": "Estimated accuracy of every cell w × d from the one run (exact averages over subsets of chains); "
               "choose the aggregator above the figure, hover a cell for its interval and costs. Dashed lines join "
               "cells of equal compute: walking along one compares width and depth at matched cost.",
    "selection": "Coverage (some chain right: an oracle) beside what each aggregator actually picks on the same "
                 "samples, at the first and the last round; the gap is the selection problem. Click a legend "
                 "entry to show one aggregator alone (shift-click for more).",
    "latency": "Every cell's compute against its latency (serial tokens: rounds add up, parallel chains do not), "
               "coloured by the accuracy of its best aggregator.",
    "allocation": "Accuracy on problems the policy was not fitted on, against the mean compute actually spent per "
                  "problem (the probe included). Adaptive: a probe predicts difficulty, its bin's plan spends the "
                  "rest. Gold-binned: bins from gold pass@1, no probe cost. Fixed-plan curves are picked on the same "
                  "held-out problems (their best case). Band: 95% bootstrap over problems.",
}

def compute_unit(surface: Surface) -> str:
    """FLOPs for latent reasoners (their "tokens" are iterations), generated tokens for LLMs."""
    return default_unit(any(ts.trace.latent for ts in surface.traces))


def _experiment(ts: TraceSurface, i: int, unit: str, compared: dict[str, list[MethodComparison]],
                verdicts: list[tuple[Verdict, str]], figures: Figures) -> str:
    """One experiment, collapsed under a line that says who wins it: figures, its verdict sentences at
    matched compute and latency (`verdicts`: each with its heading), then tables."""
    t = ts.trace
    verdict = verdicts[0][0]
    key = f"e{i}"
    figures.data[key] = charts.experiment_data(ts, compared, unit)
    judged = [j for j in verdict.judgements if j.task == t.task and j.plan == t.plan.spec]
    story = answer.task_phrase(judged, unit) if judged else "no verdict (too few problems)"
    partial = t.partial()
    name = f"{t.task} — {t.plan.spec}"
    parts = [f"<details class='experiment' id='{key}'><summary><b>{html.escape(t.task)}</b> · "
             f"{html.escape(t.plan.spec)}: {html.escape(story)}</summary>",
             f"<p class='warning'>{html.escape(partial)}</p>" if partial else "",
             f"<p class='meta'>{t.problem_count} problems; model {html.escape(t.model)}; verifier "
             f"{html.escape(t.verifier or 'none')}; sampling {html.escape(json.dumps(t.sampling))}; seed {t.seed}</p>",
             figures.figure(charts.frontier_chart(f"{name}: best accuracy within a budget", unit, bool(compared[unit])),
                            key, f"frontier {t.task}", GUIDE["frontier"] + (GUIDE["methods"] if compared[unit] else ""))]
    shown = tuple(a for a in ts.aggregators if a != "coverage")
    if shown:
        parts.append(figures.figure(charts.heatmap_chart(f"{name}: accuracy of every w × d", shown, t.plan.chains,
                                                         t.plan.rounds, unit), key, f"heatmap {t.task}", GUIDE["heatmap"]))
    parts.append(figures.figure(charts.selection_chart(f"{name}: coverage against selection", ts.aggregators,
                                                       sorted({1, t.plan.rounds}), t.plan.chains), key,
                                f"coverage vs selection {t.task}", GUIDE["selection"]))
    parts.append(figures.figure(charts.latency_chart(f"{name}: compute against latency", unit), key,
                                f"compute vs latency {t.task}", GUIDE["latency"]))
    parts += [*(sections.task_verdict(v, t.task, t.plan.spec, heading) for v, heading in verdicts),
              *(sections.methods_list(compared[v.unit], heading) for v, heading in verdicts),
              sections.iso_compute(ts, unit),
              "<h3>Scaling fits and forecasts</h3>" + sections.fits(ts) + forecasts.coverage_section(ts)
              + forecasts.depth_section(ts),
              sections.surface_table(ts, None if figures.static else key), "</details>"]
    return "\n".join(parts)


def _top(headings: list[tuple[Verdict, str]], versus: dict[str, list[MethodComparison]], figures: Figures) -> list[str]:
    """The answer: plain sentences and the phase diagram, at matched compute then at matched latency."""
    out = []
    tasks = len({j.task for j in headings[0][0].judgements})
    for verdict, heading in headings:
        u = verdict.unit
        figures.data[f"top-{u}"] = {"phase": answer.phase_rows(verdict, versus[u])}
        sentences = answer.answer(verdict, versus[u])
        out += [f"<h2>The answer at {heading}</h2>",
                "<ul class='answer'>" + "".join(f"<li>{html.escape(s)}</li>" for s in sentences) + "</ul>",
                figures.figure(answer.phase_chart(f"Who wins where, at {heading}", UNIT_WORDS[u], tasks), f"top-{u}",
                               f"phase diagram, {heading}", GUIDE["phase"])]
    return out


def render(surface: Surface, store_path: str, allocation: dict | None = None,
           points: dict | None = None, static: bool = False) -> tuple[str, dict]:
    unit = compute_unit(surface)
    verdicts = {unit: build_verdict(surface, unit), "serial_tokens": build_verdict(surface, "serial_tokens")}
    headings = [(verdicts[unit], f"matched compute ({UNIT_WORDS[unit]})"),
                (verdicts["serial_tokens"], "matched latency (serial tokens)")]
    units = tuple(dict.fromkeys((unit, "serial_tokens", *charts.UNITS)))
    compared = {}
    for ts in surface.traces:
        methods = methods_for(ts, points or {})
        compared[id(ts)] = {u: compare_methods(ts, methods, u) for u in units}
    versus = {u: [c for ts in surface.traces for c in compared[id(ts)][u]] for u in units}
    figures = Figures(static)
    models = sorted({ts.trace.model for ts in surface.traces})
    body = ["<h1>widthdepth report</h1>",
            f"<p class='meta'>store <code>{html.escape(store_path)}</code>; {len(surface.traces)} task × plan "
            f"experiments; model{'s' if len(models) > 1 else ''} {html.escape(', '.join(models))}.</p>",
            *(f"<p class='warning'>{html.escape(note)}</p>" for note in partial_notes(surface)),
            *_top(headings, versus, figures),
            f"<p class='meta'>Cost unit: {html.escape(UNIT_DEFINITION)}.</p>"]
    across = [(c.sentence(), False) for v, _ in headings for c in v.crossovers if c.kind == "structure"]
    body.append("<details><summary>How significance is decided" + (f"; crossovers across structure ({len(across)})"
                                                                      if across else "") + "</summary>"
                + sections.verdict_note(verdicts[unit]) + (sections.verdict_list(across) if across else "")
                + "</details>")
    if allocation:
        figures.data["allocation"] = {"allocation": charts.allocation_rows(allocation)}
        body.append(sections.allocation_section(allocation, figures.figure(
            charts.allocation_chart(allocation), "allocation", "adaptive allocation", GUIDE["allocation"])))
    body.append("<h2>Experiments</h2><p class='meta'>One section per task and plan; open one for its frontier, "
                "heat map, selection and latency figures, its verdict sentences and its tables.</p>")
    body += [_experiment(ts, i, unit, compared[id(ts)], headings, figures) for i, ts in enumerate(surface.traces)]
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>widthdepth report</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body>{''.join(body)}{figures.scripts()}</body></html>")
    verdict = {unit: verdicts[unit].to_json(), "serial_tokens": verdicts["serial_tokens"].to_json()}
    if any(versus[u] for u in (unit, "serial_tokens")):
        verdict["methods"] = {u: [c.to_json() for c in versus[u]] for u in (unit, "serial_tokens")}
    return page, verdict


def _served(folder: Path) -> list[dict]:
    """The requests `widthdepth serve` answered into this folder (none for a run folder)."""
    store = Store.open(folder, create=False)
    try:
        return store.served_requests()
    finally:
        store.close()


def partial_notes(surface: Surface) -> list[str]:
    return [note for note in (ts.trace.partial() for ts in surface.traces) if note]


def write_report(folder: str | Path, notes: list[str] | None = None, scope: Scope | None = None,
                 surface: Surface | None = None, static: bool = False, workers: int | None = None) -> dict[str, Path]:
    """Write the report, the surface and the verdict — of everything in the folder, or of what `scope`
    ran; `notes`, where given, receives one line per experiment whose grid is incomplete (a killed or
    failed run: the report shows what there is). `surface`, where the caller has it, is that of the same
    traces (estimated once). `static`: figures as PNG images instead of interactive ones. `workers`: the
    processes that read and estimate the experiments (`analysis.stored.open_surface`; None: as many as
    a large store is worth)."""
    folder = Path(folder)
    if surface is None:
        surface = open_surface(folder, scope, workers)
        if not surface.traces and scope is None and (served := _served(folder)):
            from widthdepth.report.served import write_served_report

            return write_served_report(folder, served, static)
        if not surface.traces:
            methods = sorted({key[4] for key in open_method_points(folder, scope)})
            if methods:
                raise WidthdepthError(f"{folder}: the store holds methods only ({', '.join(methods)}); the report sets "
                                      "them against a grid of the same model and task: add one to the run, e.g. "
                                      "--plan parallel:16")
            raise WidthdepthError(f"{folder}: the store holds no finished attempts to report; run "
                                  f"`widthdepth run --out {folder}`")
    allocation_path = folder / "allocation.json"
    allocation = json.loads(allocation_path.read_text()) if allocation_path.exists() else None
    page, verdict = render(surface, str(folder), allocation, open_method_points(folder, scope), static)
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


__all__ = ["compute_unit", "partial_notes", "render", "write_report"]
