"""`widthdepth lab sweep --experiment size` (issue 20; Snell et al. 2024): inference compute against model
size. The reasoner is trained at several widths with the shipped recipe (`lab.sweep`: its d = 128 model
is the shipped checkpoint), each size runs one study grid on the standard tasks into a store of its own
(`DIR/runs/NAME`, resumable like any run), and the sizes are compared at matched FLOPs: in inference
FLOPs per problem, and in total FLOPs, each problem's inference plus the model's training spread over
`queries` queries. The rate per task: how many times the compute the smaller model needs to reach the
largest one's accuracy, and the accuracy levels no amount of it reaches.

    result = run_size_sweep(plan_sweep("size", "quick"), "runs/size", queries=1e6)
    for rate in result.rates: print(rate.sentence())
"""

from __future__ import annotations

import filecmp
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from widthdepth.errors import WidthdepthError
from widthdepth.lab.sweep import Sweep, run_sweep
from widthdepth.report.compare import ExchangeRate, Run, load_run, size_rates, write_runs

STUDY: dict[str, dict] = {
    "quick": {"tasks": ["chain:L=1", "chain:L=2", "chain:L=4", "chain:L=6", "search:kind=subset,n=6",
                        "search:kind=subset,n=8", "search:kind=subset,n=10", "mix:L=4,n=8"],
              "plans": ["grid:16x8"], "problems": 64},
    "full": {"tasks": ["chain:L=1", "chain:L=2", "chain:L=4", "chain:L=6", "chain:L=8", "search:kind=subset,n=6",
                       "search:kind=subset,n=8", "search:kind=subset,n=10", "search:kind=subset,n=12",
                       "mix:L=4,n=8"],
             "plans": ["grid:32x10"], "problems": 128},
}
"""The study each size runs: one grid on the standard tasks (the latent study's tasks), the same for all."""
STUDY["gpu"] = STUDY["full"]
QUERIES = 1_000_000
"""Queries the training FLOPs are spread over, unless given (`--queries`)."""


@dataclass
class SizeResult:
    rows: list[dict]
    """The sweep's rows (one per size): parameters, training FLOPs, and the quick evaluation."""
    runs: list[Run]
    rates: list[ExchangeRate]
    paths: dict[str, Path]


def run_size_sweep(sweep: Sweep, folder: str | Path, queries: float = QUERIES, study: dict | None = None,
                   on_event: Callable[[str], None] | None = None, device: str = "cpu",
                   threads: int | None = None) -> SizeResult:
    """Train (or read) each size, run its study (resuming what its store holds), compare the sizes; all on
    `device` (not part of a model's id: a run resumes on another device)."""
    if sweep.seeds != 1:
        raise ValueError("the size experiment runs one seed per size (its intervals are over problems)")
    folder = Path(folder)
    rows = run_sweep(sweep, folder, on_event, device, threads)
    models = [SizedModel(row["arm"], f"d={row['d_model']} ({row['params'] / 1e6:.2g}M)", "reasoner",
                         folder / "models" / f"{row['recipe']}-s{row['seed']}.safetensors", float(row["training_flops"]))
              for row in rows]
    return compare_sizes(models, rows, folder, study or STUDY[sweep.preset], queries, on_event, device)


@dataclass(frozen=True)
class SizedModel:
    name: str
    """Its run's folder name (`DIR/runs/NAME`) and checkpoint name: d64, h128."""
    label: str
    """How the comparison names it: "d=64 (0.12M)"."""
    builtin: str
    """The built-in model it is: reasoner, thought or memory."""
    checkpoint: Path
    training_flops: float


def compare_sizes(models: list[SizedModel], rows: list[dict], folder: Path, study: dict, queries: float,
                  on_event: Callable[[str], None] | None = None, device: str = "cpu") -> SizeResult:
    """Each model's study (one store each, resumable), then the runs side by side and their exchange rates."""
    from widthdepth.study import StudyConfig, run_study

    runs: list[Run] = []
    for model in models:
        out = folder / "runs" / model.name
        checkpoint = _named_checkpoint(model.checkpoint, out / f"{model.builtin}-{model.name}.safetensors")
        on = "" if device == "cpu" else f",device={device}"
        ran = run_study(StudyConfig(model=f"builtin:{model.builtin},checkpoint={checkpoint}{on}", out=str(out),
                                    overrides=dict(study)), _Attempts(model.name, on_event))
        run = load_run(str(out), set(), ran.model)  # this model's experiments only
        runs.append(replace(run, label=model.label, training_flops=model.training_flops))
    rates = size_rates(runs, queries)
    return SizeResult(rows, runs, rates, write_runs(runs, folder, rates=rates))


class _Attempts:
    """The runner's progress as sweep events, at most twice a second: "running the study grid on d64: n/N attempts"."""

    def __init__(self, name: str, on_event: Callable[[str], None] | None) -> None:
        self.name, self.on_event, self.total, self.done, self.shown = name, on_event, 0, 0, 0.0

    def add_total(self, attempts: int) -> None:
        self.total += attempts
        self._show(force=True)

    def advance(self, attempts: int, generated_tokens: int = 0) -> None:
        self.done += attempts
        self._show()

    def describe(self, text: str) -> None:
        pass

    def _show(self, force: bool = False) -> None:
        if self.on_event and (force or time.monotonic() - self.shown > 0.5):
            self.shown = time.monotonic()
            self.on_event(f"running the study grid on {self.name}: {self.done:,}/{self.total:,} attempts")


def _named_checkpoint(model: Path, named: Path) -> Path:
    """The model under a name the run's model id shows (`reasoner-d64.safetensors`): a hard link, or a copy;
    made again when the model was trained again (another file: the run then holds a second model id)."""
    if not model.is_file():
        raise WidthdepthError(f"{model}: the sweep's row for this model is in results.jsonl but its checkpoint is "
                              "gone; delete that row (or the folder) to train it again")
    if not named.exists() or not filecmp.cmp(model, named, shallow=False):
        named.parent.mkdir(parents=True, exist_ok=True)
        partial = named.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        try:
            os.link(model, partial)
        except OSError:
            shutil.copyfile(model, partial)
        os.replace(partial, named)
    return named


__all__ = ["QUERIES", "STUDY", "SizeResult", "SizedModel", "compare_sizes", "run_size_sweep"]
