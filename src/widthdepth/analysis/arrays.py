"""A grid trace as arrays — problems × chains × rounds — which is all the surface's estimators read.

Made two ways that give the same arrays: `read_arrays` straight from the store's rows, a problem at a
time and without building an `Attempt` per row (a million attempts take tens of megabytes, not
gigabytes), and `from_problems` from attempt objects (traces made in memory: served traffic, tests).
Chains are linked as `traces` links them: round 1 of chain w is the attempt with the seed the runner
gives that chain (the last stored where several qualify), round d+1 the first stored child of round d
with the plan's mode and the chain's seed.

    arrays = trace.arrays
    arrays.reached[:, :, d - 1]     # the chains that reached round d without a failure
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import groupby
from typing import Any

import numpy as np

from widthdepth.attempts import Verification, attempt_seed
from widthdepth.store_schema import unpack_time

SAMPLING_KEYS = ("max_tokens", "temperature", "top_p")


def sampling_of(settings_json: str) -> dict[str, Any]:
    """The sampling settings (what makes an experiment) of an attempt's settings JSON."""
    settings = json.loads(settings_json)
    return {k: settings.get(k) for k in SAMPLING_KEYS}
INTEGER_FIELDS = ("prompt_tokens", "completion_tokens", "serial_tokens", "verifier_tokens")
REAL_FIELDS = ("wall_seconds", "flops", "confidence", "score")


@dataclass
class TraceArrays:
    """Per (problem, chain, round); a chain's attempts at rounds it never reached are absent (`present`
    False) and hold zeros, NaN or -1."""

    keys: list[str]
    indices: list[int]
    gold: list[frozenset[str]]
    structures: list[dict[str, Any]]
    labels: list[str]
    """Answer id -> answer text."""
    answer: np.ndarray
    """int: the chain's final answer at the round (`Attempt.final_answer`) as an id; -1 none."""
    right: np.ndarray
    """bool: that answer is right: one of the problem's gold answers, or judged correct by the family's check
    when the attempt was stored (`correct` is that check of the final answer: ``checker=math`` equates
    ``0.3333333`` with ``\\frac{1}{3}`` though the strings differ)."""
    correct: np.ndarray
    """bool: the attempt's own `correct` (None counts as False)."""
    present: np.ndarray
    failed: np.ndarray
    verified: np.ndarray
    """bool: the trace's verifier scored the attempt."""
    prompt_tokens: np.ndarray
    completion_tokens: np.ndarray
    serial_tokens: np.ndarray
    verifier_tokens: np.ndarray
    """The verification's prompt and completion tokens (0 where none)."""
    wall_seconds: np.ndarray
    flops: np.ndarray
    """NaN where the backend reported none."""
    confidence: np.ndarray
    """NaN where the backend reported none."""
    score: np.ndarray
    """The verifier's score; NaN where there is none (no verification, or it gave no score)."""

    @cached_property
    def reached(self) -> np.ndarray:
        """bool (P, N, D): the chain reached the round, and no round up to it failed."""
        return np.logical_and.accumulate(self.present & ~self.failed, axis=2)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.answer.shape


class _Builder:
    """Fills a `TraceArrays` one attempt at a time."""

    def __init__(self, problems: list[tuple[str, int, frozenset[str], dict]], chains: int, rounds: int) -> None:
        self.problems = problems
        shape = (len(problems), chains, rounds)
        self.labels: dict[str, int] = {}
        self.values: dict[str, np.ndarray] = {
            "answer": np.full(shape, -1, dtype=np.int32),
            **{name: np.zeros(shape, dtype=bool) for name in ("right", "correct", "present", "failed", "verified")},
            **{name: np.zeros(shape, dtype=np.int64) for name in INTEGER_FIELDS},
            **{name: np.full(shape, math.nan) for name in REAL_FIELDS}}
        self.values["wall_seconds"][:] = 0.0

    def problem(self, p: int, placed: list[tuple[int, int, tuple]]) -> None:
        """Problem p's attempts, all at once: (chain, round from 1, values), the values being final_answer,
        correct, status, prompt_tokens, completion_tokens, serial_tokens, wall_seconds, flops, confidence."""
        if not placed:
            return
        at = (p, [w for w, _, _ in placed], [d - 1 for _, d, _ in placed])
        final, correct, status, prompt, completion, serial, wall, flops, confidence = zip(*(v for _, _, v in placed))
        gold, v = self.problems[p][2], self.values
        v["present"][at] = True
        v["failed"][at] = [s != "ok" for s in status]
        v["correct"][at] = [bool(c) for c in correct]
        v["answer"][at] = [-1 if a is None else self.labels.setdefault(a, len(self.labels)) for a in final]
        v["right"][at] = [a is not None and (a in gold or bool(c)) for a, c in zip(final, correct)]
        v["prompt_tokens"][at], v["completion_tokens"][at], v["serial_tokens"][at] = prompt, completion, serial
        v["wall_seconds"][at] = wall
        v["flops"][at] = [math.nan if f is None else f for f in flops]
        v["confidence"][at] = [math.nan if c is None else c for c in confidence]

    def build(self, keep: np.ndarray | None = None) -> TraceArrays:
        """The arrays, of the problems in `keep` (a boolean mask) only, if given."""
        rows = [i for i in range(len(self.problems)) if keep is None or keep[i]]
        values = {name: array[rows] for name, array in self.values.items()}
        return TraceArrays(keys=[self.problems[i][0] for i in rows], indices=[self.problems[i][1] for i in rows],
                           gold=[self.problems[i][2] for i in rows], structures=[self.problems[i][3] for i in rows],
                           labels=list(self.labels), **values)


def from_problems(problems: Iterable, verifications: dict[str, Verification], chains: int,
                  rounds: int) -> TraceArrays:
    """The arrays of a trace's `ProblemTrace`s (its attempt objects) and its verifier's verifications."""
    problems = list(problems)
    builder = _Builder([(p.key, p.index, p.gold, p.structure) for p in problems], chains, rounds)
    scores = _Scores((len(problems), chains, rounds))
    for i, problem in enumerate(problems):
        attempts = [(w, a) for w, chain in enumerate(problem.chains[:chains]) for a in chain[:rounds]]
        builder.problem(i, [(w, a.d, (a.final_answer, a.correct, a.status, a.prompt_tokens, a.completion_tokens,
                                      a.serial_tokens, a.wall_seconds, a.flops, a.confidence)) for w, a in attempts])
        for w, a in attempts:
            v = verifications.get(a.key)
            if v is not None:
                scores.add((i, w, a.d - 1), v.score, v.prompt_tokens, v.completion_tokens, v.created_at)
    scores.fill(builder)
    return builder.build()


# -- straight from the store ----------------------------------------------------------------------------

@dataclass
class StoredArrays:
    """`read_arrays`'s result: the arrays with the verifier whose scores they hold."""

    arrays: TraceArrays
    verifier: str | None


def read_arrays(rows: Iterator[tuple], problems: list[dict[str, Any]], mode: str, chains: int, rounds: int,
                seed: int, sampling: dict[str, Any], names: dict[int, str],
                settings: dict[int, str]) -> StoredArrays:
    """The arrays of one experiment from `rows` (one task's attempts with their verifications, a problem's
    together in order of round, chain and storing, as `Store.grid_rows` gives them, with `names` and
    `settings` the store's, by id) and the task's `problems` (store rows). Problems none of whose chains
    was stored are left out, as `traces` leaves them out."""
    index = {p["key"]: i for i, p in enumerate(problems)}
    builder = _Builder([(p["key"], p["idx"], frozenset(p["gold"]), p["structure"]) for p in problems], chains, rounds)
    matches: dict[int, bool] = {}  # settings id -> whether its sampling is the experiment's
    ids = {name: i for i, name in names.items()}
    modes = {ids.get(mode), ids.get("latent")} - {None}
    shape = (len(problems), chains, rounds)
    scores: dict[int, _Scores] = {}
    for problem_id, group in groupby(rows, key=lambda r: r[1]):
        problem_key = names[problem_id]
        if problem_key not in index:
            continue
        attempts: dict[int, tuple] = {}
        checks: list[tuple] = []
        for row in group:
            if row[7] not in matches:
                matches[row[7]] = sampling_of(settings[row[7]]) == sampling
            if matches[row[7]]:
                attempts.setdefault(row[0], row)
                if row[17] is not None:
                    checks.append(row)
        placed = _link(list(attempts.values()), problem_key, modes, chains, rounds, seed)
        p = index[problem_key]
        builder.problem(p, [(w, d, (*row[8:10], names[row[10]], *row[11:17])) for (w, d), row in placed.items()])
        at_of = {row[0]: (p, w, d - 1) for (w, d), row in placed.items()}
        for row in checks:
            if row[0] in at_of:
                if row[17] not in scores:
                    scores[row[17]] = _Scores(shape)
                scores[row[17]].add(at_of[row[0]], *row[18:22])
    verifier = None
    if scores:  # the verifier that scored the most of the trace's attempts; between equals, the latest to score
        chosen = max(scores, key=lambda i: (scores[i].count, scores[i].latest, names[i]))
        verifier = names[chosen]
        scores[chosen].fill(builder)
    return StoredArrays(builder.build(builder.values["present"][:, :, 0].any(axis=1)), verifier)


class _Scores:
    """One verifier's scores of a trace's attempts, as arrays."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.verified = np.zeros(shape, dtype=bool)
        self.score = np.full(shape, math.nan)
        self.tokens = np.zeros(shape, dtype=np.int64)
        self.count, self.stamps = 0, {int: -1, str: ""}  # latest verification time: as stored / as text

    def add(self, at: tuple[int, int, int], score: float | None, prompt_tokens: int, completion_tokens: int,
            created_at: int | str) -> None:
        """One verification; `created_at` as `Verification` has it, or as the store keeps it (`pack_time`)."""
        self.verified[at] = True
        self.tokens[at] = prompt_tokens + completion_tokens
        if score is not None:
            self.score[at] = score
        self.count += 1
        kind = type(created_at)
        self.stamps[kind] = max(self.stamps[kind], created_at)

    @property
    def latest(self) -> str:
        """When the last of these was made (ISO text; stored milliseconds read as `unpack_time` reads them)."""
        return max(self.stamps[str], unpack_time(self.stamps[int]) if self.stamps[int] >= 0 else "")

    def fill(self, builder: _Builder) -> None:
        """Make these the scores the built arrays hold."""
        builder.values.update(verified=self.verified, score=self.score, verifier_tokens=self.tokens)


def _link(attempts: list[tuple], problem_key: str, modes: set, chains: int, rounds: int,
          seed: int) -> dict[tuple[int, int], tuple]:
    """(chain, round) -> the attempt row that is that chain's round, for one problem's rows in store order
    (`modes`: those a later round may have)."""
    placed: dict[tuple[int, int], tuple] = {}
    first_seed: dict[int, int] = {}  # round -> chain 0's seed (chain w draws with it + w)

    def chain_seed(d: int, w: int) -> int:
        if d not in first_seed:
            first_seed[d] = attempt_seed(seed, problem_key, d, 0)
        return first_seed[d] + w

    for row in attempts:  # round 1: the last stored with the chain's seed
        w, d = row[2], row[3]
        if d == 1 and w < chains and row[6] == chain_seed(1, w):
            placed[(w, 1)] = row
    for row in attempts:  # rounds in order, so a parent is placed before its children: the first child wins
        w, d, parent = row[2], row[3], row[5]
        if (d < 2 or d > rounds or w >= chains or parent is None or row[4] not in modes
                or (w, d) in placed):
            continue
        before = placed.get((w, d - 1))
        if before is not None and before[0] == parent and row[6] == chain_seed(d, w):
            placed[(w, d)] = row
    return placed
