"""The `widthdepth` command: thin; it parses, calls the library and prints.

    widthdepth run --model llamacpp:smollm2-135m --tasks chain:L=4 --tasks search --plan grid:4x2 \\
                   --problems 10 --seed 0 --out runs/demo
    widthdepth run --recipe recipes/demo.yaml problems=3 out=runs/quick
    widthdepth models
    widthdepth tasks
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from widthdepth.cli_forecast import forecast_command
from widthdepth.cli_lab import lab
from widthdepth.cli_serve import serve_command
from widthdepth.closing import closing_table
from widthdepth.config import RunConfig, load_config
from widthdepth.cost import UNIT_DEFINITION
from widthdepth.errors import Interrupted, WidthdepthError
from widthdepth.listings import list_models, list_tasks
from widthdepth.lock import folder_lock
from widthdepth.progress import RichProgress, attempt_progress
from widthdepth.terminal import (console, cost_format, errors, print_allocations, print_closing_table, print_evaluation,
                                 print_method_comparisons, print_methods, print_table, write_closing_csv)
from widthdepth.verifiers import VERIFIERS

app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="Width or depth? Measure how extra inference compute should be spent.")
def setting(name: str, extra: str = "") -> str:
    """An option's help: the setting's own description in RunConfig, and its default (one definition)."""
    field = RunConfig.model_fields[name]
    default = field.get_default(call_default_factory=True)
    shown = " ".join(str(v) for v in default) if isinstance(default, list) else default
    return f"{' '.join((field.description or '').split()).rstrip('.')}{extra} (default: {shown})."


VERIFIER_HELP = f"; auto: {VERIFIERS['auto']}"
ExecutorOpt = Annotated[Optional[str], typer.Option(help=setting("executor"), rich_help_panel="Ray")]
ReplicasOpt = Annotated[Optional[int], typer.Option(help=setting("replicas"), rich_help_panel="Ray")]
ReplicaCpusOpt = Annotated[Optional[float], typer.Option(help=setting("replica_cpus"), rich_help_panel="Ray")]
ReplicaGpusOpt = Annotated[Optional[float], typer.Option(help=setting("replica_gpus"), rich_help_panel="Ray")]
ChunkOpt = Annotated[Optional[int], typer.Option(help=setting("chunk"), rich_help_panel="Ray")]


@app.command()
def run(
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value settings, applied last")] = None,
    recipe: Annotated[Optional[str], typer.Option(help="YAML recipe with any of the settings below")] = None,
    model: Annotated[Optional[str], typer.Option(help=setting("model"))] = None,
    tasks: Annotated[Optional[list[str]], typer.Option(help=setting("tasks"))] = None,
    plan: Annotated[Optional[list[str]], typer.Option(help=setting("plans"))] = None,
    problems: Annotated[Optional[int], typer.Option(help=setting("problems"))] = None,
    seed: Annotated[Optional[int], typer.Option(help=setting("seed"))] = None,
    repeats: Annotated[Optional[int], typer.Option(help=setting("repeats"))] = None,
    out: Annotated[Optional[str], typer.Option(help=setting("out"))] = None,
    max_tokens: Annotated[Optional[int], typer.Option(help=setting("max_tokens"))] = None,
    temperature: Annotated[Optional[float], typer.Option(help=setting("temperature"))] = None,
    top_p: Annotated[Optional[float], typer.Option(help=setting("top_p"))] = None,
    verifier: Annotated[Optional[str], typer.Option(help=setting("verifier", VERIFIER_HELP))] = None,
    threads: Annotated[Optional[int], typer.Option(help=setting("threads"))] = None,
    context_length: Annotated[Optional[int], typer.Option(help=setting("context_length"))] = None,
    executor: ExecutorOpt = None,
    replicas: ReplicasOpt = None,
    replica_cpus: ReplicaCpusOpt = None,
    replica_gpus: ReplicaGpusOpt = None,
    chunk: ChunkOpt = None,
    api_key: Annotated[Optional[str], typer.Option(help="API key for openai: servers (else $WIDTHDEPTH_API_KEY, "
                                                        "$OPENAI_API_KEY); never stored")] = None,
    wide: Annotated[bool, typer.Option(help="the closing table with every column at any terminal width "
                                            "(always written whole to OUT/closing.csv)")] = False,
) -> None:
    """Run tasks x plans on a model; resumes from the store in --out."""
    from widthdepth.runner import prepare, run as run_plans

    config = load_config(recipe, overrides or [], model=model, tasks=tasks, plans=plan, problems=problems,
                         seed=seed, repeats=repeats, out=out, max_tokens=max_tokens, temperature=temperature, top_p=top_p,
                         verifier=verifier, threads=threads, context_length=context_length, executor=executor,
                         replicas=replicas, replica_cpus=replica_cpus, replica_gpus=replica_gpus, chunk=chunk)
    prepared = prepare(config)  # all validation before the progress bar and before any store is touched
    try:
        with folder_lock(config.out), attempt_progress(errors) as bar:  # a busy folder: one line, before the bar
            result = run_plans(prepared, progress=RichProgress(bar), api_key=api_key)
    except KeyboardInterrupt:
        raise interrupted(config.out) from None
    rows = closing_table(result)
    if rows or not (result.allocations or result.methods):
        csv_path = Path(config.out) / "closing.csv"
        write_closing_csv(rows, csv_path)
        print_closing_table(rows, csv_path, wide)
    if result.allocations:
        print_allocations(result.allocations)
    if result.methods:
        print_methods(result.methods)
    console.print(f"model {result.model} ({result.n_params:,} parameters); generated {result.generated} attempts, "
                  f"reused {result.reused} from the store in {config.out}")
    other = folder_contents_note(result)
    if other:
        console.print(other, style="yellow", soft_wrap=True)
    if result.verification_failures:
        console.print(f"{len(result.verification_failures)} verifications failed and were left unverified "
                      f"(first: {result.verification_failures[0]}); rerun the command to retry them")
    console.print(f"cost: {UNIT_DEFINITION}", style="dim")


@app.command()
def study(
    model: Annotated[str, typer.Option(help="model; the default is the built-in latent reasoner")] = "builtin:reasoner",
    preset: Annotated[str, typer.Option(help="quick | full")] = "quick",
    out: Annotated[str, typer.Option(help="output folder")] = "runs/study",
    seed: Annotated[int, typer.Option(help="seed for problems and sampling")] = 0,
    threads: Annotated[int, typer.Option(help=setting("threads").rsplit(" (default", 1)[0])] = 0,
    overrides: Annotated[Optional[list[str]], typer.Argument(help="key=value settings over the preset")] = None,
    api_key: Annotated[Optional[str], typer.Option(help="API key for openai: servers; never stored")] = None,
    executor: ExecutorOpt = None,
    replicas: ReplicasOpt = None,
    replica_cpus: ReplicaCpusOpt = None,
    replica_gpus: ReplicaGpusOpt = None,
    chunk: ChunkOpt = None,
) -> None:
    """The main job: the standard suite under grid plans, the report, and the verdict table."""
    from widthdepth.config import parse_overrides
    from widthdepth.report.answer import task_labels
    from widthdepth.study import VERDICT_LEGEND, StudyConfig, run_study, study_run_config

    from widthdepth.runner import prepare

    ray_options = {"executor": executor, "replicas": replicas, "replica_cpus": replica_cpus,
                   "replica_gpus": replica_gpus, "chunk": chunk}
    config = StudyConfig(model, preset, out, seed, threads, {**{k: v for k, v in ray_options.items() if v is not None},
                                                             **parse_overrides(overrides or [])})
    prepare(study_run_config(config))  # validate everything before the progress bar and the store
    start = time.perf_counter()
    try:
        with folder_lock(out), attempt_progress(errors) as bar:
            result = run_study(config, progress=RichProgress(bar), api_key=api_key)
    except KeyboardInterrupt:
        raise interrupted(out) from None
    unit = {"flops": "FLOPs", "generated_tokens": "generated tokens"}[result.unit]
    labels = task_labels([row.task for row in result.rows], compact=True)
    print_table(f"who wins at a low, medium and high budget ({unit} per problem)",
                ("task", "low", "medium", "high", "crossover"),
                [(labels[row.task], row.winners["low"], row.winners["medium"], row.winners["high"], row.crossover)
                 for row in result.rows], legend=VERDICT_LEGEND)
    if result.methods:
        print_method_comparisons(result.methods, unit)
    for sentence in result.sentences:
        console.print(f"crossover across structure: {sentence}")
    for note in result.notes:
        console.print(note, style="yellow", soft_wrap=True)
    console.print(f"report: {result.paths['report']}  ({time.perf_counter() - start:.0f} s in all)")


app.add_typer(lab, name="lab")
app.command("serve")(serve_command)
app.command("forecast")(forecast_command)


allocate = typer.Typer(no_args_is_help=True, help="Adaptive allocation: a width/depth plan per predicted difficulty, "
                                                   "fitted on some problems and judged on others.")
app.add_typer(allocate, name="allocate")

FolderArg = Annotated[str, typer.Argument(help="a run folder with a grid run (e.g. --plan grid:16x8)")]
TaskOpt = Annotated[Optional[list[str]], typer.Option("--task", help="tasks to pool (default: every task of the grid)")]
PlanOpt = Annotated[Optional[str], typer.Option(help="the grid run to use (default: the one with most problems)")]
ModelOpt = Annotated[Optional[str], typer.Option(help="the model whose runs to use (default: the one with most problems)")]
PredictorOpt = Annotated[str, typer.Option(help="auto | agreement | confidence | verifier (auto: confidence "
                                                "where the model reports it, else agreement)")]
ProbeOpt = Annotated[int, typer.Option(help="attempts in the probe (0: 1 for confidence/verifier, 4 for agreement)")]
BinsOpt = Annotated[int, typer.Option(help="predicted-difficulty bins (quantiles of the training problems)")]
UnitOpt = Annotated[str, typer.Option(help="auto | flops | generated_tokens | serial_tokens")]


@allocate.command("fit")
def allocate_fit(
    folder: FolderArg,
    out: Annotated[str, typer.Option(help="where to write the policy (JSON)")],
    task: TaskOpt = None, plan: PlanOpt = None, model: ModelOpt = None, predictor: PredictorOpt = "auto",
    probe: ProbeOpt = 0, bins: BinsOpt = 3, unit: UnitOpt = "auto",
    holdout: Annotated[float, typer.Option(help="share of problems held out for `allocate eval` (0: fit on all)")] = 0.5,
    seed: Annotated[int, typer.Option(help="seed of the held-out split")] = 0,
) -> None:
    """Fit a policy (difficulty bin x budget -> plan) on the training problems of a grid run."""
    from widthdepth.allocation import fit_from, select

    selection = select(folder, task, plan, model, predictor, probe, unit)
    policy, train, test, left_out = fit_from(selection, bins, holdout, seed)
    policy.save(out)
    fmt = cost_format(policy.unit)
    print_table(f"policy {out}: {policy.predictor}, probe {policy.probe}, {policy.bins} bins (edges "
                f"{', '.join(f'{e:.3g}' for e in policy.edges) or 'none'}), fitted on {len(train)} problems",
                ("budget", "train accuracy", "train cost", "plans by bin (hardest first)"),
                [(fmt(level.budget), f"{level.train_accuracy:.3f}", fmt(level.train_cost),
                  " | ".join(f"{w}x{d} {a}" for w, d, a in level.plans)) for level in policy.levels],
                right=("train accuracy", "train cost"))
    console.print(f"{selection.model} {selection.grid} on {', '.join(selection.tasks)}; cost in {policy.unit}")
    if selection.labels == "verifier":
        console.print(f"labels: served problems have no gold answers; an answer counts as right where the verifier "
                      f"({policy.verifier}) accepted it, so the policy is exactly as good as that verifier")
    if left_out:
        console.print(f"{left_out} problems left out: a failed or missing attempt in their grid (rerun the grid "
                      "to fill it)")
    if test:
        console.print(f"{len(test)} problems held out: judge the policy with "
                      f"`widthdepth allocate eval {folder} --policy {out}`")


@allocate.command("eval")
def allocate_eval(
    folder: FolderArg,
    policy: Annotated[Optional[str], typer.Option(help="a policy from `allocate fit`: judged on the problems it "
                                                       "was not fitted on")] = None,
    folds: Annotated[int, typer.Option(help="without --policy: k-fold cross-validation with this many folds")] = 5,
    task: TaskOpt = None, plan: PlanOpt = None, model: ModelOpt = None, predictor: PredictorOpt = "auto",
    probe: ProbeOpt = 0, bins: BinsOpt = 3, unit: UnitOpt = "auto",
    seed: Annotated[int, typer.Option(help="seed of the folds")] = 0,
) -> None:
    """Judge adaptive allocation on held-out problems against width-only, depth-only, the best fixed
    hybrid and gold-binned allocation (bins from gold pass@1); writes FOLDER/allocation.json and redraws the report."""
    from widthdepth.allocation import cross_validate, evaluate, load_policy, problem_records, save_evaluation, select
    from widthdepth.report import write_report

    if policy:
        fitted = load_policy(policy)
        selection = select(folder, task or None, plan or fitted.grid or None, model or fitted.model or None,
                           fitted.predictor, fitted.probe, fitted.unit)
        if fitted.tasks and not set(selection.tasks) & set(fitted.tasks):
            console.print(f"note: the policy was fitted on {', '.join(fitted.tasks)} and is judged here on "
                          f"{', '.join(selection.tasks)}: other tasks", style="yellow", soft_wrap=True)
        records = problem_records(selection.traces, fitted.probe, fitted.unit, fitted.predictor)
        with console.status("judging the policy on held-out problems"):
            evaluation = evaluate(fitted, records)
    else:
        selection = select(folder, task, plan, model, predictor, probe, unit)
        records = problem_records(selection.traces, selection.probe, selection.unit, selection.predictor)
        with console.status(f"{folds}-fold cross-validation over {len(records)} problems"):
            evaluation = cross_validate(records, selection.predictor, selection.probe, bins, selection.unit,
                                        folds, seed)
    print_evaluation(evaluation)
    if records.left_out:
        console.print(f"{records.left_out} problems left out: a failed or missing attempt in their grid (rerun "
                      "the grid to fill it)")
    path = save_evaluation(evaluation, folder, policy or "")
    paths = write_report(folder)
    console.print(f"{selection.model} {selection.grid} on {', '.join(selection.tasks)}")
    console.print(f"wrote {path} and {paths['report']}")


@app.command()
def report(
    folders: Annotated[list[str], typer.Argument(help="a run's output folder (holds widthdepth.sqlite); several: "
                                                      "the runs side by side")],
    static: Annotated[bool, typer.Option("--static", help="figures as PNG images (for papers) instead of "
                                                          "interactive ones")] = False,
    out: Annotated[Optional[str], typer.Option(help="with several folders: where compare.html goes (default: "
                                                    "the first folder)")] = None,
    workers: Annotated[Optional[int], typer.Option(min=1, help="processes that read and estimate the experiments "
                                                             "(default: one per core for a large store)")] = None,
) -> None:
    """Write OUT/report.html, OUT/surface.csv and OUT/verdict.json from the store; with several folders,
    compare.html: their frontiers overlaid and the exchange rate between model size and compute."""
    from widthdepth.report import write_report

    if len(folders) > 1:
        from widthdepth.report.compare import write_comparison

        with console.status("estimating each run's surface"):
            paths = write_comparison(folders, out, static)
    else:
        if out is not None:
            raise WidthdepthError("--out: a report is written into its run's folder; --out is for several folders")
        notes: list[str] = []
        with console.status("estimating the surface and drawing the report"):
            paths = write_report(folders[0], notes, static=static, workers=workers)
        for note in notes:
            console.print(note, style="yellow", soft_wrap=True)
    for name, path in paths.items():
        console.print(f"{name:>8}: {path}")


@app.command()
def export(
    folder: Annotated[str, typer.Argument(help="a run's output folder (holds widthdepth.sqlite)")],
    format: Annotated[str, typer.Option(help="parquet | csv")] = "parquet",  # noqa: A002 - the option's name
    out: Annotated[Optional[str], typer.Option(help="folder for the files (default: FOLDER/export)")] = None,
) -> None:
    """Write the store's attempts, verifications, problems and surface as Parquet (or CSV), streamed."""
    from widthdepth.export import export_folder

    with console.status("exporting"):
        paths = export_folder(folder, format, out)
    for name, path in paths.items():
        console.print(f"{name:>13}: {path}")


@app.command()
def models() -> None:
    """List the embedded models and the backends."""
    table = Table(title="models")
    for name in ("name", "style", "installed", "description"):
        table.add_column(name)
    for row in list_models():
        table.add_row(row["name"], row["style"], row["installed"], row["description"])
    console.print(table)


@app.command()
def tasks() -> None:
    """List task families, plans and verifiers with their syntax."""
    table = Table(title="task families, plans and verifiers")
    for name in ("kind", "name", "description"):
        table.add_column(name)
    for row in list_tasks():
        table.add_row(row["kind"], row["name"], row["description"])
    console.print(table)


def folder_contents_note(result) -> str:  # noqa: ANN001 - a RunResult
    """One line when the folder holds more than this run (other models or settings), else ""."""
    from widthdepth.analysis.traces import other_experiments
    from widthdepth.closing import scope_of

    return other_experiments(result.config.out, scope_of(result))


def interrupted(out: str) -> Interrupted:
    """The one line for a run stopped by Ctrl-C, counting what its store holds."""
    from widthdepth.store import Store

    try:
        store = Store.open(out, create=False)
        try:
            count = store.counts()["attempts"]
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - no store yet (stopped before the first attempt), or unreadable
        count = 0
    return Interrupted(f"interrupted: {count} attempts stored in {out}; rerun the same command to resume")


def main(argv: list[str] | None = None) -> int:
    try:
        # without standalone mode typer returns an exit code where a command raised typer.Exit, and
        # 130 where Ctrl-C reached it (a command that stores things turns Ctrl-C into `Interrupted`)
        code = app(args=argv, standalone_mode=False)
        if code == 130:
            errors.print("interrupted: stopped by Ctrl-C", markup=False)
        return code if isinstance(code, int) else 0
    except WidthdepthError as exc:
        prefix = "" if isinstance(exc, Interrupted) else "error: "
        errors.print(f"{prefix}{exc}", markup=False, highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:  # before typer took over (while importing)
        errors.print("interrupted: stopped by Ctrl-C", markup=False)
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except Exception as exc:  # usage errors (typer's click) carry their own message and exit code
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            return exc.exit_code
        if type(exc).__name__ == "Abort":
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
