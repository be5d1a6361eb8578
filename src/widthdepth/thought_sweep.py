"""`widthdepth lab sweep --experiment thought` (issue 21): does the latent-thought model's test-time axis —
inference steps (depth) and restarts (width) — buy what more parameters buy, at matched FLOPs? The model
is trained at several decoder widths (and, in `full`, latent sizes) with the shipped recipe (its h = 128
model is the shipped checkpoint), each runs one study grid of restarts x inference steps on few-shot rules
into a store of its own (`DIR/runs/NAME`), and the models are compared as the size sweep compares
reasoners (`size_sweep.compare_sizes`): how many times the inference FLOPs (or total FLOPs, training
spread over `queries`) a smaller model needs to reach the largest one's accuracy, and the levels it never
reaches.

    result = run_thought_sweep("quick", "runs/thought")
    for rate in result.rates: print(rate.sentence())

The folder: `models/RECIPE.safetensors` (written whole, then renamed: a kill retrains, never reads half a
model), `results.jsonl` (a line per model: parameters, training FLOPs, and a quick check — one restart
after the recipe's deepest step count, per rule task — kept in the sweep's own format), and the runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from widthdepth.errors import WidthdepthError
from widthdepth.lab.sweep import RESULTS, append_row, read_results
from widthdepth.size_sweep import QUERIES, SizedModel, SizeResult, compare_sizes

TASKS = ["rule:L=1,k=3", "rule:L=2,k=3", "rule:L=4,k=3", "rule:L=2,k=2", "rule:L=4,k=2"]
PRESETS: dict[str, dict] = {
    "quick": {"arms": {"h32": {"hidden": 32}, "h64": {"hidden": 64}, "h128": {}},
              "study": {"tasks": TASKS, "plans": ["grid:16x16"], "problems": 128}},
    "full": {"arms": {"h64": {"hidden": 64}, "h128": {}, "h256": {"hidden": 256}, "z4": {"latent": 4},
                      "z64": {"latent": 64}},
             "study": {"tasks": TASKS + ["rule:L=1,k=2", "rule:L=4,k=4"], "plans": ["grid:32x32"], "problems": 512}},
}
"""Arms: changes to the shipped recipe (`lab.thought_train.ThoughtTrainConfig`); the study each model runs."""
CHECK_PROBLEMS = 256


def run_thought_sweep(preset: str, folder: str | Path, queries: float = QUERIES,
                      on_event: Callable[[str], None] | None = None, threads: int | None = None) -> SizeResult:
    from widthdepth.lab.thought_train import ThoughtTrainConfig, load_thought

    if preset not in PRESETS:
        raise WidthdepthError(f"--preset {preset!r}: unknown for thought (valid: {', '.join(PRESETS)})")
    folder = Path(folder)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    done = {row["recipe"]: row for row in read_results(folder) if row.get("experiment") == "thought"}
    rows, models = [], []
    for name, change in PRESETS[preset]["arms"].items():
        config = replace(ThoughtTrainConfig(), **change, **({"threads": threads} if threads else {}))
        recipe = _digest(asdict(config))
        path = folder / "models" / f"{recipe}.safetensors"
        if not path.exists():
            _train(config, path, name, on_event)
        row = done.get(recipe)
        if row is None:
            if on_event:
                on_event(f"checking {name}")
            row = _check(load_thought(path), name, recipe, config)
            append_row(folder / RESULTS, row)
        rows.append(row)
        models.append(SizedModel(name, f"h={config.hidden} z={config.latent} ({row['params'] / 1e3:.3g}k)", "thought",
                                 path, float(row["training_flops"])))
    return compare_sizes(models, rows, folder, PRESETS[preset]["study"], queries, on_event)


def _digest(settings: dict) -> str:
    """A recipe's name: its settings but the threads (JSON writes tuples and lists alike)."""
    kept = {k: v for k, v in settings.items() if k != "threads"}
    return hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]


def _train(config, path: Path, name: str, on_event: Callable[[str], None] | None) -> None:  # noqa: ANN001
    """The shipped checkpoint where its recipe is this one; else trained here."""
    from widthdepth.backends.builtin import THOUGHT_CHECKPOINT
    from widthdepth.lab.thought_train import load_thought, train_thought
    from widthdepth.lab.train import save_checkpoint

    partial = path.with_suffix(".partial")
    shipped, metadata = load_thought(THOUGHT_CHECKPOINT) if THOUGHT_CHECKPOINT.is_file() else (None, {})
    if shipped is not None and _digest(json.loads(metadata.get("train_config", "{}"))) == _digest(asdict(config)):
        model, summary, command = shipped, json.loads(metadata["summary"]), metadata.get("command", "")
    else:
        if on_event:
            on_event(f"training {name}")
        model, summary = train_thought(config)
        command = "widthdepth lab sweep --experiment thought"
    save_checkpoint(model, partial, config, summary, command=command)
    os.replace(partial, path)


def _check(loaded, name: str, recipe: str, config) -> dict:  # noqa: ANN001
    """The sweep's row: the model's size and training FLOPs, and per task one restart's right/wrong after the
    recipe's deepest inference step, on fresh problems (a character each)."""
    from widthdepth.lab.thought import sample_grid
    from widthdepth.tasks import load_task

    model, metadata = loaded
    summary = json.loads(metadata["summary"])
    hits: dict[str, str] = {}
    for task in TASKS:
        problems = load_task(task).problems(CHECK_PROBLEMS, seed=1)  # not the studies' problems (seed 0)
        seeds = [[random.Random(f"{task} {i}").randrange(2 ** 31)] for i in range(len(problems))]
        grid = sample_grid(model, [p.structure for p in problems], 1, config.max_steps, seeds)
        hits[task.split(":", 1)[1]] = "".join("1" if g[0][-1].answer == p.gold[0] else "0" for g, p in zip(grid, problems))
    return {"experiment": "thought", "arm": name, "group": "size", "seed": config.seed, "recipe": recipe,
            "params": model.n_params(), "hidden": config.hidden, "latent": config.latent, "d_model": config.hidden,
            "layers": config.blocks, "depth": config.max_steps, "steps": summary["steps"],
            "training_flops": summary["training_flops"], "seconds": summary["seconds"], "device": "cpu",
            "trained_on": "cpu", "chain": {}, "search": {}, "rule": hits}


__all__ = ["PRESETS", "run_thought_sweep"]
