"""Two processes on one output folder: real processes, real store. A second run stops with one line
naming the first (never generating the same attempts twice); processes opening a fresh folder at
once never race its first migration; processes writing one store at once share its names and prompts."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from test_resume import TOTAL, command, stored

from widthdepth.lock import LOCK_NAME
from widthdepth.store import DB_NAME, MIGRATIONS

OPEN_AT = """
import sys, time
from widthdepth.store import Store
start = float(sys.argv[2])
while time.time() < start:
    pass
Store.open(sys.argv[1]).close()
"""


def test_processes_opening_a_fresh_folder_at_once_all_migrate_it_once(tmp_path):
    for trial in range(3):
        folder = tmp_path / f"fresh{trial}"
        start = f"{time.time() + 1.5:.3f}"
        processes = [subprocess.Popen([sys.executable, "-c", OPEN_AT, str(folder), start], stderr=subprocess.PIPE,
                                      text=True) for _ in range(6)]
        errors = [p.communicate(timeout=60)[1] for p in processes]
        assert [p.returncode for p in processes] == [0] * 6, "\n".join(errors)
        import sqlite3

        db = sqlite3.connect(folder / DB_NAME)
        assert [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY name")] == \
            [name for name, _ in MIGRATIONS]
        db.close()

WRITE_AT = """
import sys, time
from widthdepth.attempts import Attempt, Verification
from widthdepth.specs import stable_hash
from widthdepth.store import Store, now
store, me, start = Store.open(sys.argv[1]), sys.argv[2], float(sys.argv[3])
while time.time() < start:
    pass
for p in range(150):
    problem = f"chain:L=1#{p}"  # both processes write every problem name, prompt and verifier name
    tree, parent = [], None
    for d in range(1, 4):
        key = stable_hash(me, p, d)
        tree.append(Attempt(key, "mock:", "chain:L=1", problem, 0, d, "", parent, d, "Q" + problem,
                            stable_hash("Q" + problem), "{}", "Answer: 3", "3", "3", True, "stop", "ok", None, 5, 1, d,
                            0.01, now()))
        parent = key
    checks = [Verification(a.key, "judge:" + problem, 0.5, "scored", 0, 0, "", "", 0.0, now()) for a in tree]
    store.put_tree(tree, checks)
store.close()
"""


def test_processes_writing_one_store_at_once_keep_every_attempt(tmp_path):
    from widthdepth.store import Store

    Store.open(tmp_path).close()
    start = f"{time.time() + 1.5:.3f}"
    processes = [subprocess.Popen([sys.executable, "-c", WRITE_AT, str(tmp_path), me, start], stderr=subprocess.PIPE,
                                  text=True) for me in ("one", "two")]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n".join(errors)
    store = Store.open(tmp_path)
    assert store.counts()["attempts"] == store.counts()["verifications"] == 2 * 150 * 3
    assert store.db.execute("SELECT COUNT(*) FROM prompts").fetchone()[0] == 150
    chain = list(store.attempts(problem_key="chain:L=1#7"))
    assert [a.parent_key for a in chain if a.d > 1] == [a.key for a in chain if a.d < 3]
    assert all(store.get_verification(a.key, "judge:chain:L=1#7") for a in chain)
    store.close()


@pytest.mark.model
def test_a_second_run_on_a_busy_folder_stops_with_one_line_naming_the_first(tmp_path):
    out = tmp_path / "out"
    first = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while stored(out) < 1 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    assert first.poll() is None, "the first run should still be running"
    second = subprocess.run(command(out), capture_output=True, text=True, timeout=300)
    lines = second.stderr.strip().splitlines()
    assert second.returncode == 2 and len(lines) == 1, second.stderr
    assert f"another widthdepth process (pid {first.pid}," in lines[0] and "--out" in lines[0]
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == first.pid
    assert first.wait(timeout=300) == 0 and stored(out) == TOTAL  # the first finished undisturbed
    rerun = subprocess.run(command(out), capture_output=True, text=True, timeout=300, check=True)
    assert f"generated 0 attempts, reused {TOTAL}" in " ".join(rerun.stdout.split())
