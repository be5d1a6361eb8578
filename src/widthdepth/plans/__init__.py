"""Plans: how compute is spent on a problem.

    parallel:N              N independent attempts (grid:Nx1)
    sequential:D            one chain of D rounds (grid:1xD); sequential:D,mode=extend for budget forcing
    grid:NxD                N chains of D rounds; grid:NxD,mode=extend
    adaptive:POLICY@BUDGET  a probe, then the plan a fitted policy gives the problem's predicted difficulty
    early:N                 majority voting that stops sampling once the majority is settled
    beam:N,M  dvts:N,M  particles:N   search over partial solutions guided by a verifier (plans/search.py)
    refine:N,D              N chains that revise D - 1 times, each seeing the others' answers
    deepconf:N              DeepConf online: warm-up chains set a confidence floor that stops the others

Grid plans (parallel, sequential, grid) give a whole surface of cells; the others (methods) give one
point per problem — an answer and what it cost — that the report sets against the grid's frontier.

A new plan kind is one module plus one line in `PLANS`.

    >>> load_plan("parallel:8")
    GridPlan(chains=8, rounds=1, mode='revise')
"""

from __future__ import annotations

import re

from widthdepth.errors import WidthdepthError
from widthdepth.plans.grid import MODES, GridPlan
from widthdepth.specs import Spec, parse_spec

MAX_SIDE = 4096


def _count(spec: Spec, raw: str, what: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise spec.error(f"{what} must be a whole number >= 1, got {raw!r}")
    value = int(raw)
    if value > MAX_SIDE:
        raise spec.error(f"{what}={value} is more than {MAX_SIDE}")
    return value


def _mode(spec: Spec) -> str:
    spec.check_known({"mode"})
    mode = spec.params.get("mode", "revise")
    if mode not in MODES:
        raise spec.error(f"unknown mode {mode!r} (valid: {', '.join(MODES)})")
    return mode


def _one_arg(spec: Spec, example: str) -> str:
    if len(spec.args) != 1:
        raise spec.error(f"expected {example}")
    return spec.args[0]


def _parallel(spec: Spec) -> GridPlan:
    spec.check_known(set())
    return GridPlan(_count(spec, _one_arg(spec, "parallel:N, e.g. parallel:8"), "N"), 1)


def _sequential(spec: Spec) -> GridPlan:
    return GridPlan(1, _count(spec, _one_arg(spec, "sequential:D, e.g. sequential:4"), "D"), _mode(spec))


def _grid(spec: Spec) -> GridPlan:
    match = re.fullmatch(r"(\w+)x(\w+)", _one_arg(spec, "grid:NxD, e.g. grid:4x2"))
    if not match:
        raise spec.error("expected grid:NxD, e.g. grid:4x2")
    return GridPlan(_count(spec, match[1], "N"), _count(spec, match[2], "D"), _mode(spec))


PLANS = {
    "parallel": (_parallel, "N independent attempts: parallel:N"),
    "sequential": (_sequential, "one chain of D rounds: sequential:D[,mode=revise|extend]"),
    "grid": (_grid, "N chains of D rounds: grid:NxD[,mode=revise|extend]"),
    "adaptive": (lambda spec: _adaptive(spec), "per-problem plan from a policy (`allocate fit`): "
                                               "adaptive:POLICY.json@BUDGET"),
    "early": (lambda spec: _early(spec), "majority of up to N chains, stopping once it is settled: "
                                         "early:N[,batch=B,conf=0.95,depth=D]"),
}
PLANS.update({kind: (lambda spec: _search(spec), text) for kind, text in (
    ("beam", "beam search over steps (needs a partial-solution verifier): beam:N,M[,steps=S,step=line|blank|TEXT,tokens=T]"),
    ("dvts", "diverse verifier tree search, N/M subtrees of beam width M: dvts:N,M[,steps=S,step=...,tokens=T]"),
    ("particles", "particle filtering over steps, resampled by verifier scores: particles:N[,steps=S,step=...,tokens=T]"))})
PLANS["refine"] = (lambda spec: _refine(spec), "N chains revising with each other's answers in view, majority at "
                                                "round D: refine:N,D")
PLANS["deepconf"] = (lambda spec: _deepconf(spec), "DeepConf online, chains stopped when their token confidence "
                                                    "falls under a floor set by warm-up chains: "
                                                    "deepconf:N[,warmup=W,keep=0.9]")
GRID_KINDS = ("parallel", "sequential", "grid")


def _deepconf(spec: Spec):  # noqa: ANN202
    from widthdepth.plans.deepconf import parse_deepconf

    return parse_deepconf(spec)


def _refine(spec: Spec):  # noqa: ANN202
    from widthdepth.plans.refine import parse_refine

    return parse_refine(spec)


def _search(spec: Spec):  # noqa: ANN202
    from widthdepth.plans.search import load_search

    return load_search(spec)


def _early(spec: Spec):  # noqa: ANN202
    from widthdepth.plans.early import parse_early

    return parse_early(spec)


def _adaptive(spec: Spec):  # noqa: ANN202 - imported late: reading a policy file needs numpy
    from widthdepth.plans.adaptive import parse_adaptive

    return parse_adaptive(spec)


def is_grid(text: str) -> bool:
    """A plan whose attempts form one grid (parallel, sequential, grid)."""
    return parse_spec(text).name in GRID_KINDS


def is_method(text: str) -> bool:
    """A plan that is neither a grid nor a policy (early, search, refine, deepconf): one outcome per problem,
    whose uncertainty includes its sampling seed (`repeats`)."""
    return parse_spec(text).name not in (*GRID_KINDS, "adaptive")


def load_plan(text: str, option: str = "--plan"):  # noqa: ANN201 - GridPlan | AdaptivePlan | EarlyPlan
    spec = parse_spec(text, option=option)
    if spec.name not in PLANS:
        raise WidthdepthError(f"{option} {text!r}: unknown plan {spec.name!r} (valid: {', '.join(PLANS)})")
    return PLANS[spec.name][0](spec)


def short_plan(spec: str) -> str:
    """A plan's spec without the settings it has by default and without its step delimiter:
    "early:16,batch=4,conf=0.95,depth=8" -> "early:16,depth=8"."""
    name, _, rest = spec.partition(":")
    parts = [p for p in rest.split(",") if p and not p.startswith("step=")]
    try:
        defaults = set(load_plan(f"{name}:{','.join(p for p in parts if '=' not in p)}").spec.partition(":")[2].split(","))
    except Exception:  # noqa: BLE001 - a spec this code cannot parse again is shown whole
        return spec
    return f"{name}:{','.join(p for p in parts if '=' not in p or p not in defaults)}"


__all__ = ["PLANS", "GridPlan", "is_grid", "is_method", "load_plan", "short_plan"]
