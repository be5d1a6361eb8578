"""The store's schema: the named, append-only `MIGRATIONS` (never edit an old one; add the next), and
how the compact tables of `009_compact` encode what they hold.

Since 009 an attempt row (`attempt_rows`) keeps what repeats across attempts once, referenced by integer
id: model ids, task specs, problem keys, verifier names and the short labels (mode, finish_reason, status,
verdict) in `names`, prompts in `prompts` (one row per prompt_key, so the N chains of a round share one
text), sampling settings in `settings`. Its 64-hex key is a 32-byte BLOB (unique index), its parent the
parent row's id, its created_at integer milliseconds since the epoch; a verification (`verification_rows`)
is keyed by (attempt row id, verifier name id). Views named `attempts` and `verifications` show the rows
exactly as the tables before 009 held them, so readers that `SELECT * FROM attempts` see no change (and
`DELETE FROM attempts WHERE ...` still deletes); `Store` reads the tables themselves, which is faster.

    from widthdepth.store_schema import MIGRATIONS, pack_key
    pack_key("ab" * 32)  # -> 32 bytes; any other string is kept as it is
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import lru_cache

def _m001_initial(db: _Statements) -> None:
    db.executescript("""
        CREATE TABLE models (
            id TEXT PRIMARY KEY, n_params INTEGER NOT NULL, prompt_style TEXT NOT NULL,
            shares_prompt_prefix INTEGER NOT NULL, supports_raw_continuation INTEGER NOT NULL,
            context_length INTEGER NOT NULL, description TEXT NOT NULL);
        CREATE TABLE problems (
            key TEXT PRIMARY KEY, task TEXT NOT NULL, idx INTEGER NOT NULL, question TEXT NOT NULL,
            gold TEXT NOT NULL, structure TEXT NOT NULL);
        CREATE TABLE attempts (
            key TEXT PRIMARY KEY, model TEXT NOT NULL, task TEXT NOT NULL, problem_key TEXT NOT NULL,
            w INTEGER NOT NULL, d INTEGER NOT NULL, mode TEXT NOT NULL, parent_key TEXT, seed INTEGER NOT NULL,
            prompt TEXT NOT NULL, prompt_key TEXT NOT NULL, settings TEXT NOT NULL, text TEXT NOT NULL,
            answer TEXT, final_answer TEXT, correct INTEGER, finish_reason TEXT NOT NULL, status TEXT NOT NULL,
            error TEXT, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
            serial_tokens INTEGER NOT NULL, wall_seconds REAL NOT NULL, created_at TEXT NOT NULL);
        CREATE INDEX attempts_by_problem ON attempts (model, problem_key, d, w);
        CREATE TABLE verifications (
            attempt_key TEXT NOT NULL, verifier TEXT NOT NULL, score REAL, verdict TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, prompt TEXT NOT NULL,
            text TEXT NOT NULL, wall_seconds REAL NOT NULL, created_at TEXT NOT NULL,
            PRIMARY KEY (attempt_key, verifier));
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT NOT NULL, finished_at TEXT,
            config TEXT NOT NULL);
    """)


def _m002_run_specs(db: _Statements) -> None:
    # The canonical model id, task specs and plan specs of a run, so the analysis can find its
    # traces without re-reading the user's files (jsonl) or re-parsing what they typed.
    db.executescript("""
        ALTER TABLE runs ADD COLUMN model TEXT;
        ALTER TABLE runs ADD COLUMN task_specs TEXT;
        ALTER TABLE runs ADD COLUMN plan_specs TEXT;
    """)


def _m003_latent(db: _Statements) -> None:
    # Latent reasoners: exact FLOPs per attempt (NULL: derived from tokens, see cost.py), and the
    # models table says which models are latent.
    db.executescript("""
        ALTER TABLE attempts ADD COLUMN flops REAL;
        ALTER TABLE models ADD COLUMN latent INTEGER NOT NULL DEFAULT 0;
    """)


def _m004_allocation(db: _Statements) -> None:
    # The model's confidence per attempt (a difficulty predictor), and what an adaptive plan decided
    # for each problem: its probe's predictor value and bin, the plan it chose, the answer and cost.
    db.executescript("""
        ALTER TABLE attempts ADD COLUMN confidence REAL;
        CREATE TABLE allocations (
            run_key TEXT NOT NULL, problem_key TEXT NOT NULL, task TEXT NOT NULL, model TEXT NOT NULL,
            plan TEXT NOT NULL, predictor TEXT NOT NULL, predicted REAL, bin INTEGER NOT NULL,
            w INTEGER NOT NULL, d INTEGER NOT NULL, aggregator TEXT NOT NULL, answer TEXT, correct INTEGER,
            cost REAL NOT NULL, unit TEXT NOT NULL, created_at TEXT NOT NULL,
            PRIMARY KEY (run_key, problem_key)
        );
    """)


def _m005_methods(db: _Statements) -> None:
    # Methods (plans that are not grids: early stopping, search): one point per problem and run — the
    # answer, whether it is right and all it cost (a JSON of `cost.Cost`) — with what identifies the
    # experiment it belongs beside (model, task, seed, sampling settings), so the report finds its grid.
    db.executescript("""
        CREATE TABLE method_points (
            run_key TEXT NOT NULL, problem_key TEXT NOT NULL, model TEXT NOT NULL, task TEXT NOT NULL,
            plan TEXT NOT NULL, seed INTEGER NOT NULL, sampling TEXT NOT NULL, verifier TEXT,
            answer TEXT, correct INTEGER NOT NULL, cost TEXT NOT NULL, attempts INTEGER NOT NULL,
            detail TEXT NOT NULL, wall_seconds REAL NOT NULL, created_at TEXT NOT NULL,
            PRIMARY KEY (run_key, problem_key)
        );
    """)


def _m006_lowest_confidence(db: _Statements) -> None:
    # DeepConf: the lowest mean token log-probability over a sliding window of each attempt (NULL where
    # the backend does not report it), which calibrates and judges early-stopped traces.
    db.executescript("ALTER TABLE attempts ADD COLUMN lowest_confidence REAL;")


def _m007_method_repeats(db: _Statements) -> None:
    # A method run R times on the same problems (`RunConfig.repeats`): which run a point belongs to (0:
    # the run's own seed; its run_key already tells repeats apart).
    db.executescript("ALTER TABLE method_points ADD COLUMN repeat INTEGER NOT NULL DEFAULT 0;")


def _m008_served_requests(db: _Statements) -> None:
    # `widthdepth serve`: one row per request (its attempts are in `attempts`, its problem in `problems`):
    # the plan it ran, how it ended (ok | cancelled | failed), its latency, answer, agreement and usage.
    db.executescript("""
        CREATE TABLE served_requests (
            id TEXT PRIMARY KEY, problem_key TEXT NOT NULL, model TEXT NOT NULL, endpoint TEXT NOT NULL,
            plan TEXT NOT NULL, n INTEGER NOT NULL, status TEXT NOT NULL, received_at TEXT NOT NULL,
            seconds REAL NOT NULL, answer TEXT, agreement REAL, usage TEXT NOT NULL
        );
    """)


# -- 009: the compact tables ----------------------------------------------------------------------------
# What a compact row holds that is not the value itself: a key that is 64 lowercase hex characters is its
# 32 bytes (any other key, a test's "k1", is kept as text); a created_at that `store.now()` wrote is integer
# milliseconds since the epoch (any other string is kept as it is). Columns that may hold either have no
# declared type, so SQLite converts neither. The SQL below turns them back into exactly what was written.

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MILLISECOND = timedelta(milliseconds=1)


def pack_key(key: str | None) -> bytes | str | None:
    """A 64-character lowercase hex key as its 32 bytes; any other key as it is."""
    if key is not None and len(key) == 64:
        try:
            packed = bytes.fromhex(key)
        except ValueError:
            return key
        if packed.hex() == key:  # fromhex also takes upper case and spaces: keep only what reads back the same
            return packed
    return key


@lru_cache(maxsize=4096)  # the attempts of one chunk share their created_at
def pack_time(stamp: str) -> int | str:
    """An ISO time as `store.now()` writes it (UTC, milliseconds: '2026-12-02T16:48:29.925+00:00') as
    integer milliseconds since the epoch; any other string as it is."""
    try:
        moment = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return stamp
    if moment.utcoffset() != timedelta(0):
        return stamp
    ms = (moment - EPOCH) // MILLISECOND
    if ms < 0 or (EPOCH + ms * MILLISECOND).isoformat(timespec="milliseconds") != stamp:
        return stamp
    return ms


def hex_sql(column: str) -> str:
    """SQL reading a `pack_key` column back as the key that was written."""
    return f"CASE typeof({column}) WHEN 'blob' THEN lower(hex({column})) ELSE {column} END"


def iso_sql(column: str) -> str:
    """SQL reading a `pack_time` column back as the string that was written."""
    return (f"CASE typeof({column}) WHEN 'integer' THEN strftime('%Y-%m-%dT%H:%M:%S', {column} / 1000, 'unixepoch')"
            f" || printf('.%03d+00:00', {column} % 1000) ELSE {column} END")


ATTEMPT_FROM = """attempt_rows a JOIN names m ON m.id = a.model_id JOIN names t ON t.id = a.task_id
    JOIN names pb ON pb.id = a.problem_id JOIN prompts p ON p.id = a.prompt_id JOIN settings s ON s.id = a.settings_id
    JOIN names mo ON mo.id = a.mode_id JOIN names fr ON fr.id = a.finish_reason_id JOIN names st ON st.id = a.status_id
    LEFT JOIN attempt_rows par ON par.id = a.parent_id AND typeof(a.parent_id) = 'integer'"""
"""The compact attempt rows joined to what they reference (the parent's id, where its row was stored)."""

ATTEMPT_COLUMNS = (
    ("key", "TEXT", hex_sql("a.key")), ("model", "TEXT", "m.name"), ("task", "TEXT", "t.name"),
    ("problem_key", "TEXT", "pb.name"), ("w", "INTEGER", "a.w"), ("d", "INTEGER", "a.d"), ("mode", "TEXT", "mo.name"),
    ("parent_key", "TEXT", f"CASE WHEN par.id IS NULL THEN {hex_sql('a.parent_id')} ELSE {hex_sql('par.key')} END"),
    ("seed", "INTEGER", "a.seed"), ("prompt", "TEXT", "p.prompt"),
    ("prompt_key", "TEXT", f"coalesce({hex_sql('p.key')}, p.odd_key)"), ("settings", "TEXT", "s.json"),
    ("text", "TEXT", "a.text"), ("answer", "TEXT", "a.answer"), ("final_answer", "TEXT", "a.final_answer"),
    ("correct", "INTEGER", "a.correct"), ("finish_reason", "TEXT", "fr.name"), ("status", "TEXT", "st.name"),
    ("error", "TEXT", "a.error"), ("prompt_tokens", "INTEGER", "a.prompt_tokens"),
    ("completion_tokens", "INTEGER", "a.completion_tokens"), ("serial_tokens", "INTEGER", "a.serial_tokens"),
    ("wall_seconds", "REAL", "a.wall_seconds"), ("created_at", "TEXT", iso_sql("a.created_at")),
    ("flops", "REAL", "a.flops"), ("confidence", "REAL", "a.confidence"),
    ("lowest_confidence", "REAL", "a.lowest_confidence"))
"""(name, type before 009, SQL over `ATTEMPT_FROM`) of each column of the `attempts` view, in its order."""

VERIFICATION_FROM = """verification_rows v JOIN names vn ON vn.id = v.verifier_id JOIN names vd ON vd.id = v.verdict_id
    LEFT JOIN attempt_rows va ON va.id = v.attempt_id AND typeof(v.attempt_id) = 'integer'"""
"""Compact verification rows with their verifier's name and attempt's key (the key itself where the
attempt was not stored when it was verified)."""

VERIFICATION_COLUMNS = (
    ("attempt_key", "TEXT", f"CASE WHEN va.id IS NULL THEN {hex_sql('v.attempt_id')} ELSE {hex_sql('va.key')} END"),
    ("verifier", "TEXT", "vn.name"), ("score", "REAL", "v.score"), ("verdict", "TEXT", "vd.name"),
    ("prompt_tokens", "INTEGER", "v.prompt_tokens"), ("completion_tokens", "INTEGER", "v.completion_tokens"),
    ("prompt", "TEXT", "v.prompt"), ("text", "TEXT", "v.text"), ("wall_seconds", "REAL", "v.wall_seconds"),
    ("created_at", "TEXT", iso_sql("v.created_at")))
"""As `ATTEMPT_COLUMNS`, for the `verifications` view over `VERIFICATION_FROM`."""


def select_sql(columns: tuple[tuple[str, str, str], ...]) -> str:
    return ", ".join(f"{sql} AS {name}" for name, _, sql in columns)


# -- reading and writing the compact tables (`Store`) ---------------------------------------------------
ATTEMPT_SELECT = f"SELECT {select_sql(ATTEMPT_COLUMNS)} FROM {ATTEMPT_FROM}"
VERIFICATION_SELECT = f"SELECT {select_sql(VERIFICATION_COLUMNS)} FROM {VERIFICATION_FROM}"
ATTEMPT_SQL = {name: sql for name, _, sql in ATTEMPT_COLUMNS}
BY_NAME = {"model": "a.model_id", "task": "a.task_id", "problem_key": "a.problem_id", "mode": "a.mode_id",
           "finish_reason": "a.finish_reason_id", "status": "a.status_id"}
"""Attempt columns whose values are `names`: filtered on the id (model, task, problem: through an index)."""

_ROW_COLUMNS = ("key", "model_id", "task_id", "problem_id", "w", "d", "mode_id", "parent_id", "seed", "prompt_id",
                "settings_id", "text", "answer", "final_answer", "correct", "finish_reason_id", "status_id", "error",
                "prompt_tokens", "completion_tokens", "serial_tokens", "wall_seconds", "created_at", "flops",
                "confidence", "lowest_confidence")
PUT_ATTEMPT = (f"INSERT INTO attempt_rows ({', '.join(_ROW_COLUMNS)}) VALUES ({', '.join('?' for _ in _ROW_COLUMNS)})"
               f" ON CONFLICT (key) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _ROW_COLUMNS[1:])}"
               " WHERE attempt_rows.status_id IS NOT (SELECT id FROM names WHERE name = 'ok') RETURNING id")
"""A new attempt (values in `attempt_rows` order), or a later try of a stored failure, updated in place (its
id, which children and verifications reference, stays); a stored success is kept. Returns the id it wrote."""
PUT_VERIFICATION = ("INSERT OR IGNORE INTO verification_rows (attempt_id, verifier_id, score, verdict_id,"
                    " prompt_tokens, completion_tokens, prompt, text, wall_seconds, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")

GRID_ROWS = """
    SELECT a.id, a.problem_id, a.w, a.d, a.mode_id,
           CASE WHEN typeof(a.parent_id) = 'integer' THEN a.parent_id
                ELSE coalesce((SELECT k.id FROM attempt_rows k WHERE k.key = a.parent_id), a.parent_id) END,
           a.seed, a.settings_id, a.final_answer, a.correct, a.status_id, a.prompt_tokens, a.completion_tokens,
           a.serial_tokens, a.wall_seconds, a.flops, a.confidence,
           v.verifier_id, v.score, v.prompt_tokens, v.completion_tokens, v.created_at
    FROM attempt_rows a LEFT JOIN verification_rows v ON v.attempt_id = +a.id
    WHERE a.model_id = ? AND a.task_id = ? {modes} ORDER BY a.problem_id, a.d, a.w, a.id"""
"""One model's and task's attempts, each with each of its verifications (`+a.id`: compared as stored, so
the (attempt_id, verifier_id) key serves), a problem's together in (round, chain, storing) order: the
order of the (model, task, problem, d, w) index, so nothing is sorted; `{modes}`: "" or a condition on
the modes of later rounds. Values as stored, nothing joined: names and settings as ids, the attempt and
its parent as row ids (a parent never stored: its key), times as `pack_time` left them. Each value a
row carries costs Python an object: this is the report's largest read."""


def unpack_time(stamp: int | str) -> str:
    """`pack_time` undone: what `iso_sql` gives in SQL."""
    if isinstance(stamp, int):
        return (EPOCH + stamp * MILLISECOND).isoformat(timespec="milliseconds")
    return stamp


def _m009_compact(db: _Statements) -> None:
    # Issue 18: a latent attempt took 1.16 KB, mostly text repeated on every row. What repeats is kept once
    # and referenced by id; keys are bytes, times integers; the old tables' rows are copied (ids are the
    # old rowids) and views with the old names and columns show them as before. The views' SQL is built
    # from the constants above: change them only together with a new migration that replaces the views.
    db.db.create_function("pack_key", 1, pack_key, deterministic=True)
    db.db.create_function("pack_time", 1, pack_time, deterministic=True)
    db.executescript("""
        CREATE TABLE names (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE prompts (id INTEGER PRIMARY KEY, key BLOB UNIQUE, prompt TEXT NOT NULL, odd_key TEXT);
        CREATE TABLE settings (id INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE);
        CREATE TABLE attempt_rows (
            id INTEGER PRIMARY KEY, key BLOB NOT NULL, model_id INTEGER NOT NULL, task_id INTEGER NOT NULL,
            problem_id INTEGER NOT NULL, w INTEGER NOT NULL, d INTEGER NOT NULL, mode_id INTEGER NOT NULL, parent_id,
            seed INTEGER NOT NULL, prompt_id INTEGER NOT NULL, settings_id INTEGER NOT NULL, text TEXT NOT NULL,
            answer TEXT, final_answer TEXT, correct INTEGER, finish_reason_id INTEGER NOT NULL,
            status_id INTEGER NOT NULL, error TEXT, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
            serial_tokens INTEGER NOT NULL, wall_seconds REAL NOT NULL, created_at NOT NULL, flops REAL,
            confidence REAL, lowest_confidence REAL);
        CREATE TABLE verification_rows (
            attempt_id NOT NULL, verifier_id INTEGER NOT NULL, score REAL, verdict_id INTEGER NOT NULL,
            prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, prompt TEXT NOT NULL,
            text TEXT NOT NULL, wall_seconds REAL NOT NULL, created_at NOT NULL,
            PRIMARY KEY (attempt_id, verifier_id)) WITHOUT ROWID
    """)
    _copy_to_compact(db)
    db.executescript(f"""
        DROP TABLE verifications;
        DROP TABLE attempts;
        CREATE UNIQUE INDEX attempt_rows_by_key ON attempt_rows (key);
        CREATE INDEX attempt_rows_by_problem ON attempt_rows (model_id, task_id, problem_id, d, w);
        CREATE VIEW attempts AS SELECT {select_sql(ATTEMPT_COLUMNS)} FROM {ATTEMPT_FROM};
        CREATE VIEW verifications AS SELECT {select_sql(VERIFICATION_COLUMNS)} FROM {VERIFICATION_FROM}
    """)
    for trigger in _TRIGGERS_009:
        db.db.execute(trigger)


def _copy_to_compact(db: _Statements) -> None:
    """The rows of the tables before 009 into the compact ones: attempts keep their rowids as ids."""
    db.executescript("""
        INSERT OR IGNORE INTO names (name) SELECT DISTINCT model FROM attempts;
        INSERT OR IGNORE INTO names (name) SELECT DISTINCT task FROM attempts;
        INSERT OR IGNORE INTO names (name) SELECT DISTINCT verifier FROM verifications;
        INSERT OR IGNORE INTO names (name) SELECT DISTINCT mode FROM attempts;
        INSERT OR IGNORE INTO names (name) SELECT DISTINCT finish_reason FROM attempts;
        INSERT OR IGNORE INTO names (name) SELECT DISTINCT status FROM attempts;
        INSERT OR IGNORE INTO names (name) SELECT DISTINCT verdict FROM verifications;
        INSERT OR IGNORE INTO names (name) SELECT DISTINCT problem_key FROM attempts;
        INSERT INTO settings (json) SELECT DISTINCT settings FROM attempts;
        INSERT OR IGNORE INTO prompts (key, prompt) SELECT pack_key(prompt_key), prompt FROM attempts ORDER BY rowid;
        INSERT INTO prompts (odd_key, prompt) SELECT DISTINCT o.prompt_key, o.prompt FROM attempts o
            JOIN prompts p ON p.key = pack_key(o.prompt_key) WHERE p.prompt != o.prompt;
        INSERT INTO attempt_rows SELECT o.rowid, pack_key(o.key), m.id, t.id, pb.id, o.w, o.d, mo.id,
            CASE WHEN o.parent_key IS NULL THEN NULL ELSE coalesce(par.rowid, pack_key(o.parent_key)) END, o.seed,
            CASE WHEN p.prompt = o.prompt THEN p.id
                 ELSE (SELECT id FROM prompts WHERE odd_key = o.prompt_key AND prompt = o.prompt) END,
            s.id, o.text, o.answer, o.final_answer, o.correct, fr.id, st.id, o.error, o.prompt_tokens,
            o.completion_tokens, o.serial_tokens, o.wall_seconds, pack_time(o.created_at), o.flops, o.confidence,
            o.lowest_confidence
        FROM attempts o JOIN names m ON m.name = o.model JOIN names t ON t.name = o.task
            JOIN names pb ON pb.name = o.problem_key JOIN settings s ON s.json = o.settings
            JOIN names mo ON mo.name = o.mode JOIN names fr ON fr.name = o.finish_reason
            JOIN names st ON st.name = o.status
            JOIN prompts p ON p.key = pack_key(o.prompt_key) LEFT JOIN attempts par ON par.key = o.parent_key
        ORDER BY o.rowid;
        INSERT INTO verification_rows SELECT coalesce(a.rowid, pack_key(o.attempt_key)), n.id, o.score, vd.id,
            o.prompt_tokens, o.completion_tokens, o.prompt, o.text, o.wall_seconds, pack_time(o.created_at)
        FROM verifications o JOIN names n ON n.name = o.verifier JOIN names vd ON vd.name = o.verdict
            LEFT JOIN attempts a ON a.key = o.attempt_key
        ORDER BY 1, 2
    """)


_TRIGGERS_009 = (
    # a verification stored before its attempt holds the attempt's key: it takes the id when the attempt comes
    """CREATE TRIGGER attempt_rows_adopt AFTER INSERT ON attempt_rows BEGIN
        UPDATE verification_rows SET attempt_id = NEW.id WHERE attempt_id = NEW.key; END""",
    # a deleted attempt (tests cut runs short so) leaves its verifications and children holding its key, as
    # the tables before 009 did; deleting is rare, so its children are found without an index. `+OLD.id` has
    # no affinity: compared as stored, a text key '5' is never taken for row 5, and attempt_id's index serves
    """CREATE TRIGGER attempt_rows_orphan AFTER DELETE ON attempt_rows BEGIN
        UPDATE verification_rows SET attempt_id = OLD.key WHERE attempt_id = +OLD.id;
        UPDATE attempt_rows SET parent_id = OLD.key WHERE parent_id = +OLD.id; END""",
    # `DELETE FROM attempts WHERE ...` as before 009, found through the (model, task, problem, d, w) index
    f"""CREATE TRIGGER attempts_delete INSTEAD OF DELETE ON attempts BEGIN
        DELETE FROM attempt_rows WHERE model_id = (SELECT id FROM names WHERE name = OLD.model)
            AND task_id = (SELECT id FROM names WHERE name = OLD.task)
            AND problem_id = (SELECT id FROM names WHERE name = OLD.problem_key)
            AND d = OLD.d AND w = OLD.w AND {hex_sql('key')} = OLD.key; END""",
)


class _Statements:
    """What a migration sees: `executescript` runs its statements one by one inside the caller's
    transaction (sqlite3's own executescript would commit it first); `db` is the connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def executescript(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self.db.execute(statement)


def apply_migration(db: sqlite3.Connection, migrate: Callable[[_Statements], None]) -> None:
    """Run one migration inside the transaction `db` holds open."""
    migrate(_Statements(db))


MIGRATIONS: list[tuple[str, Callable[[_Statements], None]]] = [
    ("001_initial", _m001_initial),
    ("002_run_specs", _m002_run_specs),
    ("003_latent", _m003_latent),
    ("004_allocation", _m004_allocation),
    ("005_methods", _m005_methods),
    ("006_lowest_confidence", _m006_lowest_confidence),
    ("007_method_repeats", _m007_method_repeats),
    ("008_served_requests", _m008_served_requests),
    ("009_compact", _m009_compact),
]
