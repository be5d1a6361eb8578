"""Training the fast-weight memory's slow weights (entity embeddings, readout, the pass's step size) with the
dual-rate loop (`lab.meta_train`): each batch is a set of contexts — `recall` chains of min_facts..max_facts
links — consolidated by P passes (P uniform in 1..max_passes, each rehearsing a random share of the facts),
back-propagated through; the loss is the recall of every fact after every pass. Only 1-hop recall is
trained: multi-hop questions test whether what was consolidated composes.

    model, summary = train_memory(MemoryTrainConfig())
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from widthdepth.errors import WidthdepthError
from widthdepth.lab.consolidation import FastWeightMemory, MemoryConfig
from widthdepth.lab.meta_train import load_model, meta_train
from widthdepth.tasks.recall import ENTITIES, draw_links


@dataclass(frozen=True)
class MemoryTrainConfig:
    steps: int = 3000
    batch_size: int = 64
    learning_rate: float = 3e-3
    min_facts: int = 8
    max_facts: int = 48
    max_passes: int = 8
    dim: int = 16
    keep: float = 0.5
    seed: int = 0
    threads: int = 2
    """torch threads; results are deterministic for a given seed, step count and thread count."""

    @property
    def model(self) -> MemoryConfig:
        return MemoryConfig(self.dim, self.keep)

    def __post_init__(self) -> None:
        if not 1 <= self.min_facts <= self.max_facts < ENTITIES:
            raise WidthdepthError(f"facts {self.min_facts}..{self.max_facts}: give 1 <= min <= max < {ENTITIES}")


def random_contexts(rng: random.Random, config: MemoryTrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """sources, targets (batch, facts): one chain's links per row, all rows the same length."""
    facts = rng.randint(config.min_facts, config.max_facts)
    links = [draw_links(rng, facts)[1] for _ in range(config.batch_size)]
    return torch.tensor([[a for a, _ in row] for row in links]), torch.tensor([[b for _, b in row] for row in links])


def recall_loss(model: FastWeightMemory, sources: torch.Tensor, targets: torch.Tensor, passes: int) -> torch.Tensor:
    rehearse = (torch.rand(passes, *sources.shape) < model.config.keep).float()
    steps = model.consolidate(sources, targets, rehearse, passes, train=True)
    return sum(F.cross_entropy(logits.transpose(1, 2), targets) for _, logits in steps) / passes  # type: ignore[return-value]


def train_memory(config: MemoryTrainConfig, on_step: Callable[[int, dict[str, float]], None] | None = None
                 ) -> tuple[FastWeightMemory, dict]:
    def batch(model: FastWeightMemory, rng: random.Random):  # noqa: ANN202
        sources, targets = random_contexts(rng, config)
        passes = rng.randint(1, config.max_passes)
        return (sources.shape[1], passes), lambda: recall_loss(model, sources, targets, passes)

    return meta_train(lambda: FastWeightMemory(config.model), config.steps, config.learning_rate, config.seed,
                      config.threads, batch, on_step)


def load_memory(path: str | Path) -> tuple[FastWeightMemory, dict[str, str]]:
    return load_model(path, lambda c: FastWeightMemory(MemoryConfig(**c)), "widthdepth lab train-memory",
                      "memory")
