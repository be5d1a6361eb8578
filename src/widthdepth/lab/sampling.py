"""Sampling W trajectories x D iterations of the latent reasoner for a batch of problems, in one pass.

Row (problem p, trajectory w) draws all its randomness — latent noise and the sampled readout, in
iteration order — from its own generator seeded by ``seeds[p][w]``, over its own (unpadded) length,
so a trajectory's answers do not depend on which other problems or trajectories share the batch,
nor on D (the first d iterations of a longer run are the same).

    grid = sample_grid(model, [encode_structure(s) for s in structures], chains=16, rounds=8, seeds=seeds)
    grid[p][w][d - 1].answer
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from widthdepth.lab.model import LatentReasoner
from widthdepth.lab.tokens import Encoded
from widthdepth.lab.train import encode_batch, masked_value_logits


@dataclass(frozen=True)
class LatentAnswer:
    answer: str
    """Canonical: chain, the final value; search, the chosen item values sorted and comma-joined."""
    text: str
    score: float
    """Verifier head: estimated probability that the trajectory's readout is right."""
    flops: int
    """This iteration and its readout, for this problem's length."""


def _answer(problem: Encoded, logits_row: torch.Tensor, include_row: torch.Tensor, uniforms: torch.Tensor) -> str:
    if problem.family == "chain":
        last = len(problem.tokens) - 1
        probs = torch.softmax(masked_value_logits(logits_row[None], torch.tensor([problem.modulus]))[0, last], -1)
        index = int(torch.searchsorted(torch.cumsum(probs, 0), uniforms[0] * probs.sum()).clamp(max=probs.numel() - 1))
        return str(index)
    probs = torch.sigmoid(include_row[1:len(problem.tokens)])
    chosen = sorted(v for v, p, u in zip(problem.items, probs.tolist(), uniforms[1:len(problem.tokens)].tolist()) if u < p)
    return ",".join(map(str, chosen))


@torch.no_grad()
def sample_grid(model: LatentReasoner, problems: list[Encoded], chains: int, rounds: int,
                seeds: list[list[int]]) -> list[list[list[LatentAnswer]]]:
    rows = [p for p in problems for _ in range(chains)]
    batch = encode_batch(rows)
    size, width = batch.tokens.shape[1], model.config.d_model
    generators = [torch.Generator().manual_seed(int(seeds[i][w])) for i in range(len(problems)) for w in range(chains)]
    noise, uniforms = [], []
    for _ in range(rounds):
        step_noise = torch.zeros(len(rows), size, width)
        step_uniform = torch.ones(len(rows), size)
        for r, (problem, generator) in enumerate(zip(rows, generators)):
            length = len(problem.tokens)
            step_noise[r, :length] = torch.randn(length, width, generator=generator)
            step_uniform[r, :length] = torch.rand(length, generator=generator)
        noise.append(step_noise)
        uniforms.append(step_uniform)
    readouts = model(batch.tokens, batch.family, rounds, noise=noise)
    flops = [model.iteration_flops(len(p.tokens)) for p in problems]
    grid: list[list[list[LatentAnswer]]] = [[[] for _ in range(chains)] for _ in problems]
    for t, readout in enumerate(readouts):
        scores = torch.sigmoid(readout.score_logits).tolist()
        for r, problem in enumerate(rows):
            p, w = divmod(r, chains)
            answer = _answer(problem, readout.value_logits[r], readout.include_logits[r], uniforms[t][r])
            text = f"iteration {t + 1}: Answer: {answer.replace(',', ', ') if answer else 'none'}"
            grid[p][w].append(LatentAnswer(answer, text, scores[r], flops[p]))
    return grid
