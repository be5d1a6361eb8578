"""Two processes on one output folder: real processes, real store. A second run stops with one line
naming the first (never generating the same attempts twice); processes opening a fresh folder at
once never race its first migration."""

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
