"""Errors meant for people.

A `WidthdepthError` carries one line that says what was wrong, where (file:line, option name) and
how to fix it. The CLI prints it as ``error: <line>`` and exits with status 2; library callers can
catch it like any exception.

    raise WidthdepthError("--plan 'grid:4' : expected grid:NxD, e.g. grid:4x2")
"""

from __future__ import annotations


class WidthdepthError(Exception):
    """Bad input or an impossible request, explained in one line."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class Interrupted(WidthdepthError):
    """Ctrl-C (SIGINT) during a run: what is stored stays, and the same command resumes from it."""

    exit_code = 130


def interrupted(out: str) -> Interrupted:
    """The one line for a run stopped by Ctrl-C, counting what its store holds."""
    from widthdepth.store import Store

    try:
        store = Store.open(out, create=False)
        try:
            count = store.db.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        finally:
            store.close()
    except Exception:  # noqa: BLE001 - no store yet (stopped before the first attempt), or unreadable
        count = 0
    return Interrupted(f"interrupted: {count} attempts stored in {out}; rerun the same command to resume")
