"""The compact store (migration 009): a store written before it is converted in place and reads back
exactly as it was written, through `Store` and through the `attempts`/`verifications` views; the writer
keeps ids stable and its caches honest; a generated latent store takes at most 250 bytes an attempt."""

from __future__ import annotations

import os
import random
import sqlite3
from itertools import groupby

import pytest

from widthdepth.attempts import Attempt, Verification
from widthdepth.specs import stable_hash
from widthdepth.store import DB_NAME, MIGRATIONS, Store, now
from widthdepth.store_schema import (EPOCH, MILLISECOND, apply_migration, hex_sql, iso_sql, pack_key, pack_time,
                                     unpack_time)

LONG = "Solve the puzzle below, showing every step. " * 40


def attempt(key: str, w: int = 0, d: int = 1, parent: str | None = None, status: str = "ok", prompt: str = "2+2?",
            prompt_key: str | None = None, problem: str = "chain:L=1#0", **fields) -> Attempt:
    values = dict(key=key, model="mock:", task="chain:L=1", problem_key=problem, w=w, d=d,
                  mode="" if d == 1 else "revise", parent_key=parent, seed=1000 + 10 * d + w, prompt=prompt,
                  prompt_key=stable_hash(prompt) if prompt_key is None else prompt_key,
                  settings='{"max_tokens": 64, "stop": [], "temperature": 0.7, "top_p": 0.95}',
                  text="" if status != "ok" else f"step {d}: Answer: 4", answer=None if status != "ok" else "4",
                  final_answer=None if status != "ok" else "4", correct=None if status != "ok" else True,
                  finish_reason="error" if status != "ok" else "stop", status=status,
                  error="timeout" if status != "ok" else None, prompt_tokens=12, completion_tokens=7,
                  serial_tokens=7 * d, wall_seconds=0.125 + w, created_at=now(), flops=None if w else 867072.0,
                  confidence=-0.001299 if w else None, lowest_confidence=None)
    return Attempt(**{**values, **fields})


def written() -> tuple[list[Attempt], list[Verification]]:
    """What a store before 009 held: a chain linked by parent keys, a failure, text attempts sharing a long
    prompt, keys that are not hex (parents never stored, one that looks like a row id), two prompts under
    one prompt_key, a created_at not written by `now`, and verifications (one of an attempt not stored)."""
    keys = [stable_hash("attempt", i) for i in range(6)]
    chain = [attempt(keys[0]), attempt(keys[1], d=2, parent=keys[0]), attempt(keys[2], d=3, parent=keys[1])]
    text = [attempt(keys[3], w=1, prompt=LONG), attempt(keys[4], w=2, prompt=LONG, problem="chain:L=1#1")]
    odd = [attempt(keys[5], w=3, status="failed"), attempt("k1", w=4, parent="k0", created_at="2026-01-01"),
           attempt("1", w=5, parent="3", prompt="another prompt", prompt_key=stable_hash("2+2?"), model="other:"),
           attempt("2", w=6, parent=keys[2], created_at="2026-12-02T16:48:29.925000+00:00")]
    checks = [Verification(keys[1], "self:mock:", 0.75, "yes", 30, 2, LONG + " Is it right?", "Yes.", 0.5, now()),
              Verification(keys[2], "exact", 1.0, "scored", 0, 0, "", "", 0.0, now()),
              Verification(stable_hash("never stored"), "exact", None, "no answer", 0, 0, "", "", 0.0, "later")]
    return chain + text + odd, checks


def store_at_008(folder, attempts: list[Attempt], verifications: list[Verification]) -> sqlite3.Connection:
    """A store as widthdepth wrote it before 009: its first eight migrations, rows inserted with the old SQL."""
    folder.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    db.execute("BEGIN")
    db.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    for name, migrate in MIGRATIONS[:8]:
        apply_migration(db, migrate)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now()))
    for table, rows in (("attempts", [a.to_row() for a in attempts]),
                        ("verifications", [v.to_row() for v in verifications])):
        for row in rows:
            marks = ", ".join("?" for _ in row)
            db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))
    db.execute("COMMIT")
    db.row_factory = sqlite3.Row
    return db


def plain_rows(db: sqlite3.Connection) -> dict[str, list[tuple]]:
    return {table: [tuple(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY {order}")]
            for table, order in (("attempts", "key"), ("verifications", "attempt_key, verifier"))}


def test_a_store_before_009_is_converted_in_place_and_reads_back_as_written(tmp_path):
    attempts, verifications = written()
    db = store_at_008(tmp_path, attempts, verifications)
    before_rows = plain_rows(db)
    before_snapshot = Store(db, tmp_path / DB_NAME).snapshot()  # what Store.snapshot gave before 009
    columns = {t: [c[1] for c in db.execute(f"PRAGMA table_info({t})")] for t in ("attempts", "verifications")}
    db.close()

    store = Store.open(tmp_path)
    assert store.snapshot() == before_snapshot
    assert plain_rows(store.db) == before_rows  # every column, timing included, as `SELECT *` shows it
    assert store.db.execute("PRAGMA freelist_count").fetchone()[0] == 0  # vacuumed: the old tables' pages given back
    kinds = dict(store.db.execute("SELECT name, type FROM sqlite_schema WHERE name IN ('attempts', 'verifications')"))
    assert kinds == {"attempts": "view", "verifications": "view"}
    assert [name for name, _ in store.columns("attempts")] == columns["attempts"]
    assert [name for name, _ in store.columns("verifications")] == columns["verifications"]
    for a in attempts:
        assert store.get_attempt(a.key) == a
    for v in verifications:
        assert store.get_verification(v.attempt_key, v.verifier) == v
    mock = sorted((a for a in attempts if a.model == "mock:"), key=lambda a: (a.problem_key, a.d, a.w))
    assert list(store.attempts(model="mock:", task="chain:L=1")) == mock
    assert list(store.attempts(status="failed")) == [attempts[5]]
    assert list(store.attempts(parent_key="k0")) == [attempts[6]]
    assert list(store.attempts(model="nobody:")) == []
    assert store.counts()["attempts"] == len(attempts) and store.counts()["verifications"] == len(verifications)
    assert store.db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0] == 3  # 2+2?, LONG, the odd one: once each
    store.close()


def test_iso_times_read_back_exactly_in_sql():
    rng = random.Random(0)
    stamps = [(EPOCH + ms * MILLISECOND).isoformat(timespec="milliseconds")
              for ms in [0, 999, 1000, 951_782_400_000, 253_402_300_799_999]
              + [rng.randrange(0, 2**42) for _ in range(300)]]
    db = sqlite3.connect(":memory:")
    for stamp in stamps + [now()]:
        packed = pack_time(stamp)
        assert isinstance(packed, int)
        assert db.execute(f"SELECT {iso_sql('?1')}", (packed,)).fetchone()[0] == stamp
    for odd in ["2026-01-01", "later", "2026-12-02T16:48:29.925+01:00", "2026-12-02T16:48:29.925000+00:00"]:
        assert pack_time(odd) == odd
    assert pack_key("ab" * 32) == bytes([0xAB] * 32) and pack_key("AB" * 32) == "AB" * 32 and pack_key("k1") == "k1"


def test_a_later_try_updates_a_failure_in_place_and_a_success_is_kept(tmp_path):
    store = Store.open(tmp_path)
    parent, child = stable_hash("parent"), stable_hash("child")
    store.put_attempt(attempt(parent, status="failed"))
    row_id = store.db.execute("SELECT id FROM attempt_rows").fetchone()[0]
    store.put_tree([attempt(child, d=2, parent=parent)], [])
    store.put_attempt(attempt(parent, text="now it worked"))
    store.put_attempt(attempt(parent, text="never stored: the success stays"))
    assert store.db.execute("SELECT id FROM attempt_rows WHERE key = ?", (pack_key(parent),)).fetchone()[0] == row_id
    assert store.get_attempt(parent).text == "now it worked"
    assert store.get_attempt(child).parent_key == parent


def test_chains_share_a_prompt_and_a_prompt_key_held_by_another_prompt_reads_back(tmp_path):
    store = Store.open(tmp_path)
    chains = [attempt(stable_hash("chain", w), w=w, prompt=LONG) for w in range(4)]
    odd = attempt(stable_hash("odd"), w=5, prompt="not LONG", prompt_key=stable_hash(LONG))
    store.put_tree(chains + [odd], [])
    assert [store.get_attempt(a.key) for a in chains + [odd]] == chains + [odd]
    assert store.db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0] == 2


def test_a_rolled_back_write_leaves_no_stale_id_behind(tmp_path):
    store = Store.open(tmp_path)
    broken = attempt(stable_hash("a"), model="new:", task="new-task", text=None)  # NOT NULL: the write fails
    with pytest.raises(sqlite3.IntegrityError):
        store.put_tree([broken], [])
    whole = attempt(stable_hash("a"), model="new:", task="new-task")
    store.put_tree([whole], [Verification(whole.key, "judge", 0.5, "scored", 0, 0, "", "", 0.0, now())])
    assert store.get_attempt(whole.key) == whole
    assert list(store.attempts(model="new:")) == [whole]


def test_a_verification_before_its_attempt_and_deleting_through_the_view(tmp_path):
    store = Store.open(tmp_path)
    first, second = stable_hash("first"), stable_hash("second")
    check = Verification(first, "judge", 0.5, "scored", 0, 0, "", "", 0.0, now())
    store.put_verification(check)
    store.put_tree([attempt(first), attempt(second, d=2, parent=first)], [check])
    assert store.get_verification(first, "judge") == check
    assert [tuple(r) for r in store.db.execute("SELECT typeof(attempt_id) FROM verification_rows")] == [("integer",)]
    with store.db:
        store.db.execute("DELETE FROM attempts WHERE key = ?", (first,))
    assert store.get_attempt(first) is None and store.get_attempt(second).parent_key == first
    assert store.get_verification(first, "judge") == check  # kept, as a table before 009 kept it
    store.put_attempt(attempt(first))
    assert store.get_attempt(first) == attempt(first, created_at=store.get_attempt(first).created_at)
    assert len(store.db.execute("SELECT * FROM verifications").fetchall()) == 1
    # the child holds the parent's key while it is gone; stored again, grid_rows finds its new row
    rows = list(store.grid_rows("mock:", "chain:L=1"))
    assert [r[5] for r in rows if r[3] == 2] == [r[0] for r in rows if r[3] == 1]
    assert _as_view(store, rows) == [tuple(r) for r in store.db.execute(VIEW_GRID_ROWS, ("mock:", "chain:L=1"))]


VIEW_GRID_ROWS = """
    SELECT a.key, a.problem_key, a.w, a.d, a.mode, a.parent_key, a.seed, a.settings, a.final_answer, a.correct,
           a.status, a.prompt_tokens, a.completion_tokens, a.serial_tokens, a.wall_seconds, a.flops, a.confidence,
           v.verifier, v.score, v.prompt_tokens, v.completion_tokens, v.created_at
    FROM attempts a LEFT JOIN verifications v ON v.attempt_key = a.key
    WHERE a.model = ? AND a.task = ? ORDER BY a.problem_key, a.d, a.w, v.verifier"""


def _as_view(store: Store, rows) -> list[tuple]:
    """`grid_rows`'s stored values (ids, packed keys and times) as the views show them."""
    names, settings = store.names(), store.settings_json()
    keys = dict(store.db.execute(f"SELECT id, {hex_sql('key')} FROM attempt_rows").fetchall())

    def key(value):
        return keys[value] if isinstance(value, int) else value.hex() if isinstance(value, bytes) else value

    return [(key(r[0]), names[r[1]], *r[2:4], names[r[4]], None if r[5] is None else key(r[5]), r[6],
             settings[r[7]], *r[8:10], names[r[10]], *r[11:17], None if r[17] is None else names[r[17]],
             *r[18:21], None if r[21] is None else unpack_time(r[21])) for r in rows]


def test_a_generated_latent_store_takes_at_most_250_bytes_an_attempt(tmp_path):
    """... and `grid_rows`, `verifications_of` read from the tables what the views show."""
    from widthdepth.config import RunConfig
    from widthdepth.runner import run

    out = tmp_path / "latent"
    run(RunConfig(model="builtin:reasoner", tasks=["chain:L=2", "search:kind=subset,n=6"], plans=["grid:16x8"],
                  problems=40, seed=1, out=str(out)))
    store = Store.open(out)
    counts = store.counts()
    assert counts["attempts"] >= 10_000 and counts["verifications"] == counts["attempts"]
    model, task = store.db.execute("SELECT model, task FROM attempts LIMIT 1").fetchone()
    through_views = [tuple(r) for r in store.db.execute(VIEW_GRID_ROWS, (model, task))]
    read = _as_view(store, store.grid_rows(model, task, chunk=999))
    assert sorted(read, key=repr) == sorted(through_views, key=repr)
    runs = [(key, [row[2:4] for row in rows]) for key, rows in groupby(read, key=lambda row: row[1])]
    assert len(runs) == len({key for key, _ in runs})  # each problem's rows together ...
    assert all(rounds == sorted(rounds, key=lambda wd: (wd[1], wd[0])) for _, rounds in runs)  # by round, chain
    keys = [a.key for a in store.attempts(model=model, task=task)][::7] + [stable_hash("never stored")]
    marks = ", ".join("?" for _ in keys)
    rows = store.db.execute(f"SELECT * FROM verifications WHERE attempt_key IN ({marks})", keys)
    assert sorted(store.verifications_of(keys), key=repr) == sorted((Verification(*r) for r in rows), key=repr)
    store.db.execute("VACUUM")
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    assert os.path.getsize(out / DB_NAME) / counts["attempts"] <= 250


def test_two_grid_readers_at_once_keep_their_own_seeds(tmp_path):
    """`grid_rows` with `chain_seed` filters in SQL through a function of its own: a second reader started
    while the first is still reading does not change what the first reads."""
    store = Store.open(tmp_path)
    for base in (1000, 2000):
        store.put_tree([attempt(stable_hash(base, w), w=w, seed=base + w) for w in range(4)], [])
    first = store.grid_rows("mock:", "chain:L=1", chain_seed=lambda problem, d: 1000, chunk=1)
    head = next(first)
    second = list(store.grid_rows("mock:", "chain:L=1", chain_seed=lambda problem, d: 2000))
    assert [r[6] for r in second] == [2000, 2001, 2002, 2003]
    assert [head[6], *(r[6] for r in first)] == [1000, 1001, 1002, 1003]
