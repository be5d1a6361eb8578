"""Training the latent-thought model with the dual-rate scheme: for each batch of rules, fast inner steps
infer each problem's z from its examples (the model's own inference, with its learned step size), and one
slow outer step (AdamW) updates the decoder so that the inferred z's explain the examples and the query —
back-propagated through the inner steps, so the decoder learns a landscape that a few steps descend.

    model, summary = train_thought(ThoughtTrainConfig(steps=3000))
    save_checkpoint(model, "thought.safetensors", config, summary)

Each batch draws a number of examples k, then per problem a rule of 1..max_length operations
(`tasks.rule.draw_rule`, as `rule:` problems are drawn) and a number of inner steps S in 1..max_steps; the
loss averages the cross-entropy of every example and the query after each of the S steps (supervision at
every depth, so any depth up to max_steps reads out an answer). Deterministic for a seed and thread count.
Training FLOPs are torch's own count (`FlopCounterMode`) of the first step of each batch shape: a step's
products depend on its shape (k, S) only, never on the data.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from widthdepth.errors import WidthdepthError
from widthdepth.lab.meta_train import load_model, meta_train
from widthdepth.lab.thought import LatentThought, ThoughtConfig
from widthdepth.tasks.rule import apply_rule, draw_rule


@dataclass(frozen=True)
class ThoughtTrainConfig:
    steps: int = 3000
    """Outer (decoder) steps."""
    batch_size: int = 256
    learning_rate: float = 1e-3
    """The slow rate (AdamW, one-cycle schedule); the fast rate is the model's learned step size."""
    max_length: int = 4
    """Rules of 1..max_length operations."""
    min_shots: int = 1
    max_shots: int = 4
    max_steps: int = 8
    """Inner inference steps per batch: uniform in 1..max_steps."""
    modulus: int = 10
    ops: tuple[str, ...] = ("add", "mul")
    latent: int = 16
    hidden: int = 128
    blocks: int = 2
    seed: int = 0
    threads: int = 2
    """torch threads; results are deterministic for a given seed, step count and thread count."""
    @property
    def model(self) -> ThoughtConfig:
        return ThoughtConfig(self.modulus, self.latent, self.hidden, self.blocks)

    def __post_init__(self) -> None:
        if not 1 <= self.min_shots <= self.max_shots < self.modulus:
            raise WidthdepthError(f"shots {self.min_shots}..{self.max_shots}: give 1 <= min <= max < modulus "
                                  f"({self.modulus}), as each example needs its own input")


def random_rules(rng: random.Random, config: ThoughtTrainConfig) -> tuple[torch.Tensor, torch.Tensor, int]:
    """inputs (batch, k + 1): examples then query; targets (batch, k + 1): their outputs; k."""
    k = rng.randint(config.min_shots, config.max_shots)
    inputs, targets = [], []
    for _ in range(config.batch_size):
        steps, examples, query = draw_rule(rng, rng.randint(1, config.max_length), k, config.modulus, config.ops)
        inputs.append([x for x, _ in examples] + [query])
        targets.append([y for _, y in examples] + [apply_rule(steps, query, config.modulus)])
    return torch.tensor(inputs), torch.tensor(targets), k


def step_loss(model: LatentThought, inputs: torch.Tensor, targets: torch.Tensor, k: int, depth: int) -> torch.Tensor:
    z = torch.randn(inputs.shape[0], model.config.latent)
    logits = model.infer(z, inputs, targets[:, :k], depth, train=True)
    return sum(F.cross_entropy(step.transpose(1, 2), targets) for step in logits) / depth  # type: ignore[return-value]


def train_thought(config: ThoughtTrainConfig, on_step: Callable[[int, dict[str, float]], None] | None = None
                  ) -> tuple[LatentThought, dict]:
    def batch(model: LatentThought, rng: random.Random):  # noqa: ANN202
        inputs, targets, k = random_rules(rng, config)
        depth = rng.randint(1, config.max_steps)
        return (k, depth), lambda: step_loss(model, inputs, targets, k, depth)

    return meta_train(lambda: LatentThought(config.model), config.steps, config.learning_rate, config.seed,
                      config.threads, batch, on_step)


def load_thought(path: str | Path) -> tuple[LatentThought, dict[str, str]]:
    return load_model(path, lambda c: LatentThought(ThoughtConfig(**c)), "widthdepth lab train-thought",
                      "thought-model")
