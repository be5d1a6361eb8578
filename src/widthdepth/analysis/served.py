"""Served traffic as grid traces, labelled by the server's verifier (`widthdepth serve --verifier`).

Served problems have no gold answers. Where the server ran a verifier, each answer it saw can be
labelled by it: an answer counts as right when the mean verifier score of the attempts that gave it is
at least 0.5. A served problem's "gold" is then the set of answers its verifier accepted, and every
estimate built on traces — the surface, a fitted policy and its held-out judging — measures agreement
with that verifier, not correctness: a policy fitted on these labels learns where the verifier is
satisfied, and is exactly as good as the verifier.

Only requests that ran a grid plan once (n = 1) and finished are used; an experiment is one (model,
plan, sampling settings), its chains rebuilt by chain index and parent, as `traces` does for runs.

    traces = served_traces(Store.open("runs/served"))
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from widthdepth.analysis.traces import GridTrace, ProblemTrace, attach_verifications, sampling_of
from widthdepth.attempts import Attempt
from widthdepth.plans import is_grid, load_plan
from widthdepth.store import Store

ACCEPT = 0.5
"""An answer is accepted when the mean verifier score of the attempts that gave it reaches this."""


def served_traces(store: Store) -> list[GridTrace]:
    requests = [r for r in store.served_requests() if r["status"] == "ok" and r["n"] == 1 and is_grid(r["plan"])]
    groups: dict[tuple[str, str, str], list[list[list[Attempt]]]] = defaultdict(list)
    keys: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for request in requests:
        plan = load_plan(request["plan"])
        attempts = [a for a in store.attempts(problem_key=request["problem_key"], model=request["model"]) if not a.failed]
        chains = _chains(attempts, plan.chains, plan.rounds)
        if not chains[0]:
            continue
        experiment = (request["model"], plan.spec, json.dumps(sampling_of(chains[0][0].settings), sort_keys=True))
        if request["problem_key"] not in keys[experiment]:  # a request sent again (same seed) counts once
            groups[experiment].append(chains)
            keys[experiment].append(request["problem_key"])
    traces = []
    for (model, spec, sampling), problems in groups.items():
        info = store.model_info(model)
        rows = [ProblemTrace(key, i, frozenset(), {"family": "served"}, chains)
                for i, (key, chains) in enumerate(zip(keys[(model, spec, sampling)], problems))]
        trace = GridTrace(model, "served", load_plan(spec), 0, json.loads(sampling), rows,
                          info.n_params if info else 0, bool(info and info.shares_prompt_prefix),
                          expected_problems=len(rows))
        attach_verifications(store, trace)
        if trace.verifier is not None:
            trace.problems = [_labelled(p, trace) for p in trace.problems]
            traces.append(trace)
    return traces


def _chains(attempts: list[Attempt], chains: int, rounds: int) -> list[list[Attempt]]:
    """chains[w]: round 1 of chain w, then each round's child in the same chain (the earliest stored)."""
    ordered = sorted(attempts, key=lambda a: a.created_at)
    children: dict[str, list[Attempt]] = defaultdict(list)
    for a in ordered:
        if a.parent_key is not None:
            children[a.parent_key].append(a)
    out = []
    for w in range(chains):
        current = next((a for a in ordered if a.d == 1 and a.w == w), None)
        chain: list[Attempt] = []
        while current is not None and len(chain) < rounds:
            chain.append(current)
            current = next((c for c in children[current.key] if c.w == w and c.d == current.d + 1), None)
        out.append(chain)
    return out


def _labelled(problem: ProblemTrace, trace: GridTrace) -> ProblemTrace:
    scores: dict[str, list[float]] = defaultdict(list)
    for chain in problem.chains:
        for a in chain:
            checked = trace.verifications.get(a.key)
            if checked is not None and checked.score is not None and a.final_answer is not None:
                scores[a.final_answer].append(checked.score)
    gold = frozenset(answer for answer, s in scores.items() if np.mean(s) >= ACCEPT)
    return ProblemTrace(problem.key, problem.index, gold, problem.structure, problem.chains)
