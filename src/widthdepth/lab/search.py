"""Search inside the latent reasoner: R trajectories per problem, iterated together, and after every
iteration a choice of which states go on — GRAM's "depth-like gains through parallel-friendly
mechanisms". The caller's `select(problem, iteration, scores, answers)` sees the verifier head's score
and the answer of each row and returns, for each row of the next iteration, the row whose state it continues (beam: the
best rows, each repeated; particle filtering: rows resampled by their scores).

Row r of iteration t draws its noise and answer from a generator of its own, seeded by the problem's
seed, t and r, so a search is a function of its seeds and choices alone, as `sample_grid` is.

    nodes = search_latent(model, encoded, rows=16, iterations=8, seeds=seeds, select=select)
    nodes[p][t][r].answer, nodes[p][t][r].parent
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple
from typing import NamedTuple

import torch

from widthdepth.lab.model import Batch, LatentReasoner
from widthdepth.lab.sampling import _draw, read_answers
from widthdepth.lab.tokens import Encoded
from widthdepth.lab.train import encode_batch
from widthdepth.specs import stable_int

Select = Callable[[int, int, list[float], list[str]], list[int]]
"""(problem index, iteration from 0, head scores and answers of its rows) -> the row each next row continues."""


class LatentNode(NamedTuple):
    answer: str
    score: float
    flops: int
    parent: int | None
    """The row of the iteration before whose state this row continued (None at the first)."""
    log_probability: float


@torch.no_grad()
def search_latent(model: LatentReasoner, problems: list[Encoded], rows: int, iterations: int, seeds: list[int],
                  select: Select) -> list[list[list[LatentNode]]]:
    nodes: list[list[list[LatentNode]]] = [[] for _ in problems]
    groups: dict[tuple[str, int], list[int]] = {}  # same family and length: one batch, one attention mask
    for i, problem in enumerate(problems):
        groups.setdefault((problem.family, len(problem.tokens)), []).append(i)
    for indices in groups.values():
        _search_same_length(model, indices, [problems[i] for i in indices], rows, iterations, [seeds[i] for i in indices],
                            select, [nodes[i] for i in indices])
    return nodes


def _search_same_length(model: LatentReasoner, indices: list[int], problems: list[Encoded], rows: int,
                        iterations: int, seeds: list[int], select: Select, out: list[list[list[LatentNode]]]) -> None:
    length = len(problems[0].tokens)
    batch = encode_batch(problems)
    device = model.answer_head.weight.device
    batch = Batch(*(field.repeat_interleave(rows, dim=0).to(device) for field in astuple(batch)))
    encoded = model.encode(batch.tokens)
    bias = model._attention_bias(batch.tokens, batch.family)
    state = torch.zeros_like(encoded)
    iteration_flops = model.iteration_flops(length)
    subsets: dict[tuple[int, int], str] = {}
    parents: list[list[int]] | None = None
    for t in range(iterations):
        noise, uniforms = _draw([stable_int(seeds[p], t, r) for p in range(len(problems)) for r in range(rows)], 1,
                                length, model.config.noise_rank)
        state = model.iterate(state, encoded, bias, batch.family, noise[0].to(device), t)
        read = read_answers(model.readout(state, batch.tokens), batch, uniforms[0].to(device), problems, rows, subsets)
        flops = iteration_flops + (model.encoding_flops(length) if t == 0 else 0)
        chosen = []
        for p in range(len(problems)):
            mine = read[p * rows:(p + 1) * rows]
            out[p].append([LatentNode(answer, score, flops, None if parents is None else parents[p][r], logp)
                           for r, (answer, score, logp) in enumerate(mine)])
            if t < iterations - 1:
                picked = select(indices[p], t, [score for _, score, _ in mine], [answer for answer, _, _ in mine])
                assert len(picked) == rows and all(0 <= r < rows for r in picked)
                chosen.append(picked)
        if t < iterations - 1:
            parents = chosen
            kept = [p * rows + r for p, picked in enumerate(chosen) for r in picked]
            state = state[torch.tensor(kept, device=device)]
