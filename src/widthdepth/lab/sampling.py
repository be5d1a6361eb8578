"""Sampling W trajectories x D iterations of the latent reasoner for a batch of problems, in one pass.

Row (problem p, trajectory w) draws all its randomness, in iteration order, as uniforms from one
generator of its own seeded from ``seeds[p][w]``: per iteration and position, `noise_rank` uniforms
become the latent noise (through the inverse normal CDF) and one more samples the readout. So a
trajectory's answers depend neither on which other problems or trajectories share the batch nor on
D (the first d iterations of a longer run are the same). Problems are batched by family and length,
so no work is spent on padding and one attention mask serves the batch.

    grid = sample_grid(model, [encode_structure(s) for s in structures], chains=16, rounds=8, seeds=seeds)
    grid[p][w][d - 1].answer
"""

from __future__ import annotations

from dataclasses import astuple
from typing import NamedTuple

import torch

from widthdepth.lab.model import Batch, LatentReasoner
from widthdepth.lab.tokens import Encoded
from widthdepth.lab.train import encode_batch, masked_value_logits

_OPEN_INTERVAL = -1 + 2.0 ** -23  # keeps the inverse normal CDF finite at u = 0


class LatentAnswer(NamedTuple):
    answer: str
    """Canonical: chain, the final value; search, the chosen item values sorted and comma-joined."""
    score: float
    """Verifier head: estimated probability that the trajectory's readout is right."""
    flops: int
    """This iteration and its readout, for this problem's length (the first also the encoding)."""
    iteration: int
    log_probability: float = 0.0
    """The readout's log-probability of this answer: the model's own confidence."""

    @property
    def text(self) -> str:
        return f"iteration {self.iteration}: Answer: {self.answer.replace(',', ', ') if self.answer else 'none'}"


def _draw(seeds: list[int], rounds: int, length: int, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise (rounds, rows, length, rank) and readout uniforms (rounds, rows, length)."""
    uniforms = torch.empty(len(seeds), rounds, length, rank + 1, device="cpu")  # the same numbers on any device
    generator = torch.Generator()
    for row, seed in zip(uniforms, seeds):  # uniform_ fills in order, so a shorter draw is a prefix
        row.uniform_(generator=generator.manual_seed(seed))
    uniforms = uniforms.transpose(0, 1)
    noise = (2 * uniforms[..., :rank] - 1).clamp(min=_OPEN_INTERVAL).erfinv_().mul_(2 ** 0.5)  # inverse normal CDF
    return noise, uniforms[..., rank]


@torch.no_grad()
def sample_grid(model: LatentReasoner, problems: list[Encoded], chains: int, rounds: int,
                seeds: list[list[int]]) -> list[list[list[LatentAnswer]]]:
    grid: list[list[list[LatentAnswer]]] = [[[] for _ in range(chains)] for _ in problems]
    groups: dict[tuple[str, int], list[int]] = {}  # same family and length: no padding, one attention mask
    for i, problem in enumerate(problems):
        groups.setdefault((problem.family, len(problem.tokens)), []).append(i)
    for indices in groups.values():
        _sample_same_length(model, [problems[i] for i in indices], chains, rounds, [seeds[i] for i in indices],
                            [grid[i] for i in indices])
    return grid


def _sample_same_length(model: LatentReasoner, problems: list[Encoded], chains: int, rounds: int,
                        seeds: list[list[int]], grid: list[list[list[LatentAnswer]]]) -> None:
    length = len(problems[0].tokens)
    batch = encode_batch(problems)
    device = model.answer_head.weight.device  # drawn on the CPU (the same numbers anywhere), used on the model's
    batch = Batch(*(field.repeat_interleave(chains, dim=0).to(device) for field in astuple(batch)))
    noise, uniforms = (x.to(device) for x in _draw([int(seeds[i][w]) for i in range(len(problems))
                                                    for w in range(chains)], rounds, length, model.config.noise_rank))
    readouts = model(batch.tokens, batch.family, rounds, noise=list(noise))
    iteration_flops = model.iteration_flops(length)
    first_flops = iteration_flops + model.encoding_flops(length)
    subsets: dict[tuple[int, int], str] = {}  # (problem, chosen-items bit mask) -> answer
    for t, readout in enumerate(readouts):
        flops = first_flops if t == 0 else iteration_flops
        for r, (answer, score, logp) in enumerate(read_answers(readout, batch, uniforms[t], problems, chains, subsets)):
            p, w = divmod(r, chains)
            grid[p][w].append(LatentAnswer(answer, score, flops, t + 1, logp))


def read_answers(readout, batch: Batch, uniforms: torch.Tensor, problems: list[Encoded], rows_per_problem: int,  # noqa: ANN001
                 subsets: dict[tuple[int, int], str]) -> list[tuple[str, float, float]]:
    """(answer, verifier score, log-probability) of each row of one readout, answers sampled with the
    rows' uniforms (rows, length); row r belongs to problem r // rows_per_problem."""
    is_chain = (batch.family == 0).tolist()
    # chain rows: sample the final value from the readout at the last position
    logits = masked_value_logits(readout.value_logits[:, -1:], batch.modulus)[:, 0]
    cumulative = torch.cumsum(torch.softmax(logits, -1), -1)
    values = torch.searchsorted(cumulative, (uniforms[:, 0] * cumulative[:, -1])[:, None]).squeeze(1)
    values = values.clamp(max=logits.shape[-1] - 1)
    value_logp = torch.log_softmax(logits, -1).gather(1, values[:, None])[:, 0].tolist()
    values = values.tolist()
    # search rows: each item in with its readout probability (position 0 is the target)
    include = readout.include_logits[:, 1:]
    taken = uniforms[:, 1:] < torch.sigmoid(include)
    bits = 1 << torch.arange(include.shape[1], device=include.device)  # no integer matmul: CUDA has none
    chosen = (taken.long() * bits).sum(1).tolist()
    subset_logp = torch.nn.functional.logsigmoid(torch.where(taken, include, -include)).sum(1).tolist()
    scores = torch.sigmoid(readout.score_logits).tolist()
    out = []
    for r in range(len(scores)):
        p = r // rows_per_problem
        if is_chain[r]:
            answer = str(values[r])
        else:
            answer = subsets.get((p, chosen[r]))
            if answer is None:
                answer = subsets[p, chosen[r]] = _subset(problems[p].items, chosen[r])
        out.append((answer, scores[r], value_logp[r] if is_chain[r] else subset_logp[r]))
    return out


def _subset(items: list[int], mask: int) -> str:
    return ",".join(map(str, sorted(v for i, v in enumerate(items) if mask >> i & 1)))
