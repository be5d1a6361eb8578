"""`early:N[,batch=B,conf=C,depth=D]` — adaptive self-consistency: majority voting that stops sampling a
problem once its majority is settled.

Chains are drawn in batches of B (default 4), in chain order, up to N. After each batch the two most
frequent answers' counts a ≥ b decide: the majority is settled when, with p ~ Beta(a + 1, b + 1) (the
share of the top answer among the top two, uniform prior), P(p > 1/2) ≥ C (default 0.95) — the Beta
rule of Aggarwal et al. 2023, "Let's sample step by step". Chain w is the same attempt as chain w of
`parallel:N` (same key and seed), so the two plans share what they sample and compare on the same draws.
Latent reasoners sample trajectories of D iterations (default 1) and vote on their answers at D.

    >>> settled(["4", "4", "4", "4"], 0.95), settled(["4", "4", "4"], 0.95)
    (True, False)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from widthdepth.errors import WidthdepthError
from widthdepth.specs import Spec


@dataclass(frozen=True)
class EarlyPlan:
    samples: int
    batch: int = 4
    conf: float = 0.95
    depth: int = 1
    mode: str = "revise"
    """Only so that checks over every plan's mode read the same (early plans never extend)."""

    @property
    def spec(self) -> str:
        extra = "" if self.depth == 1 else f",depth={self.depth}"
        return f"early:{self.samples},batch={self.batch},conf={self.conf:g}{extra}"

    @property
    def rounds(self) -> int:
        return self.depth

    @property
    def attempts_per_problem(self) -> int:
        """At most N chains; the progress bar finishes a problem's share when it stops early."""
        return self.samples * self.depth

    def check_backend(self, info) -> None:  # noqa: ANN001 - backends.ModelInfo
        if self.depth > 1 and not info.latent:
            raise WidthdepthError(f"--plan {self.spec!r}: depth= is the iterations of a latent reasoner's "
                                  f"trajectories; {info.id} answers in one attempt per chain, drop depth=")

    def batches(self) -> list[range]:
        """Chains drawn by each batch, in order: [0, B), [B, 2B), ... up to N."""
        return [range(lo, min(lo + self.batch, self.samples)) for lo in range(0, self.samples, self.batch)]


def settled(answers: Sequence[str | None], conf: float) -> bool:
    """Is the majority of `answers` (None abstains) settled at confidence `conf` by the Beta rule?"""
    counts = sorted(Counter(a for a in answers if a is not None).values(), reverse=True) + [0, 0]
    return beta_above_half(counts[0] + 1, counts[1] + 1) >= conf


def beta_above_half(a: int, b: int) -> float:
    """P(X > 1/2) for X ~ Beta(a, b) with whole a, b ≥ 1: P(Binomial(a + b - 1, 1/2) ≤ a - 1).

    >>> beta_above_half(1, 1), beta_above_half(5, 1)
    (0.5, 0.96875)
    """
    n = a + b - 1
    return sum(math.comb(n, k) for k in range(a)) / 2 ** n


def parse_early(spec: Spec) -> EarlyPlan:
    spec.check_known({"batch", "conf", "depth"})
    if len(spec.args) != 1 or not spec.args[0].isdigit() or int(spec.args[0]) < 1:
        raise spec.error("expected early:N with N >= 1 the most chains per problem, e.g. early:16")
    samples = int(spec.args[0])
    if samples > 4096:
        raise spec.error(f"N={samples} is more than 4096")
    batch = spec.int_param("batch", min(4, samples), minimum=1, maximum=samples)
    depth = spec.int_param("depth", 1, minimum=1, maximum=64)
    raw = spec.params.get("conf", "0.95")
    try:
        conf = float(raw)
    except ValueError:
        raise spec.error(f"conf={raw!r} is not a number; give the confidence to stop at, e.g. conf=0.95") from None
    if not 0.5 < conf < 1:
        raise spec.error(f"conf={raw} must be between 0.5 and 1 (exclusive), e.g. conf=0.95")
    return EarlyPlan(samples, batch, conf, depth)
