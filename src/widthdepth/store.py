"""The store: one SQLite database per output folder, the only hand-off between running and analysing.

Every attempt is committed the moment it exists (WAL journal), so ``kill -9`` loses at most the
attempts in flight. Attempt keys are deterministic, so rerunning a command skips what is stored and
a resumed run ends with the same content as an uninterrupted one (`snapshot` compares them).
The schema changes only through the named, append-only `MIGRATIONS`; never edit an old one.

    store = Store.open("runs/demo")
    store.get_attempt(key)
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from widthdepth.attempts import TIMING_FIELDS, Attempt, Verification
from widthdepth.backends.base import ModelInfo
from widthdepth.errors import WidthdepthError
from widthdepth.tasks.base import Problem

DB_NAME = "widthdepth.sqlite"


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


class _Statements:
    """What a migration sees: `executescript` runs its statements one by one inside the caller's
    transaction (sqlite3's own executescript would commit it first)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def executescript(self, script: str) -> None:
        for statement in script.split(";"):
            if statement.strip():
                self.db.execute(statement)


MIGRATIONS: list[tuple[str, Callable[[_Statements], None]]] = [
    ("001_initial", _m001_initial),
    ("002_run_specs", _m002_run_specs),
    ("003_latent", _m003_latent),
    ("004_allocation", _m004_allocation),
    ("005_methods", _m005_methods),
    ("006_lowest_confidence", _m006_lowest_confidence),
    ("007_method_repeats", _m007_method_repeats),
    ("008_served_requests", _m008_served_requests),
]


def _wal(db: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch to the WAL journal (kept in the file). Changing the journal mode ignores the busy
    timeout, so on a fresh file that another process is setting up, retry until it is done."""
    deadline = time.monotonic() + patience
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Store:
    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.db, self.path = db, path

    @classmethod
    def open(cls, folder: str | Path, create: bool = True) -> Store:
        folder = Path(folder)
        path = folder / DB_NAME
        if not path.exists() and not create:
            raise WidthdepthError(f"no store at {path}: run `widthdepth run --out {folder}` first")
        folder.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path)
        db.row_factory = sqlite3.Row
        _wal(db)
        db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable against process crashes
        store = cls(db, path)
        store._migrate()
        return store

    def _migrate(self) -> None:
        """Apply the missing migrations in one write transaction (BEGIN IMMEDIATE), re-reading what is
        applied inside it, so processes opening a fresh folder at once never race a migration."""
        self.db.isolation_level = None  # explicit transactions only, here
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
                applied = {r["name"] for r in self.db.execute("SELECT name FROM schema_migrations")}
                known = {name for name, _ in MIGRATIONS}
                if applied - known:
                    raise WidthdepthError(f"{self.path}: written by a newer widthdepth (migration "
                                          f"{sorted(applied - known)[0]}); upgrade widthdepth to read it")
                for name, migrate in MIGRATIONS:
                    if name not in applied:
                        migrate(_Statements(self.db))
                        self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now()))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        finally:
            self.db.isolation_level = ""

    def close(self) -> None:
        self.db.close()

    def _insert(self, table: str, row: dict[str, Any], verb: str = "INSERT OR IGNORE") -> None:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self.db.execute(f"{verb} INTO {table} ({columns}) VALUES ({marks})", tuple(row.values()))

    # -- writing: each call commits --------------------------------------------------------------
    def put_model(self, info: ModelInfo) -> None:
        with self.db:
            self._insert("models", {
                "id": info.id, "n_params": info.n_params, "prompt_style": info.prompt_style,
                "shares_prompt_prefix": int(info.shares_prompt_prefix),
                "supports_raw_continuation": int(info.supports_raw_continuation),
                "context_length": info.context_length, "description": info.description,
                "latent": int(info.latent)})

    def put_problems(self, problems: Iterable[Problem]) -> None:
        with self.db:
            for problem in problems:
                self._insert("problems", problem.to_row())

    def put_attempt(self, attempt: Attempt) -> None:
        """Store an attempt; a stored failure is replaced by a later try, a stored success never is."""
        with self.db:
            existing = self.db.execute("SELECT status FROM attempts WHERE key = ?", (attempt.key,)).fetchone()
            if existing is None or existing["status"] != "ok":
                self._insert("attempts", attempt.to_row(), verb="INSERT OR REPLACE")

    def put_tree(self, attempts: list[Attempt], verifications: list[Verification]) -> None:
        """Attempts and their verifications computed together (a latent search's chunk), in one commit;
        stored successes are kept, as `put_attempt` keeps them."""
        with self.db:
            for attempt in attempts:
                existing = self.db.execute("SELECT status FROM attempts WHERE key = ?", (attempt.key,)).fetchone()
                if existing is None or existing["status"] != "ok":
                    self._insert("attempts", attempt.to_row(), verb="INSERT OR REPLACE")
            for verification in verifications:
                self._insert("verifications", verification.to_row())

    def put_verification(self, verification: Verification) -> None:
        with self.db:
            self._insert("verifications", verification.to_row())

    def put_allocation(self, run_key: str, task: str, model: str, plan: str, predictor: str, unit: str,
                       decision: dict[str, Any]) -> None:
        """What an adaptive plan decided for one problem; a rerun of the same command replaces it."""
        with self.db:
            self._insert("allocations", {
                "run_key": run_key, "problem_key": decision["problem_key"], "task": task, "model": model, "plan": plan,
                "predictor": predictor, "predicted": decision["predicted"], "bin": decision["bin"], "w": decision["w"],
                "d": decision["d"], "aggregator": decision["aggregator"], "answer": decision["answer"],
                "correct": int(decision["correct"]), "cost": decision["cost"], "unit": unit, "created_at": now()},
                verb="INSERT OR REPLACE")

    def put_method_point(self, run_key: str, experiment: dict[str, Any], point: dict[str, Any]) -> None:
        """One problem's outcome under a method; `experiment` holds model, task, plan, seed, sampling
        (a dict), verifier and repeat. A rerun of the same command replaces it (with the same values, timing aside)."""
        cost = dict(point["cost"])
        wall = cost.pop("wall_seconds", 0.0)
        with self.db:
            self._insert("method_points", {
                "run_key": run_key, "problem_key": point["problem_key"], "model": experiment["model"],
                "task": experiment["task"], "plan": experiment["plan"], "seed": experiment["seed"],
                "sampling": json.dumps(experiment["sampling"], sort_keys=True), "verifier": experiment["verifier"],
                "repeat": experiment.get("repeat", 0), "answer": point["answer"], "correct": int(point["correct"]),
                "cost": json.dumps(cost, sort_keys=True),
                "attempts": point["attempts"], "detail": json.dumps(point["detail"], sort_keys=True),
                "wall_seconds": wall, "created_at": now()},
                verb="INSERT OR REPLACE")

    def method_points(self, run_key: str | None = None) -> list[dict[str, Any]]:
        """Every method point (of one run key, if given), decoded: sampling, cost and detail as dicts,
        correct as bool."""
        out = []
        where, args = ("WHERE run_key = ?", (run_key,)) if run_key else ("", ())
        for row in self.db.execute(f"SELECT * FROM method_points {where} ORDER BY model, task, plan, run_key, "
                                   "problem_key", args):
            point = dict(row)
            for key in ("sampling", "cost", "detail"):
                point[key] = json.loads(point[key])
            point["correct"] = bool(point["correct"])
            point["cost"]["wall_seconds"] = point.pop("wall_seconds")
            out.append(point)
        return out

    def put_served(self, row: dict[str, Any]) -> None:
        """One served request (`widthdepth serve`); `usage` a dict."""
        with self.db:
            self._insert("served_requests", {**row, "usage": json.dumps(row["usage"], sort_keys=True)})

    def served_requests(self) -> list[dict[str, Any]]:
        rows = [dict(r) for r in self.db.execute("SELECT * FROM served_requests ORDER BY received_at, id")]
        return [{**r, "usage": json.loads(r["usage"])} for r in rows]

    def allocations(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM allocations ORDER BY plan, task, problem_key")]

    def start_run(self, config: dict[str, Any], model: str, task_specs: list[str], plan_specs: list[str]) -> int:
        with self.db:
            cursor = self.db.execute(
                "INSERT INTO runs (started_at, config, model, task_specs, plan_specs) VALUES (?, ?, ?, ?, ?)",
                (now(), json.dumps(config, sort_keys=True), model, json.dumps(task_specs), json.dumps(plan_specs)))
        return int(cursor.lastrowid or 0)

    def runs(self) -> list[dict[str, Any]]:
        """The run log, oldest first, with config, model, task_specs and plan_specs decoded."""
        out = []
        for row in self.db.execute("SELECT * FROM runs ORDER BY id"):
            run = dict(row)
            run["config"] = json.loads(run["config"])
            for key in ("task_specs", "plan_specs"):
                run[key] = json.loads(run[key]) if run[key] else []
            out.append(run)
        return out

    def problems(self, task: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM problems WHERE task = ? ORDER BY idx, key", (task,))
        return [{**dict(r), "gold": json.loads(r["gold"]), "structure": json.loads(r["structure"])} for r in rows]

    def finish_run(self, run_id: int) -> None:
        with self.db:
            self.db.execute("UPDATE runs SET finished_at = ? WHERE id = ?", (now(), run_id))

    # -- reading -----------------------------------------------------------------------------------
    def get_attempt(self, key: str) -> Attempt | None:
        row = self.db.execute("SELECT * FROM attempts WHERE key = ?", (key,)).fetchone()
        return Attempt.from_row(dict(row)) if row else None

    def get_verification(self, attempt_key: str, verifier: str) -> Verification | None:
        row = self.db.execute("SELECT * FROM verifications WHERE attempt_key = ? AND verifier = ?",
                              (attempt_key, verifier)).fetchone()
        return Verification.from_row(dict(row)) if row else None

    def model_info(self, model_id: str) -> ModelInfo | None:
        row = self.db.execute("SELECT * FROM models WHERE id = ?", (model_id,)).fetchone()
        if row is None:
            return None
        return ModelInfo(id=row["id"], n_params=row["n_params"], prompt_style=row["prompt_style"],
                         shares_prompt_prefix=bool(row["shares_prompt_prefix"]),
                         supports_raw_continuation=bool(row["supports_raw_continuation"]),
                         context_length=row["context_length"], description=row["description"],
                         latent=bool(row["latent"]))

    def attempts(self, **where: Any) -> Iterator[Attempt]:
        clause = " AND ".join(f"{k} = ?" for k in where) or "1"
        query = f"SELECT * FROM attempts WHERE {clause} ORDER BY problem_key, d, w"
        for row in self.db.execute(query, tuple(where.values())):
            yield Attempt.from_row(dict(row))

    def counts(self) -> dict[str, int]:
        tables = ("problems", "attempts", "verifications", "runs")
        return {t: self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}

    def snapshot(self) -> dict[str, list[tuple]]:
        """Everything reproducible in the store, sorted: two runs of one command compare equal.
        Timing fields and the run log are left out (they differ by nature)."""
        out: dict[str, list[tuple]] = {}
        for table, order in (("models", "id"), ("problems", "key"), ("attempts", "key"),
                             ("verifications", "attempt_key, verifier"), ("allocations", "run_key, problem_key"),
                             ("method_points", "run_key, problem_key")):
            rows = self.db.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
            out[table] = [tuple(v for k, v in dict(r).items() if k not in TIMING_FIELDS) for r in rows]
        return out
