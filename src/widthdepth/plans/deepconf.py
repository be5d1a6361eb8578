"""`deepconf:N[,warmup=W,keep=η]` — DeepConf online (Fu et al. 2025): per problem, W warm-up chains run
whole; the threshold is the (1 − η) quantile of their lowest group confidence (the lowest mean token
log-probability over a sliding window of CONFIDENCE_WINDOW tokens); the other N − W chains are
stopped as they decode, the moment their window falls under it. The answer is the vote of the chains
at or above the threshold, each weighted by exp(its lowest group confidence). η = 0.9 (default) keeps
most chains (DeepConf-high), η = 0.1 only the most confident (DeepConf-low).

The warm-up chains are `parallel:N`'s first W (stored once); the stopped chains' tokens are charged.
Needs a backend that sees its tokens' probabilities as it decodes (`llamacpp:`, `builtin:lm`).

    >>> from widthdepth.plans import load_plan
    >>> load_plan("deepconf:16")
    DeepConfPlan(samples=16, warmup=4, keep=0.9, mode='revise')
"""

from __future__ import annotations

from dataclasses import dataclass

from widthdepth.errors import WidthdepthError
from widthdepth.specs import Spec


@dataclass(frozen=True)
class DeepConfPlan:
    samples: int
    warmup: int
    keep: float = 0.9
    mode: str = "revise"
    """Only so that checks over every plan's mode read the same."""

    @property
    def spec(self) -> str:
        return f"deepconf:{self.samples},warmup={self.warmup},keep={self.keep:g}"

    @property
    def rounds(self) -> int:
        return 1

    @property
    def attempts_per_problem(self) -> int:
        return self.samples

    def check_backend(self, info) -> None:  # noqa: ANN001 - backends.ModelInfo
        if not info.stops_on_confidence:
            raise WidthdepthError(f"--plan {self.spec!r}: stopping a chain on its token confidence needs a backend "
                                  f"that sees its tokens' probabilities as it decodes (llamacpp:, builtin:lm); "
                                  f"{info.id} does not")


def parse_deepconf(spec: Spec) -> DeepConfPlan:
    spec.check_known({"warmup", "keep"})
    if len(spec.args) != 1 or not spec.args[0].isdigit() or not 2 <= int(spec.args[0]) <= 4096:
        raise spec.error("expected deepconf:N with N from 2 to 4096, e.g. deepconf:16")
    samples = int(spec.args[0])
    warmup = spec.int_param("warmup", max(2, samples // 4), minimum=1, maximum=samples - 1)
    raw = spec.params.get("keep", "0.9")
    try:
        keep = float(raw)
    except ValueError:
        raise spec.error(f"keep={raw!r} is not a number; give the share of chains to keep, e.g. keep=0.9") from None
    if not 0 < keep <= 1:
        raise spec.error(f"keep={raw} must be in (0, 1], e.g. keep=0.9 (DeepConf-high) or keep=0.1 (DeepConf-low)")
    return DeepConfPlan(samples, warmup, keep)
