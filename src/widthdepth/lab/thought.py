"""The latent-thought model (issue 21; after Kong et al. 2025): a decoder reads a latent vector z and an
input, and at test time z is *inferred* — gradient steps on the examples' likelihood, from independent
random starts. Sequential optimisation steps are depth; restarts are width; and the examples'
likelihood is a verifier that needs no gold answer.

    model = LatentThought(ThoughtConfig())
    grid = sample_grid(model, [structure, ...], chains=8, rounds=16, seeds=[[...8 seeds...], ...])
    grid[p][w][d - 1].answer            # restart w's answer after d inference steps

The decoder: h = gelu(W_z z + E[x]) (the input's row of a table, so z's projection is computed once per
restart, not per example), then `blocks` residual layers h + gelu(W h), then logits over 0..m-1.
An inference step: the energy E(z) = sum of the examples' cross-entropies + |z|^2 / 2 (a standard
normal prior), z <- z - step * dE/dz, with the step size learned in training. The answer after step d
is the decoder's most likely output for the query at z_d; its score is the examples' likelihood at z_d,
per example (geometric mean): 1 when the restart reproduces every example with certainty.

FLOPs are counted exactly (matrix products, as torch's counter counts them): step d is the backward pass
to z at z_(d-1) and the forward pass (examples and query together) at z_d; step 1 also the forward at z_0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from widthdepth.errors import WidthdepthError
from widthdepth.lab.sampling import LatentAnswer


@dataclass(frozen=True)
class ThoughtConfig:
    modulus: int = 10
    """Inputs and outputs are 0..modulus-1 (the `rule` problems it answers have m = modulus)."""
    latent: int = 16
    """Size of z."""
    hidden: int = 128
    blocks: int = 2
    """Residual hidden layers after the first."""

    def to_dict(self) -> dict:
        return asdict(self)


class LatentThought(nn.Module):
    def __init__(self, config: ThoughtConfig) -> None:
        super().__init__()
        self.config = config
        self.latent_in = nn.Linear(config.latent, config.hidden)
        self.input_in = nn.Embedding(config.modulus, config.hidden)
        self.blocks = nn.ModuleList(nn.Linear(config.hidden, config.hidden) for _ in range(config.blocks))
        self.out = nn.Linear(config.hidden, config.modulus)
        self.log_step = nn.Parameter(torch.tensor(0.0))
        """log of the inference step size (learned: the fast rate of the dual-rate scheme)."""

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def decode(self, z: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (rows, n, modulus) of each input (rows, n) under each row's latent z (rows, latent)."""
        h = F.gelu(self.latent_in(z)[:, None, :] + self.input_in(inputs))
        for block in self.blocks:
            h = h + F.gelu(block(h))
        return self.out(h)

    def energy(self, z: torch.Tensor, logits: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
        """Per row: the examples' cross-entropy (logits of the first k inputs) plus the prior's |z|^2 / 2."""
        k = outputs.shape[1]
        fit = F.cross_entropy(logits[:, :k].transpose(1, 2), outputs, reduction="none").sum(1)
        return fit + 0.5 * (z * z).sum(1)

    def infer(self, z: torch.Tensor, inputs: torch.Tensor, outputs: torch.Tensor, steps: int,
              train: bool = False) -> list[torch.Tensor]:
        """Logits at z_1..z_steps (each (rows, k + 1, modulus)); `inputs` holds the k examples' inputs and
        then the query, `outputs` the examples' outputs. `train`: keep the graph through the steps (the
        decoder learns from the inferred z's)."""
        out = []
        with torch.enable_grad():
            z = z.detach().requires_grad_(True).clone()  # drawn, not learned; a non-leaf, as torch's FLOP
            # counter needs to follow a gradient taken with respect to it
            logits = self.decode(z, inputs)
            for _ in range(steps):
                grad, = torch.autograd.grad(self.energy(z, logits, outputs).sum(), z, create_graph=train)
                z = z - self.log_step.exp() * grad
                z = z if train else z.detach().requires_grad_(True).clone()
                logits = self.decode(z, inputs)
                out.append(logits if train else logits.detach())
        return out

    def step_flops(self, k: int) -> int:
        """One inference step of one restart with k examples: the backward pass to z and a forward pass."""
        c = self.config
        rows = k + 1
        per_row = c.blocks * 2 * c.hidden * c.hidden + 2 * c.hidden * c.modulus
        return 2 * (2 * c.latent * c.hidden + rows * per_row)  # the backward's products mirror the forward's

    def first_flops(self, k: int) -> int:
        """The forward pass at the starting z (step 1 pays it too)."""
        c = self.config
        return 2 * c.latent * c.hidden + (k + 1) * (c.blocks * 2 * c.hidden * c.hidden + 2 * c.hidden * c.modulus)


def problem_tensors(structures: list[dict], modulus: int) -> tuple[torch.Tensor, torch.Tensor]:
    """inputs (problems, k + 1): the examples' inputs then the query; outputs (problems, k)."""
    for s in structures:
        if s.get("family") != "rule":
            raise WidthdepthError(f"builtin:thought answers rule problems (few-shot rules), not {s.get('family')}")
        if s["size"] != modulus:
            raise WidthdepthError(f"builtin:thought was trained on rules modulo {modulus}; this problem is modulo "
                                  f"{s['size']} (use rule:m={modulus})")
    inputs = torch.tensor([[x for x, _ in s["examples"]] + [s["query"]] for s in structures])
    outputs = torch.tensor([[y for _, y in s["examples"]] for s in structures])
    return inputs, outputs


def check_structure(structure: dict, config: ThoughtConfig, trained: dict | None = None) -> None:
    """Raise a WidthdepthError unless the model can answer this problem (`trained`: its recipe, whose
    operations the problem's must be among)."""
    problem_tensors([structure], config.modulus)
    unseen = sorted(set(structure.get("ops", ())) - set((trained or {}).get("ops") or structure.get("ops", ())))
    if unseen:
        raise WidthdepthError(f"builtin:thought was trained on rules of {'+'.join(trained['ops'])}; this problem "
                              f"uses {'+'.join(unseen)} (use rule:ops={'+'.join(trained['ops'])})")


def starting_points(seeds: list[int], latent: int) -> torch.Tensor:
    """z_0 of each restart: standard normal from its own seed (drawn on the CPU: the same on any device)."""
    generator = torch.Generator()
    return torch.stack([torch.randn(latent, generator=generator.manual_seed(seed)) for seed in seeds])


@torch.no_grad()
def sample_grid(model: LatentThought, structures: list[dict], chains: int, rounds: int,
                seeds: list[list[int]]) -> list[list[list[LatentAnswer]]]:
    """Each problem's `chains` restarts, each `rounds` inference steps long; problems with the same number of
    examples share a batch. A restart's answers depend only on its seed (not on the batch, not on rounds; its
    scores up to float rounding: products over a different batch may round differently)."""
    grid: list[list[list[LatentAnswer]]] = [[[] for _ in range(chains)] for _ in structures]
    groups: dict[int, list[int]] = {}
    for i, s in enumerate(structures):
        groups.setdefault(len(s["examples"]), []).append(i)
    device = model.out.weight.device
    for k, indices in groups.items():
        inputs, outputs = problem_tensors([structures[i] for i in indices], model.config.modulus)
        inputs, outputs = (t.repeat_interleave(chains, 0).to(device) for t in (inputs, outputs))
        z = starting_points([int(seeds[i][w]) for i in indices for w in range(chains)], model.config.latent)
        for t, logits in enumerate(model.infer(z.to(device), inputs, outputs, rounds)):
            flops = model.step_flops(k) + (model.first_flops(k) if t == 0 else 0)
            for row, (answer, logp, score) in enumerate(_read(logits, outputs)):
                p, w = divmod(row, chains)
                grid[indices[p]][w].append(LatentAnswer(str(answer), score, flops, t + 1, logp))
    return grid


def _read(logits: torch.Tensor, outputs: torch.Tensor) -> list[tuple[int, float, float]]:
    """Per row: the query's most likely output, its log-probability, and the examples' per-example
    likelihood (the gold-free score)."""
    k = outputs.shape[1]
    query = torch.log_softmax(logits[:, k].float(), -1)
    answer = query.argmax(-1)
    fit = -F.cross_entropy(logits[:, :k].float().transpose(1, 2), outputs, reduction="none").mean(1)
    return list(zip(answer.tolist(), query.gather(1, answer[:, None])[:, 0].tolist(), fit.exp().tolist()))
