"""Sampling W trajectories x D iterations of the latent reasoner for a batch of problems, in one pass.

Row (problem p, trajectory w) draws its latent noise and its readout uniforms from two generators of
its own, seeded from ``seeds[p][w]``, over its own (unpadded) length and in iteration order, so a
trajectory's answers depend neither on which other problems or trajectories share the batch nor on
D (the first d iterations of a longer run are the same).

    grid = sample_grid(model, [encode_structure(s) for s in structures], chains=16, rounds=8, seeds=seeds)
    grid[p][w][d - 1].answer
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from widthdepth.lab.model import LatentReasoner
from widthdepth.lab.tokens import Encoded
from widthdepth.lab.train import encode_batch, masked_value_logits

_UNIFORM_STREAM = 1 << 40  # offset between a row's noise seed and its uniforms seed


@dataclass(frozen=True)
class LatentAnswer:
    answer: str
    """Canonical: chain, the final value; search, the chosen item values sorted and comma-joined."""
    text: str
    score: float
    """Verifier head: estimated probability that the trajectory's readout is right."""
    flops: int
    """This iteration and its readout, for this problem's length (the first also the encoding)."""


def _draw(rows: list[Encoded], seeds: list[int], rounds: int, size: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    noise = torch.zeros(rounds, len(rows), size, width)
    uniforms = torch.ones(rounds, len(rows), size)
    for r, (problem, seed) in enumerate(zip(rows, seeds)):
        length = len(problem.tokens)
        noise[:, r, :length] = torch.randn(rounds, length, width, generator=torch.Generator().manual_seed(seed))
        uniforms[:, r, :length] = torch.rand(rounds, length,
                                             generator=torch.Generator().manual_seed(seed + _UNIFORM_STREAM))
    return noise, uniforms


@torch.no_grad()
def sample_grid(model: LatentReasoner, problems: list[Encoded], chains: int, rounds: int,
                seeds: list[list[int]]) -> list[list[list[LatentAnswer]]]:
    rows = [p for p in problems for _ in range(chains)]
    row_seeds = [int(seeds[i][w]) for i in range(len(problems)) for w in range(chains)]
    batch = encode_batch(rows)
    noise, uniforms = _draw(rows, row_seeds, rounds, batch.tokens.shape[1], model.config.d_model)
    readouts = model(batch.tokens, batch.family, rounds, noise=list(noise))
    lengths = torch.tensor([len(p.tokens) for p in rows])
    index = torch.arange(len(rows))
    is_item = torch.arange(batch.tokens.shape[1])[None, :].expand(len(rows), -1)
    is_item = (is_item >= 1) & (is_item < lengths[:, None])
    flops = [model.iteration_flops(len(p.tokens)) for p in problems]
    encoding = [model.encoding_flops(len(p.tokens)) for p in problems]
    grid: list[list[list[LatentAnswer]]] = [[[] for _ in range(chains)] for _ in problems]
    for t, readout in enumerate(readouts):
        # chain rows: sample the final value from the readout at the last position
        logits = masked_value_logits(readout.value_logits, batch.modulus)[index, lengths - 1]
        cumulative = torch.cumsum(torch.softmax(logits, -1), -1)
        values = torch.searchsorted(cumulative, (uniforms[t, :, 0] * cumulative[:, -1])[:, None]).squeeze(1)
        values = values.clamp(max=logits.shape[-1] - 1).tolist()
        # search rows: each item in with its readout probability
        chosen = ((uniforms[t] < torch.sigmoid(readout.include_logits)) & is_item).tolist()
        scores = torch.sigmoid(readout.score_logits).tolist()
        for r, problem in enumerate(rows):
            p, w = divmod(r, chains)
            if problem.family == "chain":
                answer = str(values[r])
            else:
                answer = ",".join(map(str, sorted(v for v, c in zip(problem.items, chosen[r][1:]) if c)))
            text = f"iteration {t + 1}: Answer: {answer.replace(',', ', ') if answer else 'none'}"
            grid[p][w].append(LatentAnswer(answer, text, scores[r], flops[p] + (encoding[p] if t == 0 else 0)))
    return grid
