"""`widthdepth study`: the main job. The standard suite (chain at several L, search at several sizes,
and a mix) under grid plans sized by a preset, on one model; the store, the report, and the verdict
table (per structure: the winner at low, medium and high budget, and where the winner changes).

    result = run_study(StudyConfig(preset="quick", out="runs/study"))
    for row in result.rows:         # the CLI prints them as the verdict table
        print(row.task, row.winners["medium"])

The default model is the built-in latent reasoner (width = trajectories, depth = iterations, cost in
FLOPs); any other model runs the same study with text prompts (cost in generated tokens).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from widthdepth.backends import is_latent, resolve_model
from widthdepth.config import RunConfig, make_config
from widthdepth.cost import default_unit
from widthdepth.errors import WidthdepthError

RULES = ["rule:L=1,k=3", "rule:L=2,k=3", "rule:L=4,k=3", "rule:L=2,k=2", "rule:L=4,k=2"]
RECALLS = ["recall:n=32,h=1", "recall:n=32,h=2", "recall:n=32,h=4", "recall:n=48,h=1", "recall:n=48,h=4"]
"""The quick tasks of the thought and memory models (their studies and sweeps)."""

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "latent": {
        "quick": {"tasks": ["chain:L=1", "chain:L=2", "chain:L=4", "chain:L=6", "search:kind=subset,n=6",
                            "search:kind=subset,n=8", "search:kind=subset,n=10", "mix:L=4,n=8"],
                  "plans": ["grid:16x8", "early:16,depth=8", "particles:16,steps=8"], "problems": 64},
        "full": {"tasks": ["chain:L=1", "chain:L=2", "chain:L=3", "chain:L=4", "chain:L=6", "chain:L=8",
                           "search:kind=subset,n=6", "search:kind=subset,n=8", "search:kind=subset,n=10",
                           "search:kind=subset,n=12", "mix:L=4,n=8", "mix:L=8,n=10"],
                 "plans": ["grid:32x12", "early:32,depth=12", "particles:32,steps=12", "beam:8,4,steps=12",
                           "dvts:32,4,steps=12"], "problems": 256, "repeats": 2},
    },
    "thought": {  # the latent-thought model: few-shot rules; width = restarts, depth = inference steps
        "quick": {"tasks": RULES, "plans": ["grid:16x16", "early:16,depth=16"], "problems": 128},
        "full": {"tasks": ["rule:L=1,k=2", "rule:L=1,k=3", "rule:L=2,k=2", "rule:L=2,k=3", "rule:L=3,k=3",
                           "rule:L=4,k=2", "rule:L=4,k=3", "rule:L=4,k=4"],
                 "plans": ["grid:32x32", "early:32,depth=32"], "problems": 512, "repeats": 2},
    },
    "memory": {  # the fast-weight memory: recall; width = copies consolidated apart, depth = passes
        "quick": {"tasks": RECALLS, "plans": ["grid:8x32", "early:8,depth=32"], "problems": 128},
        "full": {"tasks": ["recall:n=16,h=1", "recall:n=16,h=4", "recall:n=32,h=1", "recall:n=32,h=2",
                           "recall:n=32,h=4", "recall:n=48,h=1", "recall:n=48,h=2", "recall:n=48,h=4",
                           "recall:n=48,h=8"], "plans": ["grid:16x64", "early:16,depth=64"], "problems": 512,
                 "repeats": 2},
    },
    "lm": {
        "quick": {"tasks": ["chain:L=1", "chain:L=2", "chain:L=4", "chain:L=6", "search:kind=subset,n=6",
                            "search:kind=subset,n=8"], "plans": ["grid:8x4", "early:8"], "problems": 48,
                  "max_tokens": 256},
        "full": {"tasks": ["chain:L=1", "chain:L=2", "chain:L=3", "chain:L=4", "chain:L=6", "chain:L=8",
                           "search:kind=subset,n=6", "search:kind=subset,n=8", "search:kind=subset,n=10"],
                 "plans": ["grid:16x4", "early:16"], "problems": 128, "max_tokens": 256, "repeats": 2},
    },
    "text": {
        "quick": {"tasks": ["chain:L=1", "chain:L=4", "search", "mix:L=2,kind=modeq,p=13"], "plans": ["grid:4x2"],
                  "problems": 8, "max_tokens": 160},
        "full": {"tasks": ["chain:L=1", "chain:L=2", "chain:L=4", "chain:L=8", "search", "search:p=29",
                           "mix:L=4,kind=modeq,p=13"], "plans": ["grid:8x4", "early:8"], "problems": 30, "max_tokens": 256},
    },
}


@dataclass(frozen=True)
class StudyConfig:
    model: str = "builtin:reasoner"
    preset: str = "quick"
    out: str = "runs/study"
    seed: int = 0
    threads: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    """Any RunConfig setting, applied over the preset (e.g. problems=16)."""


def study_run_config(study: StudyConfig) -> RunConfig:
    spec = resolve_model(study.model)
    own = spec.target if spec.scheme == "builtin" and spec.target in ("thought", "memory") else None
    kind = own or ("latent" if is_latent(spec.text) else "lm" if spec.scheme == "builtin" else "text")
    if study.preset not in PRESETS[kind]:
        raise WidthdepthError(f"--preset {study.preset!r}: unknown (valid: {', '.join(PRESETS[kind])})")
    values = {**PRESETS[kind][study.preset], "model": study.model, "out": study.out, "seed": study.seed,
              "threads": study.threads, **study.overrides}
    return make_config(values)


@dataclass
class VerdictRow:
    task: str
    structure: float
    winners: dict[str, str]
    """"low" | "medium" | "high" -> the judgement's sentence head, e.g. "width (16×1 best_of, 0.81)"."""
    crossover: str


@dataclass
class StudyResult:
    config: RunConfig
    unit: str
    rows: list[VerdictRow]
    paths: dict[str, Path]
    sentences: list[str]
    notes: list[str] = field(default_factory=list)
    """Lines to show: an incomplete grid, other models or settings in the folder."""
    methods: list[tuple] = field(default_factory=list)
    """Per method and task: (comparison at matched compute, comparison at matched latency)."""
    model: str = ""
    """The model's id in the store (the folder may hold others)."""


AGGREGATOR_CODES = {"majority": "maj", "best_of": "bo", "weighted": "wv", "filtered:0.5": "top½"}
STRATEGY_CODES = {"width": "W", "depth": "D", "hybrid": "H"}
VERDICT_LEGEND = ("W width, D depth, H hybrid; W* 16×1 bo .66: width wins and the win holds on held-out problems, "
                  "with its best cell (16 chains × 1 round, aggregator: maj majority vote, bo verifier best-of, "
                  "wv confidence-weighted vote, top½ the most confident half's vote) at accuracy 0.66; H≈W: hybrid "
                  "leads width within the noise; tie: no strategy wins; a cell alone: only it fits; crossover: "
                  "where the significant winner changes (budget per problem)")


def _cell(judgement, strategy: str) -> str:  # noqa: ANN001
    w_d, _, aggregator = judgement.cells[strategy].partition(" ")
    return f"{w_d} {AGGREGATOR_CODES.get(aggregator, aggregator)} {judgement.accuracy[strategy]:.2f}".replace(" 0.", " .")


def _winner(judgement) -> str:  # noqa: ANN001
    """A budget's winner in a few characters, e.g. "W* 16×1 bo .47" or "D≈H 1×4 maj .61"."""
    if judgement.winner in ("none", "tie"):
        strategy = judgement.runner_up or next(iter(judgement.cells))
        return ("" if judgement.winner == "none" else "tie ") + _cell(judgement, strategy)
    code = STRATEGY_CODES[judgement.winner]
    if judgement.significant:
        return f"{code}* {_cell(judgement, judgement.winner)}"
    return f"{code}≈{STRATEGY_CODES.get(judgement.runner_up or '', '?')} {_cell(judgement, judgement.winner)}"


def _crossings(verdict, task: str) -> str:  # noqa: ANN001
    from widthdepth.analysis.verdict import fmt_budget

    return "; ".join(f"{STRATEGY_CODES.get(c.before, c.before)}→{STRATEGY_CODES.get(c.after, c.after)} at "
                     f"{fmt_budget(c.at, c.unit).split(' ')[0]}" for c in verdict.crossovers
                     if c.kind == "budget" and c.where == task) or "—"


def run_study(study: StudyConfig, progress: Any = None, api_key: str | None = None) -> StudyResult:
    from widthdepth.analysis.methods import compare, methods_for, open_method_points
    from widthdepth.analysis.stored import open_surface
    from widthdepth.closing import scope_of
    from widthdepth.analysis.traces import other_experiments
    from widthdepth.analysis.verdict import build_verdict
    from widthdepth.report import write_report
    from widthdepth.runner import prepare, run

    config = study_run_config(study)
    prepared = prepare(config)
    ran = run(prepared, progress=progress, api_key=api_key)
    scope = scope_of(ran)  # the folder may hold other models or settings: report only this study
    notes: list[str] = []
    surface = open_surface(config.out, scope)
    traces = [ts.trace for ts in surface.traces]
    paths = write_report(config.out, notes, scope, surface if traces else None)
    other = other_experiments(config.out, scope)
    notes += [other] if other else []
    unit = default_unit(is_latent(config.model))
    verdict = build_verdict(surface, unit)
    points = open_method_points(config.out, scope)
    methods = [(compare(ts, m, unit), compare(ts, m, "serial_tokens")) for ts in surface.traces
               for m in methods_for(ts, points)]
    rows = []
    for trace in traces:
        judged = [j for j in verdict.judgements if j.task == trace.task and j.plan == trace.plan.spec]
        if not judged:
            continue
        picks = {"low": judged[min(1, len(judged) - 1)], "medium": judged[len(judged) // 2], "high": judged[-1]}
        rows.append(VerdictRow(trace.task, judged[0].structure, {k: _winner(j) for k, j in picks.items()},
                               _crossings(verdict, trace.task)))
    structure = [c.sentence() for c in verdict.crossovers if c.kind == "structure"]
    return StudyResult(config, unit, rows, paths, structure, notes, methods, scope.model)
