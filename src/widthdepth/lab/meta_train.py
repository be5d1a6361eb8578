"""The training loop of the lab's test-time-optimisation models (the latent-thought model, the fast-weight
memory): dual-rate — fast inner steps (inference steps on z, consolidation passes on fast weights) run
inside each batch's loss and are back-propagated through, and one slow AdamW step (one-cycle schedule)
updates the slow weights, so that a few fast steps do what they are for.

    model, summary = meta_train(lambda: LatentThought(config), steps=3000, learning_rate=1e-3, seed=0,
                                threads=2, batch=lambda model, rng: ((k, depth), lambda: loss(model, ...)))

Deterministic for a seed and thread count. Training FLOPs are torch's own count (`FlopCounterMode`) of the
first batch of each shape: a step's products depend on its shape only, never on the data.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Hashable
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

import torch

from widthdepth.errors import WidthdepthError

Model = TypeVar("Model", bound=torch.nn.Module)
Batch = Callable[[Any, random.Random], tuple[Hashable, Callable[[], torch.Tensor]]]
"""Draws a batch for the model: its shape (the FLOPs' key) and the function computing its loss (random
draws inside use torch's generator, seeded once)."""


def meta_train(make_model: Callable[[], Model], steps: int, learning_rate: float, seed: int, threads: int,
               batch: Batch, on_step: Callable[[int, dict[str, float]], None] | None = None) -> tuple[Model, dict]:
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(seed)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # fixed, so the float order (and the checkpoint) is reproducible
    try:
        model = make_model()
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
        schedule = (torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=learning_rate, total_steps=steps,
                                                        pct_start=max(0.05, 2 / steps))
                    if steps >= 3 else None)  # a warm-up of at least one step; too few steps: a constant rate
        rng, shape_flops, flops = random.Random(seed), {}, 0
        start, metrics = time.perf_counter(), {}
        for step in range(1, steps + 1):
            shape, loss_of = batch(model, rng)
            counter = FlopCounterMode(display=False) if shape not in shape_flops else None
            with counter or nullcontext():
                loss = loss_of()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            if counter is not None:
                shape_flops[shape] = counter.get_total_flops()
            flops += shape_flops[shape]
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if schedule is not None:
                schedule.step()
            metrics = {"loss": round(loss.item(), 4), "step size": round(model.log_step.exp().item(), 4)}
            if on_step:
                on_step(step, metrics)
        summary = {"steps": steps, "seconds": round(time.perf_counter() - start, 1), "final": metrics,
                   "training_flops": flops}
    finally:
        torch.set_num_threads(previous)
    return model.eval(), summary


def load_model(path: str | Path, make: Callable[[dict[str, Any]], Model], command: str,
               name: str) -> tuple[Model, dict[str, str]]:
    """A lab checkpoint written by `train.save_checkpoint`: `make` builds the model from its recorded config;
    `command` is how to make one and `name` what it is (both said when the file is missing or another's)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WidthdepthError(f"no {name} checkpoint at {path}: train one with `{command} --out {path}`")
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    settings = json.loads(metadata.get("model_config", "{}"))
    try:
        model = make(settings)
        model.load_state_dict(load_file(str(path)))
    except (TypeError, RuntimeError) as error:
        raise WidthdepthError(f"{path}: not a {name} checkpoint (not a checkpoint that `{command}` makes: its model "
                              f"settings are {', '.join(sorted(settings)) or 'none'}); give the model it was made "
                              "for") from error
    return model.eval(), metadata
