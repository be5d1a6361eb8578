"""`widthdepth lab sweep --experiment thought|memory` (issue 21): does a test-time-optimisation axis buy
what more parameters buy, at matched FLOPs? `thought`: the latent-thought model (inference steps and
restarts) at several decoder widths and latent sizes; `memory`: the fast-weight memory (consolidation
passes and copies) at several embedding sizes. Each model is trained with the shipped recipe (the shipped
checkpoint is the arm whose recipe it is), runs one study grid into a store of its own (`DIR/runs/NAME`),
and the models are compared as the size sweep compares reasoners (`size_sweep.compare_sizes`): how many
times the inference FLOPs (or total FLOPs, training spread over `queries`) a smaller model needs to reach
the largest one's accuracy, and the levels it never reaches.

    result = run_optimisation_sweep("thought", "quick", "runs/thought")
    for rate in result.rates: print(rate.sentence())

The folder: `models/RECIPE.safetensors` (written whole, then renamed: a kill retrains, never reads half a
model), `results.jsonl` (a line per model: parameters, training FLOPs, and a quick check — one restart or
copy after the recipe's deepest step count, per task, on fresh problems — in the lab sweep's format), and
the runs.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from widthdepth.errors import WidthdepthError
from widthdepth.lab.sweep import RESULTS, append_row, read_results
from widthdepth.size_sweep import QUERIES, SizedModel, SizeResult, compare_sizes
from widthdepth.study import RECALLS, RULES



@dataclass(frozen=True)
class Kind:
    lab: str
    """The lab modules: `widthdepth.lab.{lab}` (model, sample_grid) and `{lab}_train` (recipe, training)."""
    recipe: str
    train: str
    load: str
    family: str
    """The rows' key for the check's tasks (the task family)."""
    tasks: list[str]
    depth: str
    """The recipe's field with the deepest step count it trains at (the check reads out there)."""
    presets: dict[str, dict]
    """Arms (changes to the shipped recipe) and the study each model runs."""
    shipped: str
    """`backends.builtin`'s name for the shipped checkpoint."""
    sizes: tuple[str, ...]
    """The recipe's fields that name a model's size in the comparison."""

    def label(self, config, params: int) -> str:  # noqa: ANN001
        sizes = " ".join(f"{field}={getattr(config, field)}" for field in self.sizes)
        return f"{sizes} ({params / 1e3:.3g}k)"


KINDS = {
    "thought": Kind("thought", "ThoughtTrainConfig", "train_thought", "load_thought", "rule", RULES, "max_steps", {
        "quick": {"arms": {"h32": {"hidden": 32}, "h64": {"hidden": 64}, "h128": {}},
                  "study": {"tasks": RULES, "plans": ["grid:16x16"], "problems": 128}},
        "full": {"arms": {"h64": {"hidden": 64}, "h128": {}, "h256": {"hidden": 256}, "z4": {"latent": 4},
                          "z64": {"latent": 64}},
                 "study": {"tasks": RULES + ["rule:L=1,k=2", "rule:L=4,k=4"], "plans": ["grid:32x32"],
                           "problems": 512}}}, "THOUGHT_CHECKPOINT", ("hidden", "latent")),
    "memory": Kind("consolidation", "MemoryTrainConfig", "train_memory", "load_memory", "recall", RECALLS,
                   "max_passes", {
        "quick": {"arms": {"dim8": {"dim": 8}, "dim16": {}, "dim32": {"dim": 32}},
                  "study": {"tasks": RECALLS, "plans": ["grid:8x32"], "problems": 128}},
        "full": {"arms": {"dim8": {"dim": 8}, "dim16": {}, "dim32": {"dim": 32}, "dim64": {"dim": 64}},
                 "study": {"tasks": RECALLS + ["recall:n=48,h=2", "recall:n=48,h=8"], "plans": ["grid:16x64"],
                           "problems": 512}}}, "MEMORY_CHECKPOINT", ("dim",)),
}
CHECK_PROBLEMS = 256


def run_optimisation_sweep(experiment: str, preset: str, folder: str | Path, queries: float = QUERIES,
                           on_event: Callable[[str], None] | None = None, threads: int | None = None) -> SizeResult:
    kind = KINDS[experiment]
    if preset not in kind.presets:
        raise WidthdepthError(f"--preset {preset!r}: unknown for {experiment} (valid: {', '.join(kind.presets)})")
    training = importlib.import_module(f"widthdepth.lab.{kind.lab}_train")
    folder = Path(folder)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    done = {row["recipe"]: row for row in read_results(folder) if row.get("experiment") == experiment}
    rows, models = [], []
    for name, change in kind.presets[preset]["arms"].items():
        config = replace(getattr(training, kind.recipe)(), **change, **({"threads": threads} if threads else {}))
        recipe = _digest(asdict(config))
        path = folder / "models" / f"{recipe}.safetensors"
        if not path.exists():
            _train(kind, training, config, path, f"--experiment {experiment}: {name}", on_event)
        row = done.get(recipe)
        if on_event:
            on_event(f"checking {name}" if row is None else f"checked {name}")
        if row is None:
            row = {"experiment": experiment, "arm": name, "recipe": recipe,
                   **_check(kind, getattr(training, kind.load)(path), config)}
            append_row(folder / RESULTS, row)
        rows.append(row)
        models.append(SizedModel(name, kind.label(config, row["params"]), experiment, path,
                                 float(row["training_flops"])))
    return compare_sizes(models, rows, folder, kind.presets[preset]["study"], queries, on_event)


def _digest(settings: dict) -> str:
    """A recipe's name: its settings but the threads (JSON writes tuples and lists alike)."""
    kept = {k: v for k, v in settings.items() if k != "threads"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def _train(kind: Kind, training, config, path: Path, name: str,  # noqa: ANN001
           on_event: Callable[[str], None] | None) -> None:
    """The shipped checkpoint where its recipe is this one; else trained here."""
    from widthdepth.backends import builtin
    from widthdepth.lab.train import save_checkpoint

    shipped_path = getattr(builtin, kind.shipped)
    shipped, metadata = getattr(training, kind.load)(shipped_path) if shipped_path.is_file() else (None, {})
    if shipped is not None and _digest(json.loads(metadata.get("train_config", "{}"))) == _digest(asdict(config)):
        model, summary, command = shipped, json.loads(metadata["summary"]), metadata.get("command", "")
    else:
        if on_event:
            on_event(f"training {name.split(': ')[-1]}")
        model, summary = getattr(training, kind.train)(config)
        command = f"widthdepth lab sweep {name}"
    partial = path.with_suffix(".partial")
    save_checkpoint(model, partial, config, summary, command=command)
    os.replace(partial, path)


def _check(kind: Kind, loaded, config) -> dict:  # noqa: ANN001
    """The model's size and training FLOPs, and per task one restart's (copy's) right/wrong after the recipe's
    deepest step count, on fresh problems (a character each), in the lab sweep's row format."""
    from widthdepth.tasks import load_task

    model, metadata = loaded
    summary = json.loads(metadata["summary"])
    sample_grid = importlib.import_module(f"widthdepth.lab.{kind.lab}").sample_grid
    depth, hits = getattr(config, kind.depth), {}
    for task in kind.tasks:
        problems = load_task(task).problems(CHECK_PROBLEMS, seed=1)  # not the studies' problems (seed 0)
        seeds = [[random.Random(f"{task} {i}").randrange(2 ** 31)] for i in range(len(problems))]
        grid = sample_grid(model, [p.structure for p in problems], 1, depth, seeds)
        hits[task.split(":", 1)[1]] = "".join("1" if g[0][-1].answer == p.gold[0] else "0" for g, p in zip(grid, problems))
    return {"group": "size", "seed": config.seed, "params": model.n_params(), "depth": depth,
            "d_model": getattr(config, "hidden", getattr(config, "dim", 0)), "steps": summary["steps"],
            "training_flops": summary["training_flops"], "seconds": summary["seconds"], "device": "cpu",
            "trained_on": "cpu", "chain": {}, "search": {}, kind.family: hits}


__all__ = ["CHECK_PROBLEMS", "KINDS", "run_optimisation_sweep"]
