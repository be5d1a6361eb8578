"""Sleep-style consolidation (issue 21): a context too long to keep — the facts of a `recall` problem — is
consolidated into fast weights by P passes, gradient steps on a self-supervised objective (recalling each
fact's successor), and the question is then answered from the fast weights alone. Passes are depth;
independently consolidated copies, each rehearsing its own random half of the facts in each pass, are
width; how well a copy recalls the whole context is a verifier that needs no gold answer.

    model = FastWeightMemory(MemoryConfig())
    grid = sample_grid(model, [structure, ...], chains=8, rounds=16, seeds=[[...8 seeds...], ...])
    grid[p][c][d - 1].answer           # copy c's answer after d passes

The fast weights are one matrix M (dim x dim) per copy, starting at 0; a fact a -> b is read as
logits = U (M E[a]) over the 64 entities. The slow weights — the entity embeddings E, the readout U and
the pass's step size — are learned (`lab.consolidation_train`) so that a few passes store a context.
A pass: M <- M - step * d/dM (sum of the rehearsed facts' cross-entropies). An h-hop question reads M h
times from the start, each hop's most likely entity feeding the next.

FLOPs are counted exactly (matrix products, as torch's counter counts them): pass d is the backward pass
to M at M_(d-1), the forward pass over every fact at M_d (the next pass's loss and the score in one),
and the h reads of the answer; pass 1 also the forward at M_0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from widthdepth.errors import WidthdepthError
from widthdepth.lab.sampling import LatentAnswer
from widthdepth.tasks.recall import ENTITIES


@dataclass(frozen=True)
class MemoryConfig:
    dim: int = 16
    """Entity embeddings are dim long; the fast weights are dim x dim."""
    keep: float = 0.5
    """The share of the facts each pass rehearses (each copy draws its own)."""
    entities: int = ENTITIES

    def to_dict(self) -> dict:
        return asdict(self)


class FastWeightMemory(nn.Module):
    def __init__(self, config: MemoryConfig) -> None:
        super().__init__()
        self.config = config
        scale = config.dim ** -0.5
        self.embed = nn.Parameter(torch.randn(config.entities, config.dim) * scale)
        self.readout = nn.Parameter(torch.randn(config.entities, config.dim) * scale)
        self.log_step = nn.Parameter(torch.tensor(0.0))
        """log of the pass's step size (the fast rate, learned)."""

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def read(self, fast: torch.Tensor, entities: torch.Tensor) -> torch.Tensor:
        """Logits (rows, q, entities) of each entity's successor (rows, q) under each row's fast weights."""
        return torch.einsum("rij,rqj->rqi", fast, self.embed[entities]) @ self.readout.T

    def consolidate(self, sources: torch.Tensor, targets: torch.Tensor, rehearse: torch.Tensor, passes: int,
                    train: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(M_d, logits of every fact at M_d) for d = 1..passes; `rehearse` (passes, rows, facts) marks
        the facts each pass rehearses. `train`: keep the graph through the passes."""
        rows, dim = sources.shape[0], self.config.dim
        out = []
        with torch.enable_grad():
            fast = torch.zeros(rows, dim, dim, device=sources.device, requires_grad=True).clone()  # non-leaf:
            logits = self.read(fast, sources)  # torch's FLOP counter follows gradients taken with respect to it
            for p in range(passes):
                loss = (F.cross_entropy(logits.transpose(1, 2), targets, reduction="none") * rehearse[p]).sum()
                grad, = torch.autograd.grad(loss, fast, create_graph=train, retain_graph=train)
                fast = fast - self.log_step.exp() * grad
                fast = fast if train else fast.detach().requires_grad_(True).clone()
                logits = self.read(fast, sources)
                out.append((fast, logits))
        return out

    def answer(self, fast: torch.Tensor, start: torch.Tensor, hops: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Each row's entity after `hops` reads from `start` (rows,), and the log-probability of the path (the
        sum over its reads: the model's confidence in every hop)."""
        entity, logp = start, torch.zeros(start.shape, device=start.device)
        for _ in range(hops):
            step = torch.log_softmax(self.read(fast, entity[:, None])[:, 0].float(), -1)
            entity = step.argmax(-1)
            logp = logp + step.gather(1, entity[:, None])[:, 0]
        return entity, logp

    def pass_flops(self, facts: int, hops: int) -> int:
        """One pass of one copy: the backward to M, a forward over every fact, and the answer's reads."""
        d, n = self.config.dim, self.config.entities
        read = 2 * d * d + 2 * d * n
        return 2 * facts * read + hops * read  # the backward's two products mirror the forward's

    def first_flops(self, facts: int) -> int:
        d, n = self.config.dim, self.config.entities
        return facts * (2 * d * d + 2 * d * n)


def problem_tensors(structures: list[dict]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """sources, targets (problems, facts): each fact a -> b; starts (problems,)."""
    for s in structures:
        if s.get("family") != "recall":
            raise WidthdepthError(f"builtin:memory answers recall problems (facts, then a question), not "
                                  f"{s.get('family')}")
    sources = torch.tensor([[a for a, _ in s["links"]] for s in structures])
    targets = torch.tensor([[b for _, b in s["links"]] for s in structures])
    return sources, targets, torch.tensor([s["start"] for s in structures])


def check_structure(structure: dict, config: MemoryConfig, trained: dict | None = None) -> None:
    """Raise a WidthdepthError unless the model can answer this problem."""
    problem_tensors([structure])


def rehearsals(seeds: list[int], passes: int, facts: int, keep: float) -> torch.Tensor:
    """(passes, copies, facts): which facts each pass of each copy rehearses, from the copy's own seed (drawn
    on the CPU: the same anywhere; a longer draw extends a shorter one)."""
    generator = torch.Generator()
    draws = torch.stack([torch.rand(passes, facts, generator=generator.manual_seed(seed)) for seed in seeds])
    return (draws < keep).float().transpose(0, 1)


@torch.no_grad()
def sample_grid(model: FastWeightMemory, structures: list[dict], chains: int, rounds: int,
                seeds: list[list[int]]) -> list[list[list[LatentAnswer]]]:
    """Each problem's `chains` copies, each consolidated for `rounds` passes and answering after each; problems
    with the same number of facts and hops share a batch. A copy's answers depend only on its seed (its
    scores, up to float rounding: products over a different batch may round differently)."""
    grid: list[list[list[LatentAnswer]]] = [[[] for _ in range(chains)] for _ in structures]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, s in enumerate(structures):
        groups.setdefault((len(s["links"]), s["hops"]), []).append(i)
    device = model.embed.device
    for (facts, hops), indices in groups.items():
        sources, targets, starts = (t.repeat_interleave(chains, 0).to(device)
                                    for t in problem_tensors([structures[i] for i in indices]))
        rehearse = rehearsals([int(seeds[i][c]) for i in indices for c in range(chains)], rounds, facts,
                              model.config.keep).to(device)
        for d, (fast, logits) in enumerate(model.consolidate(sources, targets, rehearse, rounds)):
            entity, logp = model.answer(fast, starts, hops)
            recalled = (logits.argmax(-1) == targets).float().mean(1)
            flops = model.pass_flops(facts, hops) + (model.first_flops(facts) if d == 0 else 0)
            for row, (answer, lp, score) in enumerate(zip(entity.tolist(), logp.tolist(), recalled.tolist())):
                p, c = divmod(row, chains)
                grid[indices[p]][c].append(LatentAnswer(str(answer), score, flops, d + 1, lp))
    return grid
