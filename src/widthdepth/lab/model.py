"""The latent reasoner: one shared block iterated t times, read out after every iteration.

    model = LatentReasoner(ReasonerConfig())
    readouts = model(batch, iterations=8)        # a list of 8 readouts, one per depth
    model.iteration_flops(seq_len=5, family="chain")

Depth: the block is applied t times with the problem re-injected at each iteration
(``h <- block(W_h h + P)``, where ``P = W_p embed(problem)`` is the encoding, computed once), so one
pass of D iterations yields the answers at every depth d <= D. One attention head: at these sizes a
single batched product is several times faster than split heads. For chains, attention is limited to each position and the one before it, so
information moves one step per iteration and a chain of L steps needs about L iterations.
Width: after each iteration Gaussian noise with a learned, per-family scale is added to the latent
state (GRAM-style stochastic trajectories), so W trajectories of one problem, sampled as one batch,
differ; answers are sampled from the readout. A verifier head scores each trajectory.

FLOPs are those of the matrix products and attention the model really computes, 2 per multiply-add,
as torch's FlopCounterMode counts them (elementwise work is not counted): the encoding (embedding
lookup, then the problem projection) once per trajectory, then each iteration with its readout.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from widthdepth.lab.tokens import MAX_LENGTH, MAX_MODULUS, PAD, VOCAB

FAMILIES = ("chain", "search")


@dataclass(frozen=True)
class ReasonerConfig:
    d_model: int = 64
    ffn: int = 256
    heads: int = 4
    max_len: int = MAX_LENGTH
    vocab: int = VOCAB
    classes: int = MAX_MODULUS

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Batch:
    tokens: torch.Tensor      # (B, S) long, PAD-padded
    family: torch.Tensor      # (B,) long: 0 chain, 1 search
    values: torch.Tensor      # (B, S) long: chain prefix values, or search inclusion bits; -1 where none
    modulus: torch.Tensor     # (B,) long: chain modulus (0 for search)


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
        self.qkv = nn.Linear(d, 3 * d)
        self.attention_out = nn.Linear(d, d)
        self.norm_ffn = nn.LayerNorm(d)
        self.ffn_in = nn.Linear(d, config.ffn)
        self.ffn_out = nn.Linear(config.ffn, d)
        self.norm_out = nn.LayerNorm(d)
        self.value_head = nn.Linear(d, config.classes)
        self.include_head = nn.Linear(d, 1)
        self.score_head = nn.Linear(d, 1)
        self.noise_scale = nn.Parameter(torch.full((len(FAMILIES),), -1.5))  # softplus -> ~0.2

    # -- one iteration -----------------------------------------------------------------------------
    def _attention_bias(self, tokens: torch.Tensor, family: torch.Tensor) -> torch.Tensor:
        """(B, S, S) additive mask, 0 = may attend, -inf = may not. Chains: self and the previous
        position; search: every non-padding position. Built once per forward."""
        size = tokens.shape[1]
        index = torch.arange(size)
        local = (index[None, :] == index[:, None]) | (index[None, :] == index[:, None] - 1)
        keys = tokens != PAD
        allowed = torch.where(family[:, None, None] == 0, local[None], torch.ones(size, size, dtype=torch.bool)[None])
        allowed = (allowed & keys[:, None, :]) | torch.eye(size, dtype=torch.bool)[None]  # padding sees itself
        return torch.zeros(allowed.shape).masked_fill(~allowed, float("-inf"))

    def _block(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        heads = self.config.heads
        q, k, v = self.qkv(self.norm_attention(x)).split(d, dim=-1)
        if heads == 1:  # one batched product: several times faster at these sizes
            scores = torch.baddbmm(bias, q, k.transpose(1, 2), alpha=d ** -0.5)
            attended = torch.bmm(torch.softmax(scores, dim=-1), v)
        else:
            shape = (b, s, heads, d // heads)
            attended = F.scaled_dot_product_attention(
                q.view(shape).transpose(1, 2), k.view(shape).transpose(1, 2), v.view(shape).transpose(1, 2),
                attn_mask=bias[:, None]).transpose(1, 2).reshape(b, s, d)
        x = x + self.attention_out(attended)
        return x + self.ffn_out(F.relu(self.ffn_in(self.norm_ffn(x))))

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(tokens.shape[1])
        return self.inject_problem(self.token_embedding(tokens) + self.position_embedding(positions)[None])

    def readout(self, state: torch.Tensor, tokens: torch.Tensor) -> Readout:
        h = self.norm_out(state)
        keys = (tokens != PAD).float()
        pooled = (h * keys[..., None]).sum(1) / keys.sum(1, keepdim=True).clamp(min=1)
        return Readout(self.value_head(h), self.include_head(h).squeeze(-1), self.score_head(pooled).squeeze(-1))

    def iterate(self, state: torch.Tensor, encoded: torch.Tensor, bias: torch.Tensor, family: torch.Tensor,
                noise: torch.Tensor | None) -> torch.Tensor:
        state = self._block(self.inject_state(state) + encoded, bias)
        if noise is not None:
            state = state + F.softplus(self.noise_scale)[family][:, None, None] * noise
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
            eps = noise[t] if noise is not None else torch.randn(state.shape, generator=generator)
            state = self.iterate(state, encoded, bias, family, eps)
            readouts.append(self.readout(state, tokens))
        return readouts

    # -- cost --------------------------------------------------------------------------------------
    def iteration_flops(self, seq_len: int) -> int:
        """FLOPs of one iteration plus its readout for one sequence of `seq_len` positions."""
        c, s = self.config, seq_len
        d, f = c.d_model, c.ffn
        linear = 2 * s * (d * d + d * 3 * d + d * d + d * f + f * d + d * c.classes + d)  # inject_state..heads
        attention = 2 * 2 * s * s * d  # scores and weighted values over all S keys (the mask does not skip work)
        score = 2 * d                  # verifier head on the pooled state
        return linear + attention + score

    def encoding_flops(self, seq_len: int) -> int:
        """The embedding lookup (no FLOPs) and the problem projection, once per trajectory."""
        d = self.config.d_model
        return 2 * seq_len * d * d

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
