"""A run folder's grid traces for allocation: one model's grid of one shape, with `auto` settings
resolved; and fitting from it.

    selection = select("runs/alloc")
    policy, train, test, left_out = fit_from(selection, bins=3, holdout=0.5)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from widthdepth.allocation.fit import fit_policy
from widthdepth.allocation.judge import split
from widthdepth.allocation.records import ProblemRecord, Records, problem_records
from widthdepth.analysis.traces import GridTrace
from widthdepth.cost import UNITS, default_unit
from widthdepth.errors import WidthdepthError
from widthdepth.plans.policy import PREDICTORS, Policy


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
    labels: str = "gold"
    """"gold", or "verifier" for served traffic: an answer is right when the server's verifier accepted it
    (`widthdepth.analysis.served`), so accuracy here is agreement with that verifier."""

    @property
    def tasks(self) -> list[str]:
        return [t.task for t in self.traces]


def _served_traces(folder: str | Path) -> tuple[bool, list[GridTrace]]:
    """Whether the folder holds served traffic, and its grid traces labelled by the server's verifier."""
    from widthdepth.analysis.served import served_traces
    from widthdepth.store import Store

    store = Store.open(folder, create=False)
    try:
        return bool(store.served_requests()), served_traces(store)
    finally:
        store.close()


def _grid_traces(folder: str | Path) -> tuple[list[GridTrace], str]:
    """The folder's grid traces of at least 2 chains and how they are labelled: by gold answers, or, for
    served traffic, by the server's verifier."""
    from widthdepth.analysis.traces import open_traces

    traces = [t for t in open_traces(folder) if t.plan.rounds >= 1 and t.plan.chains >= 2]
    if traces:
        return traces, "gold"
    served, labelled = _served_traces(folder)
    traces = [t for t in labelled if t.plan.chains >= 2]
    if served and not traces:
        raise WidthdepthError(f"{folder}: served traffic has no gold answers, and none of its grid requests "
                              "(at least 2 chains, n = 1) was scored by a verifier; serve with --verifier self "
                              "(or reward:URL) and a grid plan (e.g. --plan grid:8x2) to fit on the verifier's "
                              "labels, or fit on a run with gold answers (your data as jsonl:)")
    return traces, "verifier"


def select(folder: str | Path, tasks: list[str] | None = None, plan: str | None = None, model: str | None = None,
           predictor: str = "auto", probe: int = 0, unit: str = "auto") -> Selection:
    """One model's grid traces of one shape from a run folder (by default the model and grid with the
    most problems), with `auto` settings resolved: unit flops for latent reasoners, else generated
    tokens; predictor confidence where every attempt carries one, else agreement; probe 1 for
    confidence and verifier, 4 for agreement."""
    from widthdepth.plans import load_plan

    traces, labels = _grid_traces(folder)
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
        sizes_by_shape[(t.model, t.plan.spec)] += t.problem_count
    chosen_model, grid = max(sizes_by_shape, key=lambda k: (sizes_by_shape[k], k))
    traces = [t for t in traces if (t.model, t.plan.spec) == (chosen_model, grid)]
    if unit == "auto":
        unit = default_unit(traces[0].latent)
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
    return Selection(traces, chosen_model, grid, traces[0].plan.mode, unit, predictor, probe, labels)


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
