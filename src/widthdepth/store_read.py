"""What the store holds of a model on some problems, read from the compact tables (`store_schema`)
directly: the same `Attempt`s and `Verification`s as `Store.attempts(model=, problem_key=)` and
`Store.verifications_of`, without the views' joins and SQL formatting per row (a few times faster:
a chunk's prefetch on Ray reads back every attempt its problems hold, issue 19).

    attempts, verifications = problem_rows(store, "builtin:reasoner@...", ["1f3a...", ...])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from widthdepth.attempts import Attempt, Verification
from widthdepth.store import Store
from widthdepth.store_schema import pack_key, unpack_time

_ATTEMPT = ("id", "key", "task_id", "problem_id", "w", "d", "mode_id", "parent_id", "seed", "prompt_id", "settings_id",
            "text", "answer", "final_answer", "correct", "finish_reason_id", "status_id", "error", "prompt_tokens",
            "completion_tokens", "serial_tokens", "wall_seconds", "created_at", "flops", "confidence",
            "lowest_confidence")
_VERIFICATION = ("attempt_id", "verifier_id", "score", "verdict_id", "prompt_tokens", "completion_tokens", "prompt",
                 "text", "wall_seconds", "created_at")
PART = 400
"""Values per `IN (...)` (SQLite's default limit on variables is far above)."""


def problem_rows(store: Store, model: str, problem_keys: Iterable[str]) -> tuple[list[Attempt], list[Verification]]:
    """The attempts of `model` on these problems (ordered as `Store.attempts` orders them) and their
    verifications by any verifier."""
    db, model_id = store.db, store.ids.known(model)
    problem_ids = sorted({i for i in (store.ids.known(k) for k in problem_keys) if i is not None})
    if model_id is None or not problem_ids:
        return [], []
    rows = sorted((row for part in _parts(problem_ids) for row in _tuples(
        db, f"SELECT {', '.join(_ATTEMPT)} FROM attempt_rows WHERE model_id = ? AND problem_id IN ({_marks(part)})",
        [model_id, *part])), key=lambda row: row[0])
    keys = {row[0]: _hex(row[1]) for row in rows}
    names = _lookup(db, "SELECT id, name FROM names WHERE id IN ({})",
                    {v for row in rows for v in (row[2], row[3], row[6], row[15], row[16])})
    settings = _lookup(db, "SELECT id, json FROM settings WHERE id IN ({})", {row[10] for row in rows})
    prompts = {i: (prompt, _hex(key) if key is not None else odd) for i, key, odd, prompt in _fetch(
        db, "SELECT id, key, odd_key, prompt FROM prompts WHERE id IN ({})", {row[9] for row in rows})}
    attempts = [_attempt(row, model, keys, names, settings, prompts, store) for row in rows]
    attempts.sort(key=lambda a: (a.problem_key, a.d, a.w))  # stable: then by storing, as the view's a.id
    ids = list(keys)
    query = f"SELECT {', '.join(_VERIFICATION)} FROM verification_rows WHERE attempt_id IN ({{}})"
    packed = [pack_key(key) for key in keys.values()]  # and of verifications stored before their attempt
    stored = [v for values in (ids, packed) for part in _parts(values) for v in _tuples(db, query.format(_marks(part)),
                                                                                        part)]
    names.update(_lookup(db, "SELECT id, name FROM names WHERE id IN ({})",
                         {v for row in stored for v in (row[1], row[3])} - names.keys()))
    verifications = [Verification(keys[v[0]] if isinstance(v[0], int) else _hex(v[0]), names[v[1]], v[2], names[v[3]],
                                  v[4], v[5], v[6], v[7], v[8], unpack_time(v[9])) for v in stored]
    return attempts, verifications


def _attempt(row: tuple, model: str, keys: dict[int, str], names: dict[int, str], settings: dict[int, str],
             prompts: dict[int, tuple[str, str]], store: Store) -> Attempt:
    (_, key, task, problem, w, d, mode, parent, seed, prompt, setting, text, answer, final, correct, finish, status,
     error, prompt_tokens, completion_tokens, serial, wall, created, flops, confidence, lowest) = row
    if isinstance(parent, int):
        parent = keys.get(parent) or _hex(store.db.execute("SELECT key FROM attempt_rows WHERE id = ?",
                                                           (parent,)).fetchone()[0])
    elif parent is not None:
        parent = _hex(parent)  # a parent never stored: its key
    return Attempt(_hex(key), model, names[task], names[problem], w, d, names[mode], parent, seed, prompts[prompt][0],
                   prompts[prompt][1], settings[setting], text, answer, final,
                   None if correct is None else bool(correct), names[finish], names[status], error, prompt_tokens,
                   completion_tokens, serial, wall, unpack_time(created), flops, confidence, lowest)


def _hex(key: Any) -> Any:
    return key.hex() if isinstance(key, bytes) else key


def _parts(values: list) -> Iterable[list]:
    return (values[start:start + PART] for start in range(0, len(values), PART))


def _marks(part: list) -> str:
    return ", ".join("?" for _ in part)


def _tuples(db: Any, query: str, args: list) -> Any:
    cursor = db.execute(query, args)
    cursor.row_factory = None  # plain tuples: a `sqlite3.Row` per row costs more than the rest
    return cursor


def _fetch(db: Any, query: str, ids: set) -> list[tuple]:
    values = sorted(ids)
    return [row for part in _parts(values) for row in _tuples(db, query.format(_marks(part)), part)]


def _lookup(db: Any, query: str, ids: set) -> dict[int, str]:
    return {i: value for i, value in _fetch(db, query, ids)}
