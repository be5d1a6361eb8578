"""One writer per output folder. A run holds an exclusive lock on ``OUT/.widthdepth.lock`` (an OS
file lock: released when the process ends, however it ends, so a killed run leaves no stale lock)
while it generates; a second run on the same folder stops with one line naming the first instead
of generating the same attempts again. Readers (`report`, `results`) need no lock: the store is
SQLite in WAL mode.

    with folder_lock("runs/demo", "widthdepth run --out runs/demo"):
        ...
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from widthdepth.errors import WidthdepthError

LOCK_NAME = ".widthdepth.lock"
_HELD: set[Path] = set()
"""Folders this process holds: taking one again (the CLI, then the runner inside it) is a no-op."""


def _command() -> str:
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join(["widthdepth" if name in ("widthdepth", "cli.py", "__main__.py") else name, *sys.argv[1:]])


@contextmanager
def folder_lock(folder: str | Path, option: str = "--out") -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock (documented)
        yield
        return
    folder = Path(folder)
    if folder.resolve() in _HELD:
        yield
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / LOCK_NAME).open("a+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                holder = json.loads(handle.read() or "{}")
            except ValueError:
                holder = {}
            raise WidthdepthError(
                f"{option} {str(folder)!r}: another widthdepth process (pid {holder.get('pid', '?')}, "
                f"started {holder.get('started', '?')}: {holder.get('command', '?')}) is writing this folder; "
                "wait for it to finish and rerun (its attempts are then reused), or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "started": datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
                                 "command": _command()[:160]}))
        handle.flush()
        _HELD.add(folder.resolve())
        try:
            yield
        finally:
            _HELD.discard(folder.resolve())
    finally:
        handle.close()  # closing releases the lock
        if created and [p.name for p in folder.iterdir()] == [LOCK_NAME]:  # nothing was stored: leave no trace
            (folder / LOCK_NAME).unlink(missing_ok=True)
            folder.rmdir()
