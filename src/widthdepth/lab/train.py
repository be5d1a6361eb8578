"""Training the latent reasoner on the CPU: random problems, random iteration counts, supervision at
every iteration (and, for chains, at every position).

    widthdepth lab train --family mix --steps 2000 --seed 0 --out reasoner.safetensors

Deterministic given the seed, the step count and the thread count (fixed at 2 by default, whatever
the machine has). The checkpoint is safetensors with the model config, training config and
final metrics in its metadata.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from widthdepth.errors import WidthdepthError
from widthdepth.lab.model import Batch, LatentReasoner, ReasonerConfig
from widthdepth.lab.tokens import PAD, Encoded, random_chain, random_subset

FAMILIES = ("chain", "search", "mix")


@dataclass(frozen=True)
class TrainConfig:
    family: str = "mix"
    """chain, search, or mix (half of each batch each)."""
    steps: int = 2000
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 0
    max_chain_length: int = 8
    """Chains of 1..max_chain_length steps, modulo 10, add and multiply."""
    min_items: int = 4
    max_items: int = 12
    """Subset-sum problems with min_items..max_items items."""
    max_iterations: int = 10
    """Each batch runs 1..max_iterations iterations (uniform), supervised at every one."""
    d_model: int = 128
    ffn: int = 512
    heads: int = 4
    layers: int = 1
    """Unique blocks (`ReasonerConfig.layers`); n > 1: a stack, trained at depth n."""
    depth: int = 0
    """0: each step runs 1..max_iterations iterations, supervised at every one (the shared block's recipe);
    n: exactly n iterations, supervised at the last only (a stack's recipe, and a looped model's at depth n)."""
    threads: int = 2
    """torch threads; results are deterministic for a given seed, step count and thread count."""


def encode_batch(problems: list[Encoded]) -> Batch:
    """The problems as tensors on the CPU (`Batch.to` moves them where the model is)."""
    size, cpu = max(len(p.tokens) for p in problems), torch.device("cpu")
    tokens = torch.full((len(problems), size), PAD, dtype=torch.long, device=cpu)
    values = torch.full((len(problems), size), -1, dtype=torch.long, device=cpu)
    for row, p in enumerate(problems):
        tokens[row, :len(p.tokens)] = torch.tensor(p.tokens, device=cpu)
        if p.values:
            offset = 0 if p.family == "chain" else 1  # search bits belong to the item positions
            values[row, offset:offset + len(p.values)] = torch.tensor(p.values, device=cpu)
    family = torch.tensor([0 if p.family == "chain" else 1 for p in problems], device=cpu)
    modulus = torch.tensor([p.modulus for p in problems], device=cpu)
    return Batch(tokens, family, values, modulus)


def random_batch(rng: random.Random, config: TrainConfig) -> Batch:
    problems = []
    for i in range(config.batch_size):
        chain = config.family == "chain" or (config.family == "mix" and i % 2 == 0)
        if chain:
            problems.append(random_chain(rng, rng.randint(1, config.max_chain_length)))
        else:
            problems.append(random_subset(rng, rng.randint(config.min_items, config.max_items)))
    return encode_batch(problems)


def masked_value_logits(logits: torch.Tensor, modulus: torch.Tensor) -> torch.Tensor:
    """Only classes below each row's modulus can be answered."""
    allowed = torch.arange(logits.shape[-1], device=logits.device)[None, :] < modulus[:, None].clamp(min=1)
    return logits.masked_fill(~allowed[:, None, :], float("-inf"))


def readout_correct(batch: Batch, value_logits: torch.Tensor, include_logits: torch.Tensor) -> torch.Tensor:
    """Is the greedy readout right? chain: the final value; search: the chosen items hit the target."""
    lengths = (batch.tokens != PAD).sum(1)
    last = lengths - 1
    rows = torch.arange(len(lengths), device=lengths.device)
    chain_ok = value_logits[rows, last].argmax(-1) == batch.values[rows, last]
    from widthdepth.lab.tokens import ITEM_BASE, TARGET_BASE

    items = (batch.tokens - ITEM_BASE).clamp(min=0) * (batch.tokens >= ITEM_BASE)
    chosen = (include_logits > 0) & (batch.tokens >= ITEM_BASE)
    target = batch.tokens[:, 0] - TARGET_BASE
    search_ok = ((items * chosen).sum(1) == target) & chosen.any(1)
    return torch.where(batch.family == 0, chain_ok, search_ok)


def loss_and_metrics(model: LatentReasoner, batch: Batch, iterations: int,
                     last_only: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    readouts = model(batch.tokens, batch.family, iterations)
    chain_rows, search_rows = batch.family == 0, batch.family == 1
    total = torch.zeros((), device=batch.tokens.device)
    supervised = readouts[-1:] if last_only else readouts
    for readout in supervised:
        logits = masked_value_logits(readout.value_logits, batch.modulus)
        if chain_rows.any():
            targets = batch.values[chain_rows]
            total = total + F.cross_entropy(logits[chain_rows].reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                            ignore_index=-1)
        if search_rows.any():
            bits = batch.values[search_rows]
            known = bits >= 0
            total = total + F.binary_cross_entropy_with_logits(readout.include_logits[search_rows][known],
                                                               bits[known].float())
        correct = readout_correct(batch, logits.detach(), readout.include_logits.detach()).float()
        total = total + 0.2 * F.binary_cross_entropy_with_logits(readout.score_logits, correct)
    last = readouts[-1]
    correct = readout_correct(batch, masked_value_logits(last.value_logits, batch.modulus), last.include_logits)
    metrics = {"loss": float(total.detach()) / len(supervised)}
    for name, rows in (("chain", chain_rows), ("search", search_rows)):
        if rows.any():
            metrics[f"{name}_acc"] = float(correct[rows].float().mean())
    return total / len(supervised), metrics


def training_depth(config: TrainConfig) -> int:
    """The fixed depth of each step (0: drawn per step); a stack's is its number of layers."""
    depth = config.depth or (config.layers if config.layers > 1 else 0)
    if config.layers > 1 and depth != config.layers:
        raise WidthdepthError(f"depth={config.depth}: a stack of {config.layers} unique layers trains at depth "
                              f"{config.layers}; drop depth or set it to {config.layers}")
    return depth


def step_flops(model: LatentReasoner, batch: Batch, iterations: int, last_only: bool) -> int:
    """Exact FLOPs of one training step on `batch` (padded rows computed in full), as torch counts them:
    the forward pass, and the backward pass's two products per forward product (the input's gradient and
    the weight's) but one where the input needs none (the noise basis on drawn noise, the first iteration's
    state projection on zeros), and none for readouts outside the loss."""
    c, s = model.config, batch.tokens.shape[1]
    forward = model.encoding_flops(s) + iterations * model.iteration_flops(s)
    noise, first_state = 2 * s * c.noise_rank * c.d_model, 2 * s * c.d_model * c.d_model
    readout = 2 * s * c.d_model * (c.classes + 1) + 2 * c.d_model
    unused = (iterations - 1) * readout if last_only else 0
    backward = 2 * (forward - unused) - iterations * noise - first_state
    return len(batch.tokens) * (forward + backward)


def recipe_flops(config: TrainConfig) -> int:
    """The training FLOPs `train(config)` counts, without training: the same batches and depths drawn from
    the same seed (for a checkpoint whose summary predates the count)."""
    with torch.device("meta"):  # the counts read shapes only
        model = LatentReasoner(ReasonerConfig(config.d_model, config.ffn, config.heads, layers=config.layers))
    depth, rng, flops = training_depth(config), random.Random(config.seed), 0
    for _ in range(config.steps):
        batch = random_batch(rng, config)
        flops += step_flops(model, batch, depth or rng.randint(1, config.max_iterations), bool(depth))
    return flops


def resolve_device(name: str, option: str = "--device ") -> str:
    """`auto` (CUDA when torch sees a GPU, else the CPU), `cpu`, `cuda` or `cuda:N`, checked here; `option`
    names where the value came from in an error (`--device `, `--model builtin:reasoner,device=`)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name != "cpu" and not (name == "cuda" or name.startswith("cuda:") and name[5:].isdigit()):
        raise WidthdepthError(f"{option}{name!r}: unknown (valid: auto, cpu, cuda, cuda:N)")
    if name != "cpu" and not torch.cuda.is_available():
        raise WidthdepthError(f"{option}{name}: torch sees no CUDA device here (torch {torch.__version__}); "
                              "use cpu, or auto to take a GPU only where there is one")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        raise WidthdepthError(f"{option}{name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return name


def train(config: TrainConfig, on_step: Callable[[int, dict[str, float]], None] | None = None,
          device: str = "cpu", resume: str | Path | None = None, every: float = 60.0) -> tuple[LatentReasoner, dict]:
    """Train on `device` (initial weights drawn on the CPU, so the same on any device); the model is returned
    there. On CUDA the float order differs from the CPU's: the same seed gives close, not equal, weights.
    `resume`: a file where the whole training state (weights, optimiser, schedule, random states) is saved every
    `every` seconds and at a kill's last completed save training continues from, to the very same weights."""
    if config.family not in FAMILIES:
        raise WidthdepthError(f"--family {config.family!r}: unknown (valid: {', '.join(FAMILIES)})")
    from widthdepth.lab.memory import keep_freed_memory

    keep_freed_memory()
    torch.manual_seed(config.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)  # fixed, so the float order (and the checkpoint) is reproducible
    try:
        depth = training_depth(config)
        model = LatentReasoner(ReasonerConfig(config.d_model, config.ffn, config.heads, layers=config.layers))
        model.to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.learning_rate,
                                                       total_steps=config.steps, pct_start=0.05)
        rng = random.Random(config.seed)
        state = TrainingState(model, optimizer, schedule, rng, device)
        done, flops, seconds = state.load(resume, config) if resume else (0, 0, 0.0)
        start = saved = time.perf_counter()
        metrics: dict[str, float] = {}
        for step in range(done + 1, config.steps + 1):
            batch = random_batch(rng, config).to(device)
            iterations = depth or rng.randint(1, config.max_iterations)
            loss, metrics = loss_and_metrics(model, batch, iterations, last_only=bool(depth))
            flops += step_flops(model, batch, iterations, bool(depth))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            if on_step:
                on_step(step, metrics)
            if resume and step < config.steps and time.perf_counter() - saved >= every:
                state.save(resume, config, step, flops, seconds + time.perf_counter() - start)
                saved = time.perf_counter()
        summary = {"steps": config.steps, "seconds": round(seconds + time.perf_counter() - start, 1),
                   "final": metrics, "training_flops": flops, "device": str(device)}
    finally:
        torch.set_num_threads(threads)
    return model, summary


@dataclass
class TrainingState:
    """Everything a training run's next step depends on, saved whole (written, then renamed) and loaded back."""

    model: LatentReasoner
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    rng: random.Random
    device: str

    def save(self, path: str | Path, config: TrainConfig, step: int, flops: int, seconds: float) -> None:
        path = Path(path)
        cuda = torch.cuda.get_rng_state(torch.device(self.device)) if str(self.device).startswith("cuda") else None
        state = {"config": json.dumps(asdict(config), sort_keys=True), "step": step, "flops": flops,
                 "seconds": seconds, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "schedule": self.schedule.state_dict(), "rng": self.rng.getstate(),
                 "torch_rng": torch.get_rng_state(), "cuda_rng": cuda}
        unfinished = path.with_name(path.name + ".tmp")
        torch.save(state, unfinished)
        unfinished.replace(path)  # whole or absent

    def load(self, path: str | Path, config: TrainConfig) -> tuple[int, int, float]:
        """(steps done, FLOPs so far, seconds so far): where a saved run of this very recipe stopped, else
        (0, 0, 0.0), a fresh start."""
        path = Path(path)
        if not path.is_file():
            return 0, 0, 0.0
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 — a file cut short or of another torch: start again
            return 0, 0, 0.0
        if state.get("config") != json.dumps(asdict(config), sort_keys=True):
            return 0, 0, 0.0
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and str(self.device).startswith("cuda"):
            torch.cuda.set_rng_state(state["cuda_rng"], torch.device(self.device))
        return state["step"], state["flops"], state["seconds"]


def save_checkpoint(model: torch.nn.Module, path: str | Path, train_config: object | None, summary: dict,
                    command: str = "") -> Path:
    """Any lab model with a `config.to_dict()`, its training recipe (a dataclass) and summary as metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"model_config": json.dumps(model.config.to_dict()),
                "train_config": json.dumps(asdict(train_config) if train_config else {}),
                "summary": json.dumps(summary), "command": command}
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)
    return path


def load_checkpoint(path: str | Path) -> tuple[LatentReasoner, dict[str, str]]:
    from widthdepth.lab.meta_train import load_model

    return load_model(path, lambda settings: LatentReasoner(ReasonerConfig(**settings)), "widthdepth lab train",
                      "reasoner")
