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

