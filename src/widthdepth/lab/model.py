"""The latent reasoner: one shared block iterated t times, read out after every iteration.

    model = LatentReasoner(ReasonerConfig())
    readouts = model(batch, iterations=8)        # a list of 8 readouts, one per depth
    model.iteration_flops(seq_len=5)

Depth: the block is applied t times with the problem re-injected at each iteration
(``h <- block(W_h h + P)``, where ``P = W_p embed(problem)`` is the encoding, computed once), so one
pass of D iterations yields the answers at every depth d <= D. For chains, attention is limited to
each position and the one before it, so information moves one step per iteration and a chain of L
steps needs about L iterations. With `layers` = n > 1 the model is instead a stack of n unique blocks
(iteration t applies block t; issue 20's shape and depth sweeps), the same layer shape and re-injection.
Width: after each iteration Gaussian noise with a learned, per-family scale is added to the latent
state (GRAM-style stochastic trajectories), so W trajectories of one problem, sampled as one batch,
differ; answers are sampled from the readout. The noise is drawn in `noise_rank` dimensions per
position and mapped to the state by a learned basis (a learned covariance; drawing full-width
normals would cost as much time as all the matrix products). A verifier head scores each trajectory.

FLOPs are those of the matrix products and attention the model needs, 2 per multiply-add, as
torch's FlopCounterMode counts them (elementwise work is not counted): the encoding (embedding
lookup, then the problem projection) once per trajectory, then each iteration with its readout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from widthdepth.lab.tokens import MAX_LENGTH, MAX_MODULUS, PAD, VOCAB

FAMILIES = ("chain", "search")
FOLDED_ATTENTION_MAX = 48


@dataclass(frozen=True)
class ReasonerConfig:
    d_model: int = 128
    ffn: int = 512
    heads: int = 4
    noise_rank: int = 8
    """Latent noise is drawn in this many dimensions per position and mapped to d_model by a
    learned basis: a learned noise covariance, and 8x fewer random draws than full-width noise."""
    max_len: int = MAX_LENGTH
    vocab: int = VOCAB
    classes: int = MAX_MODULUS
    layers: int = 1
    """Distinct blocks. 1: one shared block iterated (recurrent depth: the shipped reasoners); n > 1: a
    stack of n unique blocks, iteration t applying block t (no weight sharing; at most n iterations)."""

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Block(nn.Module):
    """A pre-norm transformer layer's parameters: block t > 0 of a stack (block 0 is the model's own, under
    the names checkpoints of the shared-block reasoner have always used)."""

    def __init__(self, d: int, ffn: int) -> None:
        super().__init__()
        self.norm_attention = nn.LayerNorm(d)
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attention_out = nn.Linear(d, d)
        self.norm_ffn = nn.LayerNorm(d)
        self.ffn_in, self.ffn_out = nn.Linear(d, ffn), nn.Linear(ffn, d)


@dataclass
class Batch:
    tokens: torch.Tensor      # (B, S) long, PAD-padded
    family: torch.Tensor      # (B,) long: 0 chain, 1 search
    values: torch.Tensor      # (B, S) long: chain prefix values, or search inclusion bits; -1 where none
    modulus: torch.Tensor     # (B,) long: chain modulus (0 for search)

    def to(self, device: str | torch.device) -> Batch:
        return Batch(self.tokens.to(device), self.family.to(device), self.values.to(device), self.modulus.to(device))


@dataclass
class Readout:
    value_logits: torch.Tensor    # (B, S, classes): chain values at every position
    include_logits: torch.Tensor  # (B, S): search inclusion per position (position 0 is the target)
    score_logits: torch.Tensor    # (B,): verifier head


class LatentReasoner(nn.Module):
    def __init__(self, config: ReasonerConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.token_embedding = nn.Embedding(config.vocab, d, padding_idx=PAD)
        self.position_embedding = nn.Embedding(config.max_len, d)
        self.inject_problem = nn.Linear(d, d)
        self.inject_state = nn.Linear(d, d, bias=False)
        self.norm_attention = nn.LayerNorm(d)
        self.query = nn.Linear(d, d)  # three products, not one fused: each result is contiguous, which
        self.key = nn.Linear(d, d)    # the folded attention needs without a copy
        self.value = nn.Linear(d, d)
        self.attention_out = nn.Linear(d, d)
        self.norm_ffn = nn.LayerNorm(d)
        self.ffn_in = nn.Linear(d, config.ffn)
        self.ffn_out = nn.Linear(config.ffn, d)
        self.norm_out = nn.LayerNorm(d)
        self.answer_head = nn.Linear(d, config.classes + 1)  # chain value logits, then search inclusion
        self.score_head = nn.Linear(d, 1)
        self.noise_basis = nn.Linear(config.noise_rank, d, bias=False)
        nn.init.normal_(self.noise_basis.weight, std=config.noise_rank ** -0.5)  # unit variance per dimension
        self.noise_scale = nn.Parameter(torch.full((len(FAMILIES),), -1.5))  # softplus -> ~0.2
        self.stack = nn.ModuleList(Block(d, config.ffn) for _ in range(config.layers - 1))  # none when shared

    # -- one iteration -----------------------------------------------------------------------------
    def _folds_heads(self, size: int) -> bool:
        """Short sequences fold the heads into the positions (see `_attend`)."""
        return size * self.config.heads <= FOLDED_ATTENTION_MAX

    def _attention_bias(self, tokens: torch.Tensor, family: torch.Tensor) -> torch.Tensor:
        """Additive mask, 0 = may attend, -inf = may not, in the layout `_attend` uses: (B, S*H, S*H)
        when heads are folded, else (B, 1, S, S), with B = 1 when all rows share one mask. Chains: self and the previous position; search:
        every non-padding position. Built once per forward."""
        size, heads = tokens.shape[1], self.config.heads
        if len(tokens) > 1 and bool((family == family[0]).all()) and bool((tokens != PAD).all()):
            tokens, family = tokens[:1], family[:1]  # every row has the same mask: build one, broadcast it
        device = tokens.device  # every tensor made here lives where the input does (cpu, cuda)
        index = torch.arange(size, device=device)
        local = (index[None, :] == index[:, None]) | (index[None, :] == index[:, None] - 1)
        keys = tokens != PAD
        everything = torch.ones(size, size, dtype=torch.bool, device=device)
        allowed = torch.where(family[:, None, None] == 0, local[None], everything[None])
        itself = torch.eye(size, dtype=torch.bool, device=device)[None]
        allowed = (allowed & keys[:, None, :]) | itself  # padding sees itself
        if not self._folds_heads(size):
            return torch.zeros(allowed.shape, device=device).masked_fill(~allowed, float("-inf"))[:, None]
        same_head = torch.eye(heads, dtype=torch.bool, device=device)
        allowed = allowed[:, :, None, :, None] & same_head[None, None, :, None, :]  # (B, S, H, S, H)
        flat = allowed.reshape(len(tokens), size * heads, size * heads)
        return torch.zeros(flat.shape, device=device).masked_fill(~flat, float("-inf"))

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, s, d = q.shape
        heads = self.config.heads
        if self._folds_heads(s):
            # (B, S, H*dh) viewed as (B, S*H, dh): one batched product per sequence, no transposes;
            # the mask keeps each head to its own keys (cross-head products are computed and
            # discarded, and not counted in `iteration_flops`). At S*H <= 48 this is 2-3x faster
            # than the fused kernel.
            shape = (b, s * heads, d // heads)
            scores = torch.baddbmm(bias, q.view(shape), k.view(shape).transpose(1, 2), alpha=(d // heads) ** -0.5)
            return torch.bmm(torch.softmax(scores, dim=-1), v.view(shape)).view(b, s, d)
        shape = (b, s, heads, d // heads)
        return F.scaled_dot_product_attention(
            q.view(shape).transpose(1, 2), k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2),
            attn_mask=bias).transpose(1, 2).reshape(b, s, d)

    def _block(self, x: torch.Tensor, bias: torch.Tensor, layer: int = 0) -> torch.Tensor:
        b = self if layer == 0 else self.stack[layer - 1]
        h = b.norm_attention(x)
        x = x + b.attention_out(self._attend(b.query(h), b.key(h), b.value(h), bias))
        return x + b.ffn_out(F.relu(b.ffn_in(b.norm_ffn(x)), inplace=True))

    def layer(self, t: int) -> int:
        """The block iteration t (from 0) applies."""
        if self.config.layers == 1:
            return 0
        if t >= self.config.layers:
            raise ValueError(f"a stack of {self.config.layers} unique layers runs at most {self.config.layers} "
                             f"iterations (asked for iteration {t + 1})")
        return t

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device)
        return self.inject_problem(self.token_embedding(tokens) + self.position_embedding(positions)[None])

    def readout(self, state: torch.Tensor, tokens: torch.Tensor) -> Readout:
        h = self.norm_out(state)
        keys = (tokens != PAD).float()
        pooled = (h * keys[..., None]).sum(1) / keys.sum(1, keepdim=True).clamp(min=1)
        answers = self.answer_head(h)
        return Readout(answers[..., :-1], answers[..., -1], self.score_head(pooled).squeeze(-1))

    def iterate(self, state: torch.Tensor, encoded: torch.Tensor, bias: torch.Tensor, family: torch.Tensor,
                noise: torch.Tensor | None, t: int = 0) -> torch.Tensor:
        """Iteration `t` (from 0): the block `layer(t)` over the re-injected problem, then the noise."""
        state = self._block(self.inject_state(state) + encoded, bias, self.layer(t))
        if noise is not None:
            state = state + F.softplus(self.noise_scale)[family][:, None, None] * self.noise_basis(noise)
        return state

    def forward(self, tokens: torch.Tensor, family: torch.Tensor, iterations: int,
                noise: list[torch.Tensor] | None = None, generator: torch.Generator | None = None) -> list[Readout]:
        """Readouts after each of `iterations` iterations. Noise: given per iteration, or drawn from
        `generator`, or (neither) drawn from torch's global generator; pass zeros for none."""
        encoded = self.encode(tokens)
        bias = self._attention_bias(tokens, family)
        state = torch.zeros_like(encoded)
        readouts = []
        for t in range(iterations):
            eps = noise[t] if noise is not None else torch.randn(  # drawn where the generator is, used here
                *state.shape[:2], self.config.noise_rank, generator=generator,
                device=generator.device if generator is not None else state.device).to(state.device)
            state = self.iterate(state, encoded, bias, family, eps, t)
            readouts.append(self.readout(state, tokens))
        return readouts

    # -- cost --------------------------------------------------------------------------------------
    def iteration_flops(self, seq_len: int) -> int:
        """FLOPs of one iteration plus its readout for one sequence of `seq_len` positions."""
        c, s = self.config, seq_len
        d, f = c.d_model, c.ffn
        linear = 2 * s * (d * d + d * 3 * d + d * d + d * f + f * d + d * c.classes + d  # inject_state..heads
                          + c.noise_rank * d)                                          # noise basis
        attention = 2 * 2 * s * s * d  # scores and weighted values over all S keys (the mask does not skip work)
        score = 2 * d                  # verifier head on the pooled state
        return linear + attention + score

    def encoding_flops(self, seq_len: int) -> int:
        """The embedding lookup (no FLOPs) and the problem projection, once per trajectory."""
        d = self.config.d_model
        return 2 * seq_len * d * d

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
