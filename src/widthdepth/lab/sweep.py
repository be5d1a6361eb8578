"""Width and depth inside the model (issue 20): reasoners that differ in shape or depth, each trained on
the same data with the same recipe and evaluated on the same fresh problems, kept in a folder that a
rerun resumes (after kill -9 too: a model whose checkpoint was written is never trained again, and one
in training goes on from its last save, a minute old at most, to the same weights).

    sweep = plan_sweep("depth", "quick")
    rows = run_sweep(sweep, "runs/depth")          # one row per arm and seed

Experiments:
- `shape`: stacks of unique layers (no weight sharing) of about one parameter count, from a few wide
  layers to many thin ones — at the same number of steps, and at the same training FLOPs. MobileLLM's
  claim: deep and thin wins, on compositional chains (where layers compose) rather than on search.
- `depth`: unique stacks of depth 1, 2, 4, ... (narrow), and the looped model (one shared block
  iterated) at each depth, trained the same way; and one looped model trained as the shipped reasoner
  (a random depth per step, supervised at every iteration), read at each depth: each chain length's
  critical depth (the smallest depth from which every deeper one reaches `sweep_stats.THRESHOLD`), and whether the
  looped models reach it with a fraction of the parameters at the same FLOPs.
- `size`: the shipped recipe at several widths (the d = 128 model is the shipped checkpoint itself,
  its training FLOPs counted by replaying its batches); `widthdepth.size_sweep` then runs a study grid
  on each and compares them at matched inference and total FLOPs.

Models train and run on `device` (`cpu`, `cuda`); a folder resumes on any device.

The folder: `models/RECIPE-sSEED.safetensors` (RECIPE: a digest of the training settings; written whole,
then renamed) and `results.jsonl` (one line
per arm and seed, appended once it is evaluated: its parameters, training FLOPs and seconds, and per
evaluated task one character per problem, 1 right, 0 wrong, so intervals can resample seeds and
problems).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from widthdepth.errors import WidthdepthError
from widthdepth.lab.evaluate import subset_valid
from widthdepth.lab.model import LatentReasoner, ReasonerConfig
from widthdepth.lab.sampling import sample_grid
from widthdepth.lab.tokens import random_chain, random_subset
from widthdepth.lab.train import TrainConfig, load_checkpoint, recipe_flops, resolve_device, save_checkpoint, train

EXPERIMENTS = ("shape", "depth", "size")
SHIPPED = Path(__file__).resolve().parent / "checkpoints" / "reasoner.safetensors"
"""The shipped reasoner: the `size` experiment's model of its recipe and seed 0, not trained again."""
RESULTS = "results.jsonl"


@dataclass(frozen=True)
class Arm:
    """One model of an experiment: a name, and how it is built and trained."""

    name: str
    group: str
    """What the arm belongs to: "steps" or "flops" (shape), "stack", "loop" or "anyloop" (depth)."""
    train: TrainConfig
    depth: int = 0
    """Iterations at evaluation; 0: the training depth (a stack's layers)."""


@dataclass(frozen=True)
class Sweep:
    experiment: str
    preset: str
    arms: list[Arm]
    seeds: int
    chains: tuple[int, ...]
    """Chain lengths evaluated (greedy-free: one sampled trajectory, as the study reads a cell)."""
    searches: tuple[int, ...] = ()
    """Subset-sum sizes evaluated: coverage of `trajectories` trajectories."""
    trajectories: int = 8
    problems: int = 200
    eval_seed: int = 10_001
    """Evaluation problems: the same fresh problems for every arm and seed, none seen in training."""


def shape_for(layers: int, params: int, heads: int = 4) -> tuple[int, int]:
    """(d_model, ffn) of a stack of `layers` unique layers with about `params` parameters: d_model a multiple
    of `heads` with FFN 4x nearest the count, then the FFN widened or narrowed to meet it (each unit of FFN
    is 2 d_model + 1 parameters per layer)."""
    def count(d: int, ffn: int) -> int:
        with torch.device("meta"):  # shapes only: nothing allocated or initialised
            return LatentReasoner(ReasonerConfig(d_model=d, ffn=ffn, heads=heads, layers=layers)).n_params()

    low, high = 1, 512 // heads  # the count grows with d: bisect on d / heads, then take the nearer side
    while low < high:
        middle = (low + high) // 2
        low, high = (middle + 1, high) if count(middle * heads, 4 * middle * heads) < params else (low, middle)
    d = min({max(1, low - 1) * heads, low * heads}, key=lambda d: abs(count(d, 4 * d) - params))
    return d, max(1, 4 * d + round((params - count(d, 4 * d)) / (layers * (2 * d + 1))))


PRESETS: dict[str, dict[str, dict]] = {
    "shape": {"quick": {"params": 60_000, "layers": (2, 4, 8, 16), "steps": 600, "seeds": 2, "batch": 128},
              "full": {"params": 250_000, "layers": (2, 4, 8, 16, 32), "steps": 2000, "seeds": 3, "batch": 256},
              "gpu": {"params": 1_000_000, "layers": (2, 4, 8, 16, 32, 64), "steps": 2000, "seeds": 3, "batch": 512}},
    "depth": {"quick": {"depths": (1, 2, 4, 8), "d_model": 32, "steps": 1000, "seeds": 2, "batch": 128},
              "full": {"depths": (1, 2, 4, 8, 16, 32, 64), "d_model": 32, "steps": 2000, "seeds": 3, "batch": 256},
              "gpu": {"depths": (1, 2, 4, 8, 16, 32, 64, 128, 256), "d_model": 64, "steps": 1500, "seeds": 2,
                      "batch": 256}},
    "size": {"quick": {"d_models": (32, 64, 128), "steps": 2000, "seeds": 1, "batch": 256},
             "full": {"d_models": (64, 128, 256), "steps": 2000, "seeds": 1, "batch": 256},
             "gpu": {"d_models": (128, 256, 512, 1024), "steps": 2000, "seeds": 1, "batch": 256}},
}
"""quick: minutes on 2 cores; full: as long as it takes on the CPU (a rerun resumes); gpu: for a lent GPU
(`--device cuda`), sized by estimate — not yet run on one."""


def plan_sweep(experiment: str, preset: str) -> Sweep:
    if experiment not in EXPERIMENTS:
        raise WidthdepthError(f"--experiment {experiment!r}: unknown (valid: {', '.join(EXPERIMENTS)})")
    if preset not in PRESETS[experiment]:
        raise WidthdepthError(f"--preset {preset!r}: unknown for {experiment} "
                              f"(valid: {', '.join(PRESETS[experiment])})")
    p = PRESETS[experiment][preset]
    base = TrainConfig(steps=p["steps"], batch_size=p["batch"], max_chain_length=8, max_items=10)
    if experiment == "shape":
        arms = []
        for layers in p["layers"]:
            d, ffn = shape_for(layers, p["params"])
            arms.append(Arm(f"L{layers}-d{d}", "steps", replace(base, family="mix", layers=layers, d_model=d, ffn=ffn)))
        budget = _step_flops_estimate(arms[len(arms) // 2].train) * p["steps"]  # the middle shape's steps
        arms += [Arm(f"{a.name}-flops", "flops", replace(a.train, steps=max(1, round(budget / _step_flops_estimate(
            a.train))))) for a in arms[:len(p["layers"])]]  # as many steps as the middle shape's FLOPs buy
        return Sweep(experiment, preset, arms, p["seeds"], chains=(1, 2, 4, 6, 8), searches=(6, 8))
    if experiment == "size":  # the shipped recipe at each width (its d = 128 model is the shipped checkpoint)
        arms = [Arm(f"d{d}", "size", TrainConfig(steps=p["steps"], batch_size=p["batch"], d_model=d, ffn=4 * d))
                for d in p["d_models"]]
        return Sweep(experiment, preset, arms, p["seeds"], chains=(1, 2, 4, 6, 8), searches=(6, 8, 10))
    d = p["d_model"]
    chain = replace(base, family="chain", d_model=d, ffn=4 * d)
    anyloop = replace(chain, depth=0, max_iterations=max(p["depths"]))  # one model for every depth
    arms = [Arm(f"{kind}-{depth}", kind, replace(chain, layers=depth if kind == "stack" else 1, depth=depth))
            for depth in p["depths"] for kind in ("stack", "loop")]
    arms += [Arm(f"anyloop-{depth}", "anyloop", anyloop, depth) for depth in p["depths"]]
    return Sweep(experiment, preset, arms, p["seeds"], chains=(1, 2, 4, 6, 8))


def _step_flops_estimate(config: TrainConfig) -> int:
    """FLOPs of one step of `config` on a batch of the longest problems (a fixed figure for the budget)."""
    from widthdepth.lab.train import encode_batch, step_flops

    model = LatentReasoner(ReasonerConfig(config.d_model, config.ffn, config.heads, layers=config.layers))
    rng = random.Random(0)
    batch = encode_batch([random_chain(rng, config.max_chain_length), random_subset(rng, config.max_items)]
                         * (config.batch_size // 2))
    return step_flops(model, batch, config.depth or config.layers, True)


def run_sweep(sweep: Sweep, folder: str | Path, on_event: Callable[[str], None] | None = None,
              device: str = "cpu", threads: int | None = None, save_every: float = 60.0) -> list[dict]:
    """Train and evaluate every arm and seed not yet in `folder` on `device`; every row (old and new), in plan
    order. `threads`: torch threads for training (default the recipe's, 2; not part of a model's id).
    A model in training saves its whole state every `save_every` seconds: a rerun after a kill goes on from
    there, to the same model as an uninterrupted run."""
    device = resolve_device(device)
    folder = Path(folder)
    (folder / "models").mkdir(parents=True, exist_ok=True)
    evaluation = _digest({k: v for k, v in asdict(sweep).items() if k not in ("arms", "seeds")})
    done = {(r["arm"], r["seed"], r.get("recipe"), r.get("evaluation")): r for r in read_results(folder)}
    for arm in sweep.arms:
        recipe = checkpoint_name(arm.train)
        for seed in range(sweep.seeds):
            if (arm.name, seed, recipe, evaluation) in done:  # a row of another recipe or evaluation is not this
                continue
            path = folder / "models" / f"{recipe}-s{seed}.safetensors"
            if path.exists():
                model, metadata = load_checkpoint(path)
                summary = json.loads(metadata["summary"])
            elif _is_shipped(replace(arm.train, seed=seed)):
                if on_event:
                    on_event(f"counting the training FLOPs of the shipped reasoner ({arm.name})")
                model, metadata = load_checkpoint(SHIPPED)
                summary = {**json.loads(metadata["summary"]), "training_flops": recipe_flops(arm.train)}
                partial = path.with_suffix(".partial")
                save_checkpoint(model, partial, replace(arm.train, seed=seed), summary,
                                command=metadata.get("command", ""))
                os.replace(partial, path)
            else:
                if on_event:
                    on_event(f"training {arm.name} seed {seed}")
                config = replace(arm.train, seed=seed, **({"threads": threads} if threads else {}))
                resume = path.with_suffix(".resume")  # a killed run's training goes on from its last save
                model, summary = train(config, device=device, resume=resume, every=save_every)
                partial = path.with_suffix(".partial")
                save_checkpoint(model, partial, config, summary, command=f"widthdepth lab sweep {sweep.experiment}")
                os.replace(partial, path)  # whole or absent: a kill mid-write retrains, never reads half a model
                resume.unlink(missing_ok=True)
            model.to(device)
            if on_event:
                on_event(f"evaluating {arm.name} seed {seed}")
            row = {"experiment": sweep.experiment, "arm": arm.name, "group": arm.group, "seed": seed,
                   "recipe": recipe, "evaluation": evaluation,
                   "params": model.n_params(), "layers": arm.train.layers, "d_model": arm.train.d_model,
                   "depth": _depth(arm), "steps": summary["steps"], "device": device,
                   "trained_on": summary.get("device", "cpu"),
                   "training_flops": summary["training_flops"], "seconds": summary["seconds"],
                   **evaluate_arm(model, sweep, arm)}
            append_row(folder / RESULTS, row)
            done[(arm.name, seed, recipe, evaluation)] = row
    return [done[(a.name, s, checkpoint_name(a.train), evaluation)] for a in sweep.arms for s in range(sweep.seeds)]


def _is_shipped(config: TrainConfig) -> bool:
    """Was the shipped reasoner trained with exactly `config` (then training it again would only repeat it)?"""
    from dataclasses import fields

    from safetensors import safe_open

    if not SHIPPED.is_file():
        return False
    with safe_open(str(SHIPPED), framework="pt") as handle:
        recorded = json.loads((handle.metadata() or {}).get("train_config", "{}"))
    known = {f.name for f in fields(TrainConfig)}
    return bool(recorded) and set(recorded) <= known and TrainConfig(**recorded) == config


def checkpoint_name(config: TrainConfig) -> str:
    """A digest of everything a model's training depends on but its seed: arms trained alike share their
    models, and a preset that changes cannot read a model trained to another recipe."""
    return _digest({k: v for k, v in asdict(config).items() if k not in ("seed", "threads")})


def _digest(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def evaluate_arm(model: LatentReasoner, sweep: Sweep, arm: Arm) -> dict[str, dict[str, str]]:
    """Per task, a character per evaluation problem: 1 where the model is right (chains: one trajectory at
    the arm's depth; search: any of `trajectories` valid)."""
    depth = _depth(arm)
    hits: dict[str, dict[str, str]] = {"chain": {}, "search": {}}
    for length in sweep.chains:
        rng = random.Random(sweep.eval_seed * 1000 + length)
        problems = [random_chain(rng, length) for _ in range(sweep.problems)]
        grid = sample_grid(model, problems, 1, depth, [[sweep.eval_seed + i] for i in range(sweep.problems)])
        hits["chain"][str(length)] = "".join("1" if g[0][-1].answer == str(p.values[-1]) else "0"
                                             for g, p in zip(grid, problems))
    for items in sweep.searches:
        rng = random.Random(sweep.eval_seed * 1000 + 100 + items)
        problems = [random_subset(rng, items) for _ in range(sweep.problems)]
        k = sweep.trajectories
        grid = sample_grid(model, problems, k, depth, [[sweep.eval_seed + i * k + w for w in range(k)]
                                                       for i in range(sweep.problems)])
        hits["search"][str(items)] = "".join("1" if any(subset_valid(p, g[w][-1].answer) for w in range(k)) else "0"
                                             for g, p in zip(grid, problems))
    return hits


def _depth(arm: Arm) -> int:
    """The iterations an arm is evaluated at."""
    return arm.depth or arm.train.depth or (arm.train.layers if arm.train.layers > 1 else arm.train.max_iterations)


def read_results(folder: str | Path) -> list[dict]:
    """The evaluated rows of a sweep folder (a line cut short by a kill is left out: it is evaluated again)."""
    path = Path(folder) / RESULTS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def append_row(path: Path, row: dict) -> None:
    """One results line, synced (after a line a kill cut short, on a line of its own)."""
    cut = False
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(("\n" if cut else "") + json.dumps(row, sort_keys=True) + "\n")  # after a line a kill cut short
        f.flush()
        os.fsync(f.fileno())


__all__ = ["Arm", "EXPERIMENTS", "PRESETS", "Sweep", "append_row", "plan_sweep", "read_results", "run_sweep",
           "shape_for"]
