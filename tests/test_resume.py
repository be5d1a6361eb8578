"""Resume after SIGKILL: a real run of the real model, killed mid-way, then rerun, must end with the
same store as an uninterrupted run of the same command."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from widthdepth.store import DB_NAME, Store

pytestmark = pytest.mark.model

TOTAL = 2 * 2 * 2  # problems x chains x rounds


def command(out):
    return [sys.executable, "-m", "widthdepth.cli", "run", "--model", "llamacpp:smollm2-135m",
            "--tasks", "chain:L=2", "--plan", "grid:2x2", "--problems", "2", "--seed", "11", "--max-tokens", "40",
            "--threads", "2", "--context-length", "1024", "--out", str(out)]


def stored(out) -> int:
    try:
        db = sqlite3.connect(out / DB_NAME, timeout=5)
        try:
            return db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:
        return 0  # not created yet


def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_store(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(command(whole), check=True, capture_output=True, timeout=300)
    assert stored(whole) == TOTAL

    process = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while stored(killed) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    at_kill = stored(killed)
    assert 3 <= at_kill < TOTAL, f"the kill should land mid-run, found {at_kill} of {TOTAL} attempts"

    # the killed run's report: what there is, and one line per experiment saying what is missing
    report = subprocess.run([sys.executable, "-m", "widthdepth.cli", "report", str(killed)], capture_output=True,
                            text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-2000:]
    said = " ".join(report.stdout.split())
    assert f"({at_kill} of {TOTAL} attempts stored, 0 failed)" in said and "rerun the same `widthdepth run`" in said
    assert "class='warning'>partial: chain:L=2" in (killed / "report.html").read_text()

    rerun = subprocess.run(command(killed), check=True, capture_output=True, text=True, timeout=300)
    assert f"generated {TOTAL - at_kill} attempts, reused {at_kill}" in " ".join(rerun.stdout.split())
    assert Store.open(killed).snapshot() == Store.open(whole).snapshot()
    report = subprocess.run([sys.executable, "-m", "widthdepth.cli", "report", str(killed)], capture_output=True,
                            text=True, timeout=300, check=True)
    assert "partial" not in report.stdout and "class='warning'" not in (killed / "report.html").read_text()


def test_ctrl_c_stops_with_one_line_and_exit_130_then_resumes(tmp_path):
    """SIGINT (Ctrl-C) to a real run: exit 130, one line saying what is stored and how to resume, a
    consistent store; the same command then completes it to the uninterrupted store."""
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    subprocess.run(command(whole), check=True, capture_output=True, timeout=300)
    # a shell without job control starts background jobs with SIGINT ignored: restore the default
    process = subprocess.Popen(command(stopped), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 240
    while stored(stopped) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    at_stop = stored(stopped)
    assert process.returncode == 130, err[-2000:]
    assert 3 <= at_stop < TOTAL, f"Ctrl-C should land mid-run, found {at_stop} of {TOTAL} attempts"
    last = err.strip().splitlines()[-1]
    assert last == f"interrupted: {at_stop} attempts stored in {stopped}; rerun the same command to resume"
    assert "Traceback" not in err
    db = sqlite3.connect(stopped / DB_NAME)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()

    subprocess.run(command(stopped), check=True, capture_output=True, timeout=300)
    assert Store.open(stopped).snapshot() == Store.open(whole).snapshot()


def test_ctrl_c_in_any_command_exits_130():
    from widthdepth import cli

    @cli.app.command("interrupt-for-test", hidden=True)
    def interrupted_command() -> None:
        raise KeyboardInterrupt

    try:
        assert cli.main(["interrupt-for-test"]) == 130
    finally:
        cli.app.registered_commands.pop()
