"""`widthdepth lab`: train and check the models widthdepth trains itself.

    widthdepth lab train --family mix --steps 2000 --out reasoner.safetensors
    widthdepth lab eval
    widthdepth lab train-lm --out lm/
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from widthdepth.errors import WidthdepthError
from widthdepth.terminal import console, errors

lab = typer.Typer(help="Train and check the built-in models: the latent reasoner and the small language model.",
                  no_args_is_help=True)


@lab.command("train")
def lab_train(
    out: Annotated[str, typer.Option(help="checkpoint path (.safetensors)")],
    family: Annotated[str, typer.Option(help="chain | search | mix")] = "mix",
    steps: Annotated[int, typer.Option(help="optimizer steps")] = 2000,
    seed: Annotated[int, typer.Option(help="seed: the same seed and steps give the same checkpoint")] = 0,
    batch_size: Annotated[int, typer.Option(help="problems per step")] = 256,
    d_model: Annotated[int, typer.Option(help="width (the FFN is 4×); the shipped reasoner's is 128")] = 128,
    device: Annotated[str, typer.Option(help="cpu (bit-for-bit reproducible) | cuda | cuda:N | auto (a GPU where "
                                             "torch sees one)")] = "cpu",
) -> None:
    """Train a latent reasoner and save it as safetensors."""
    from widthdepth.lab.train import TrainConfig, resolve_device, save_checkpoint, train

    if steps < 1 or batch_size < 1:
        raise WidthdepthError("--steps and --batch-size must be at least 1")
    if d_model < 4 or d_model % 4:
        raise WidthdepthError(f"--d-model {d_model}: give a multiple of 4 (the 4 attention heads split it)")
    config = TrainConfig(family=family, steps=steps, seed=seed, batch_size=batch_size, d_model=d_model,
                         ffn=4 * d_model)
    device = resolve_device(device)
    columns = (TextColumn("training {task.fields[family]}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=errors) as bar:
        task = bar.add_task("train", total=steps, family=family, metrics="")

        def on_step(step: int, metrics: dict[str, float]) -> None:
            shown = " ".join(f"{k} {v:.3f}" for k, v in metrics.items())
            bar.update(task, completed=step, metrics=shown)

        model, summary = train(config, on_step, device)
    width = f" --d-model {d_model}" if d_model != 128 else ""
    command = (f"widthdepth lab train --family {family} --steps {steps} --seed {seed} --batch-size {batch_size}{width} "
               f"--out {out}")
    path = save_checkpoint(model, out, config, summary, command=command)
    console.print(f"saved {path} ({model.n_params():,} parameters) after {summary['seconds']} s: {summary['final']}")


@lab.command("train-thought")
def lab_train_thought(
    out: Annotated[str, typer.Option(help="checkpoint path (.safetensors)")],
    steps: Annotated[int, typer.Option(help="outer (decoder) steps")] = 3000,
    hidden: Annotated[int, typer.Option(help="decoder width; the shipped model's is 128")] = 128,
    latent: Annotated[int, typer.Option(help="size of the inferred vector z")] = 16,
    max_steps: Annotated[int, typer.Option(help="inference steps per batch in training: 1..this")] = 8,
    seed: Annotated[int, typer.Option(help="the same seed, steps and threads give the same weights")] = 0,
    threads: Annotated[int, typer.Option(help="torch threads")] = 2,
) -> None:
    """Train a latent-thought model on few-shot rules (dual-rate: inferred z's, slow decoder)."""
    from widthdepth.lab.thought_train import ThoughtTrainConfig, train_thought
    from widthdepth.lab.train import save_checkpoint

    if min(steps, hidden, latent, max_steps, threads) < 1:
        raise WidthdepthError("--steps, --hidden, --latent, --max-steps and --threads must be at least 1")
    config = ThoughtTrainConfig(steps=steps, hidden=hidden, latent=latent, max_steps=max_steps, seed=seed,
                                threads=threads)
    model, summary = _train_with_bar("the thought model", steps, lambda on_step: train_thought(config, on_step))
    command = (f"widthdepth lab train-thought --steps {steps} --hidden {hidden} --latent {latent} --max-steps "
               f"{max_steps} --seed {seed} --threads {threads} --out {out}")
    path = save_checkpoint(model, out, config, summary, command=command)
    console.print(f"saved {path} ({model.n_params():,} parameters) after {summary['seconds']} s: {summary['final']}; "
                  f"run it with --model builtin:thought,checkpoint={path} --tasks rule:L=2,k=3")


@lab.command("train-memory")
def lab_train_memory(
    out: Annotated[str, typer.Option(help="checkpoint path (.safetensors)")],
    steps: Annotated[int, typer.Option(help="outer (slow-weight) steps")] = 3000,
    dim: Annotated[int, typer.Option(help="embedding size; the fast weights are dim x dim (shipped: 16)")] = 16,
    max_passes: Annotated[int, typer.Option(help="consolidation passes per batch in training: 1..this")] = 8,
    seed: Annotated[int, typer.Option(help="the same seed, steps and threads give the same weights")] = 0,
    threads: Annotated[int, typer.Option(help="torch threads")] = 2,
) -> None:
    """Train the fast-weight memory's slow weights on recall contexts (dual-rate: passes on fast weights)."""
    from widthdepth.lab.consolidation_train import MemoryTrainConfig, train_memory
    from widthdepth.lab.train import save_checkpoint

    if min(steps, dim, max_passes, threads) < 1:
        raise WidthdepthError("--steps, --dim, --max-passes and --threads must be at least 1")
    config = MemoryTrainConfig(steps=steps, dim=dim, max_passes=max_passes, seed=seed, threads=threads)
    model, summary = _train_with_bar("the memory", steps, lambda on_step: train_memory(config, on_step))
    command = (f"widthdepth lab train-memory --steps {steps} --dim {dim} --max-passes {max_passes} --seed {seed} "
               f"--threads {threads} --out {out}")
    path = save_checkpoint(model, out, config, summary, command=command)
    console.print(f"saved {path} ({model.n_params():,} parameters) after {summary['seconds']} s: {summary['final']}; "
                  f"run it with --model builtin:memory,checkpoint={path} --tasks recall:n=32,h=2")


def _train_with_bar(name: str, steps: int, train):  # noqa: ANN001, ANN202
    """`train(on_step)` under a progress bar of its steps and metrics."""
    columns = (TextColumn(f"training {name}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=errors) as bar:
        task = bar.add_task("train", total=steps, metrics="")

        def on_step(step: int, metrics: dict[str, float]) -> None:
            bar.update(task, completed=step, metrics=" ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

        return train(on_step)


@lab.command("eval")
def lab_eval(
    checkpoint: Annotated[Optional[str], typer.Option(help="checkpoint (default: the shipped one)")] = None,
    problems: Annotated[int, typer.Option(help="fresh problems per structure")] = 300,
) -> None:
    """Chain accuracy by length and iteration; search coverage by number of trajectories."""
    from widthdepth.backends.builtin import DEFAULT_CHECKPOINT
    from widthdepth.lab.evaluate import evaluate
    from widthdepth.lab.train import load_checkpoint

    model, metadata = load_checkpoint(checkpoint or DEFAULT_CHECKPOINT)
    report = evaluate(model, problems=problems)
    console.print(f"checkpoint made by: {metadata.get('command', '?')}")
    for length, accuracy in report["chain_accuracy_by_iteration"].items():
        console.print(f"chain L={length}  accuracy at iterations 1..10: " + " ".join(f"{a:.2f}" for a in accuracy))
    for n, coverage in report["search_coverage_by_k"].items():
        console.print(f"search n={n}  coverage at k=1,2,4,8,16: " + " ".join(f"{coverage[k - 1]:.2f}" for k in (1, 2, 4, 8, 16)))


@lab.command("train-lm")
def lab_train_lm(
    out: Annotated[str, typer.Option(help="the model folder to write (transformers files and lm.gguf)")],
    preset: Annotated[str, typer.Option(help="cpu (the shipped model, ~20 min on 2 cores) | gpu | tiny (tests)")] = "cpu",
    steps: Annotated[Optional[int], typer.Option(help="optimizer steps (default: the preset's)")] = None,
    seed: Annotated[int, typer.Option(help="the same seed, steps and threads give the same weights")] = 0,
    threads: Annotated[Optional[int], typer.Option(help="torch threads (default: the preset's, 2)")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu | cuda (default: the preset's)")] = None,
) -> None:
    """Train the built-in language model from scratch; rerun the same command to resume after a stop."""
    from widthdepth.lab.lm.train import check_folder, preset_config, train_lm

    if (steps is not None and steps < 1) or (threads is not None and threads < 1):
        raise WidthdepthError("--steps and --threads must be at least 1")
    config = preset_config(preset, steps=steps, seed=seed, threads=threads, device=device)
    check_folder(out, config)
    columns = (TextColumn("training the LM"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=errors) as bar:
        task = bar.add_task("train", total=config.steps, metrics="")

        def on_step(step: int, metrics: dict[str, float]) -> None:
            bar.update(task, completed=step, metrics=" ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

        summary = train_lm(config, out, on_step)
    console.print(f"saved {out} ({summary['parameters']:,} parameters, {summary['seconds']} s of training): "
                  f"run it with --model hf:{out} or llamacpp:{out}/lm.gguf")


@lab.command("sweep")
def lab_sweep(
    experiment: Annotated[str, typer.Option(help="shape (deep-thin against wide at fixed parameters) | depth "
                                                 "(critical depths; unique stacks against the looped model) | size "
                                                 "(model size against inference compute, at matched FLOPs) | thought "
                                                 "(the latent-thought model's inference steps and restarts against "
                                                 "its size) | memory (consolidation passes and copies against "
                                                 "the memory's size)")],
    out: Annotated[str, typer.Option(help="folder: trained models, results.jsonl (size: a run per model); a rerun "
                                          "resumes")],
    preset: Annotated[str, typer.Option(help="quick (minutes on 2 cores) | full (longer; resumable) | gpu (for "
                                             "--device cuda)")] = "quick",
    queries: Annotated[float, typer.Option(help="size: queries the training FLOPs are spread over, in total FLOPs "
                                                "per query")] = 1_000_000,
    device: Annotated[str, typer.Option(help="auto (a GPU where torch sees one) | cpu | cuda | cuda:N: where "
                                             "models train and run")] = "auto",
    threads: Annotated[Optional[int], typer.Option(help="CPU threads for torch (default 2; 1 lets two sweeps "
                                                        "share 2 cores)")] = None,
) -> None:
    """Train and evaluate reasoners of different shapes, depths or sizes; resumes what a folder holds."""
    from pathlib import Path

    from widthdepth.lab.sweep import run_sweep
    from widthdepth.lock import folder_lock
    from widthdepth.optimisation_sweep import KINDS

    sweep, device = _sweep_options(experiment, preset, device, queries, threads)
    errors.print(f"models train and run on {device}", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("models"),
               TimeElapsedColumn())
    with folder_lock(out), Progress(*columns, console=errors) as bar:
        task = bar.add_task("starting", total=len(KINDS[experiment].presets[preset]["arms"]) if sweep is None
                            else len(sweep.arms) * sweep.seeds)

        def on_event(text: str) -> None:
            bar.update(task, description=text, advance=1 if text.startswith(("evaluating", "check")) else 0)

        result = None
        if sweep is None:
            from widthdepth.optimisation_sweep import run_optimisation_sweep

            result = run_optimisation_sweep(experiment, preset, out, queries, on_event, threads)
        elif experiment == "size":
            from widthdepth.size_sweep import run_size_sweep

            result = run_size_sweep(sweep, out, queries, on_event=on_event, device=device, threads=threads)
        rows = result.rows if result else run_sweep(sweep, out, on_event, device, threads)
    _print_summary(experiment, preset, sweep, rows)
    command = (f"widthdepth lab sweep --experiment {experiment} --preset {preset} --out {out}"
               + (f" --queries {queries:g}" if result else "") + f" --device {device}")
    _write_outputs(Path(out), experiment, preset, rows, result, queries, command)


def _sweep_options(experiment: str, preset: str, device: str, queries: float, threads: int | None):  # noqa: ANN202
    """The sweep's plan (None: thought and memory, which plan themselves) and device, or a one-line error."""
    from widthdepth.lab.sweep import EXPERIMENTS, plan_sweep
    from widthdepth.lab.train import resolve_device
    from widthdepth.optimisation_sweep import KINDS

    if experiment not in (*EXPERIMENTS, *KINDS):
        raise WidthdepthError(f"--experiment {experiment!r}: unknown (valid: {', '.join((*EXPERIMENTS, *KINDS))})")
    sweep = None if experiment in KINDS else plan_sweep(experiment, preset)
    if sweep is None and preset not in KINDS[experiment].presets:
        raise WidthdepthError(f"--preset {preset!r}: unknown for {experiment} (valid: "
                              f"{', '.join(KINDS[experiment].presets)})")
    device = "cpu" if sweep is None and device == "auto" else resolve_device(device)
    if not queries > 0 or queries == float("inf"):
        raise WidthdepthError(f"--queries {queries}: give a positive number of queries (e.g. 1e6)")
    if threads is not None:
        if threads < 1:
            raise WidthdepthError(f"--threads {threads}: give at least 1")
        import torch

        torch.set_num_threads(threads)  # evaluation and studies; training takes them from run_sweep
    if sweep is None and device != "cpu":
        raise WidthdepthError(f"--device {device}: the {experiment} sweep runs on the CPU (give --device cpu)")
    return sweep, device


def _write_outputs(out, experiment: str, preset: str, rows: list[dict], result, queries: float,  # noqa: ANN001
                   command: str) -> None:
    """DIR/figure.png and DIR/report.html (size: with its rates, printed too)."""
    from widthdepth.report.sweep import size_figure, sweep_figure
    from widthdepth.report.sweep_page import write_sweep_page
    from widthdepth.report.vega import to_png

    png = to_png(*(size_figure(result.runs, queries) if result else sweep_figure(experiment, rows)))
    figure = out / "figure.png"
    figure.write_bytes(png)
    page = write_sweep_page(out, experiment, preset, rows, png, result.rates if result else None, command)
    if result:
        from widthdepth.report.compare import rate_table
        from widthdepth.terminal import print_table

        print_table("the smaller models against the largest: how many times its FLOPs each needs to reach the "
                    "largest one's accuracy (median over its frontier's levels, and their range)",
                    ("task", "models", "inference FLOPs", f"total FLOPs, training over {queries:,.0f} queries"),
                    rate_table(result.rates))
        console.print(f"runs side by side: {result.paths['compare']}; per model: {out}/runs/NAME/report.html")
    console.print(f"report: {page}")
    console.print(f"results: {out}/results.jsonl; figure: {figure}")


def _print_summary(experiment: str, preset: str, sweep, rows: list[dict]) -> None:  # noqa: ANN001
    from widthdepth.report.sweep import contrast_lines, critical_lines, summary_table
    from widthdepth.terminal import print_table

    if sweep is None:  # thought, memory: one model per arm, a quick check beside its study
        from widthdepth.optimisation_sweep import CHECK_PROBLEMS

        title = (f"{experiment} sweep ({preset}): one restart (copy) after the recipe's deepest step count, on "
                 f"{CHECK_PROBLEMS} fresh problems per task [95% interval over problems]")
    else:
        title = (f"{experiment} sweep ({preset}): accuracy on {sweep.problems} fresh problems per task over "
                 f"{sweep.seeds} seed{'s' if sweep.seeds > 1 else ''} [95% interval, resampling seeds and problems]")
    print_table(title, *summary_table(rows))
    for line in critical_lines(rows) + (contrast_lines(rows) if experiment == "shape" else []):
        console.print(line, markup=False)
