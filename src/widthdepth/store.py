"""The store: one SQLite database per output folder, the only hand-off between running and analysing.

Every attempt is committed the moment it exists (WAL journal), so ``kill -9`` loses at most the
attempts in flight. Attempt keys are deterministic, so rerunning a command skips what is stored and
a resumed run ends with the same content as an uninterrupted one (`snapshot` compares them).
The schema changes only through the named, append-only `MIGRATIONS` (`store_schema`); never edit an old one.
Attempts and verifications are kept compact (what repeats is kept once and referenced by id: about 240
bytes a latent attempt with its verification); the views `attempts` and `verifications` show them as the
plain rows they were before, and `Store` reads and writes the compact tables themselves.

    store = Store.open("runs/demo")
    store.get_attempt(key)
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from widthdepth.attempts import TIMING_FIELDS, Attempt, Verification
from widthdepth.backends.base import ModelInfo
from widthdepth.errors import WidthdepthError
from widthdepth.store_ids import Ids
from widthdepth.store_schema import (ATTEMPT_COLUMNS, ATTEMPT_SELECT, ATTEMPT_SQL, BY_NAME, GRID_ROWS, MIGRATIONS,
                                     PUT_ATTEMPT, PUT_VERIFICATION, VERIFICATION_COLUMNS, VERIFICATION_SELECT,
                                     apply_migration, pack_key, pack_time)
from widthdepth.tasks.base import Problem

__all__ = ["DB_NAME", "MIGRATIONS", "Store", "now"]

DB_NAME = "widthdepth.sqlite"

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
        self.ids = Ids(db)

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
        if "009_compact" in store._migrate() and db.execute("SELECT 1 FROM attempt_rows LIMIT 1").fetchone():
            store._shrink()
        return store

    def _migrate(self) -> list[str]:
        """Apply the missing migrations in one write transaction (BEGIN IMMEDIATE), re-reading what is
        applied inside it, so processes opening a fresh folder at once never race a migration. Returns
        the names of those it applied."""
        self.db.isolation_level = None  # explicit transactions only, here
        done = []
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
                        apply_migration(self.db, migrate)
                        self.db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (name, now()))
                        done.append(name)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        finally:
            self.db.isolation_level = ""
        return done

    def _shrink(self) -> None:
        """Give back the space a store converted in place no longer uses (once, after `009_compact`).
        Where another process holds the file, it stays its size: nothing is lost but disk."""
        try:
            self.db.execute("VACUUM")
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise

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

    @contextmanager
    def _writing(self) -> Iterator[dict[str, int | bytes | str]]:
        """One transaction, committed at the end; on an error it is rolled back and the ids cached while it
        ran are forgotten (the rows they name went with it). Yields key -> row id of the attempts written."""
        try:
            with self.db:
                yield {}
        except BaseException:
            self.ids.forget()
            raise

    def put_attempt(self, attempt: Attempt) -> None:
        """Store an attempt; a stored failure is replaced by a later try, a stored success never is."""
        with self._writing() as written:
            self._put_attempt(attempt, written)

    def put_tree(self, attempts: list[Attempt], verifications: list[Verification]) -> None:
        """Attempts and their verifications computed together (a latent search's chunk), in one commit;
        stored successes are kept, as `put_attempt` keeps them."""
        with self._writing() as written:
            for attempt in attempts:
                self._put_attempt(attempt, written)
            for verification in verifications:
                self._put_verification(verification, written)

    def put_verification(self, verification: Verification) -> None:
        """Store a verification; one already stored for the attempt and verifier is kept."""
        with self._writing() as written:
            self._put_verification(verification, written)

    def _put_attempt(self, a: Attempt, written: dict[str, int | bytes | str]) -> None:
        key, ids = pack_key(a.key), self.ids
        row = (key, ids.name(a.model), ids.name(a.task), ids.name(a.problem_key), a.w, a.d, ids.name(a.mode),
               None if a.parent_key is None else self._attempt_ref(a.parent_key, written), a.seed,
               ids.prompt(a.prompt_key, a.prompt), ids.settings(a.settings), a.text, a.answer, a.final_answer,
               None if a.correct is None else int(a.correct), ids.name(a.finish_reason), ids.name(a.status), a.error,
               a.prompt_tokens, a.completion_tokens, a.serial_tokens, a.wall_seconds, pack_time(a.created_at), a.flops,
               a.confidence, a.lowest_confidence)
        returned = self.db.execute(PUT_ATTEMPT, row).fetchall()
        written[a.key] = returned[0][0] if returned else self._attempt_ref(a.key, written)

    def _put_verification(self, v: Verification, written: dict[str, int | bytes | str]) -> None:
        self.db.execute(PUT_VERIFICATION, (
            self._attempt_ref(v.attempt_key, written), self.ids.name(v.verifier), v.score, self.ids.name(v.verdict),
            v.prompt_tokens, v.completion_tokens, v.prompt, v.text, v.wall_seconds, pack_time(v.created_at)))

    def _attempt_ref(self, key: str, written: dict[str, int | bytes | str] | None = None) -> int | bytes | str:
        """How a row refers to the attempt with this key: its row id, or (not stored) the packed key itself."""
        if written and key in written:
            return written[key]
        packed = pack_key(key)
        row = self.db.execute("SELECT id FROM attempt_rows WHERE key = ?", (packed,)).fetchone()
        return packed if row is None else row[0]

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
        row = self.db.execute(f"{ATTEMPT_SELECT} WHERE a.key = ?", (pack_key(key),)).fetchone()
        return Attempt.from_row(dict(row)) if row else None

    def get_verification(self, attempt_key: str, verifier: str) -> Verification | None:
        verifier_id = self.ids.known(verifier)
        if verifier_id is None:
            return None
        row = self.db.execute(f"{VERIFICATION_SELECT} WHERE v.attempt_id = ? AND v.verifier_id = ?",
                              (self._attempt_ref(attempt_key), verifier_id)).fetchone()
        return Verification.from_row(dict(row)) if row else None

    def verifications_of(self, attempt_keys: Iterable[str], chunk: int = 500) -> Iterator[Verification]:
        """The verifications, by any verifier, of these attempts (found through their row ids: fast where
        `SELECT * FROM verifications WHERE attempt_key IN (...)` reads the whole view)."""
        keys = [pack_key(key) for key in attempt_keys]
        for start in range(0, len(keys), chunk):
            part = keys[start:start + chunk]
            marks = ", ".join("?" for _ in part)
            query = (f"{VERIFICATION_SELECT} WHERE v.attempt_id IN (SELECT +id FROM attempt_rows"
                     f" WHERE key IN ({marks})) OR v.attempt_id IN ({marks})")  # or: of attempts not stored
            for row in self.db.execute(query, part + part):
                yield Verification.from_row(dict(row))

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
        """The attempts whose columns equal `where` (any of `Attempt`'s fields), ordered by problem key,
        round and chain."""
        clauses, args = [], []
        for column, value in where.items():
            if column in BY_NAME:  # on the name's id: through the (model, task, problem, d, w) index
                value = self.ids.known(value)
                if value is None:
                    return  # a name never stored: no attempt has it
                clauses.append(f"{BY_NAME[column]} = ?")
            elif column == "key":
                clauses.append("a.key = ?")
                value = pack_key(value)
            elif column in ATTEMPT_SQL:
                clauses.append(f"{ATTEMPT_SQL[column]} = ?")
            else:
                raise WidthdepthError(f"Store.attempts({column}=...): no such column; attempts have "
                                      f"{', '.join(ATTEMPT_SQL)}")
            args.append(value)
        query = f"{ATTEMPT_SELECT} WHERE {' AND '.join(clauses) or '1'} ORDER BY pb.name, a.d, a.w, a.id"
        for row in self.db.execute(query, args):
            yield Attempt.from_row(dict(row))

    def grid_rows(self, model: str, task: str, modes: Iterable[str] | None = None,
                  chain_seed: Callable[[str, int], int] | None = None, chunk: int = 10_000) -> Iterator[tuple]:
        """One task's attempts, each with each of its verifications (or None's), a problem's together and
        in order of round, chain and storing (problems in no set order), as plain tuples of stored values
        (`GRID_ROWS`; `names` and `settings_json` read the ids): row id, problem, w, d, mode, parent's row id,
        seed, settings, final_answer, correct, status, prompt_tokens, completion_tokens, serial_tokens,
        wall_seconds, flops, confidence, verifier, score, the verification's prompt_tokens,
        completion_tokens and created_at (`unpack_time` reads it). With `modes`, rounds after the first only
        of those modes (a grid's: not a search method's); with `chain_seed`, only attempts whose seed is
        chain_seed(problem_key, d) + w (a grid's chain w at round d; a search method's draw their own)."""
        model_id, task_id = self.ids.known(model), self.ids.known(task)
        where, args = "", [model_id, task_id]
        if modes is not None:
            ids = [i for i in (self.ids.known(m) for m in modes) if i is not None]
            where = f"AND (a.d = 1 OR a.mode_id IN ({', '.join('?' for _ in ids)}))"
            args += ids
        if chain_seed is not None:  # in SQL: a row left out costs no Python object
            names = self.names()
            first = lru_cache(maxsize=None)(lambda problem_id, d: chain_seed(names[problem_id], d))
            function = f"chain_seed_{id(first)}"  # its own name: another reader's may be running
            self.db.create_function(function, 2, first, deterministic=True)
            where += f" AND a.seed - a.w = {function}(a.problem_id, a.d)"
        cursor = self.db.execute(GRID_ROWS.format(modes=where), args)
        cursor.row_factory = None
        while rows := cursor.fetchmany(chunk):
            yield from rows

    def names(self) -> dict[int, str]:
        """Every stored name (model ids, task specs, problem keys, modes, statuses, verifiers) by its id."""
        return dict(self.db.execute("SELECT id, name FROM names").fetchall())

    def settings_json(self) -> dict[int, str]:
        """Every stored settings JSON by its id."""
        return dict(self.db.execute("SELECT id, json FROM settings").fetchall())

    def counts(self) -> dict[str, int]:
        tables = {"problems": "problems", "attempts": "attempt_rows", "verifications": "verification_rows",
                  "runs": "runs"}
        return {name: self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for name, t in tables.items()}

    def columns(self, table: str) -> list[tuple[str, str]]:
        """(name, declared SQLite type) of the columns `SELECT * FROM table` gives, in order (for the
        views `attempts` and `verifications`, the types their tables had)."""
        views = {"attempts": ATTEMPT_COLUMNS, "verifications": VERIFICATION_COLUMNS}
        if table in views:
            return [(name, kind) for name, kind, _ in views[table]]
        return [(row[1], (row[2] or "").upper()) for row in self.db.execute(f"PRAGMA table_info({table})")]

    def rows(self, table: str) -> sqlite3.Cursor:
        """Every row of a table as `SELECT * FROM table` gives it, in the order they were stored
        (verifications: by attempt, then verifier)."""
        ordered = {"attempts": f"{ATTEMPT_SELECT} ORDER BY a.id",
                   "verifications": f"{VERIFICATION_SELECT} ORDER BY v.attempt_id, v.verifier_id"}
        return self.db.execute(ordered.get(table, f"SELECT * FROM {table} ORDER BY rowid"))

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
