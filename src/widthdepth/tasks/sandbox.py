"""Runs a model's program against its tests in a fresh subprocess per check, and never fails the run.

    >>> sandbox = Sandbox(Limits(seconds=5))
    >>> sandbox.run("def inc(x):\\n    return x + 1\\n", [Step("test", "assert inc(1) == 2"),
    ...                                                  Step("test", "assert inc(1) == 3")])
    'PF'

The outcome is one letter per test: P passed, F failed (AssertionError), E error (any other exception,
a crash, a program that does not compile, a memory limit hit), T not finished within the time limit.
A check never raises: a crash, a timeout or an infinite loop is a failed test.

What guards the machine, from the hardest layer in:

- a new process in a new session, killed with its whole process group when the check ends;
- when widthdepth runs as root, each check runs under a user id of its own (drawn from 1,990,000,000 to
  2,089,999,999, ids no account has; root is exempt from the process limit and may read and write everything), with an
  interpreter that user can run; every process of that id is killed when the check ends, including any
  that left the process group;
- resource limits: address space (``memory_mb``), CPU seconds, size of files written, open files,
  processes and threads beyond those the user already has (``processes``; a fork bomb stops there),
  no core dumps;
- a temporary working folder, removed afterwards; an environment with nothing inherited (PATH, HOME
  and TMPDIR pointing at the folder, LANG, PYTHONHASHSEED=0 so set order is the same every run);
- the interpreter in isolated mode without site-packages (``-I -S``): programs get the standard
  library only;
- an audit hook (see `sandbox_boot`) refusing subprocesses, signals, sockets, ctypes, and files
  outside the folder (reads also from the standard library); nothing the program prints is kept.

This is for checking a model's honest attempts, which loop, crash and allocate too much; it is not a
boundary against code written to escape it (run untrusted benchmarks in a container as well).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from widthdepth.errors import WidthdepthError

_BOOT = Path(__file__).with_name("sandbox_boot.py")
_CACHE_SIZE = 20_000
_CHECK_UIDS, _CHECK_UID_COUNT = 1_990_000_000, 100_000_000
"""As root, each check runs under one of these user ids (no account has them), drawn at random."""


@dataclass(frozen=True)
class Limits:
    seconds: float = 5.0
    """Wall-clock limit for one check (the program and all its tests); CPU time is capped one second above."""
    memory_mb: int = 512
    """Address space of the process, in MiB."""
    file_mb: int = 16
    """Largest file the program may write, in MiB."""
    processes: int = 16
    """Processes and threads the program may add to those its user already runs."""


@dataclass(frozen=True)
class Step:
    kind: str
    """``test`` (reported with a letter) or ``setup`` (run silently; when it fails, every later test is E)."""
    code: str


class Sandbox:
    """Checks programs; `run` results are cached by program and steps (the same check gives the same letters)."""

    def __init__(self, limits: Limits = Limits(), guard: bool = True) -> None:
        self.limits, self.guard = limits, guard
        self.boot = _BOOT.read_text(encoding="utf-8")
        self.root = os.geteuid() == 0
        self.user = self._next_user()
        self.python = self._working_interpreter()
        self.runs = self.cached = 0
        self._seen: dict[str, str] = {}

    def run(self, program: str, steps: list[Step], bind: dict[str, str] | None = None) -> str:
        """Letters, one per test step. `bind`: alias -> a name the program defines, set before the steps
        (HumanEval's tests call ``candidate(...)``: {"candidate": entry point})."""
        job = {"program": program, "steps": [[s.kind, s.code] for s in steps], "bind": bind or {},
               "limits": asdict(self.limits), "guard": self.guard}
        payload = json.dumps(job).encode()
        key = hashlib.sha256(payload).hexdigest()
        if key in self._seen:
            self.cached += 1
            return self._seen[key]
        tests = sum(1 for s in steps if s.kind == "test")
        for _ in range(2):
            folder = tempfile.mkdtemp(prefix="widthdepth-sandbox-")
            user = self._next_user()
            try:
                if user:
                    os.chown(folder, *user)
                report, timed_out = self._execute(self.python, payload, folder, user)
                break
            except OSError:  # the machine could not start a process just now (EAGAIN, ENOMEM): once more
                time.sleep(0.5)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        else:
            return "E" * tests  # never a failed run; not cached, so a later check of it tries again
        letters = outcome(report, tests, timed_out)
        self.runs += 1
        if len(self._seen) >= _CACHE_SIZE:
            self._seen.clear()
        self._seen[key] = letters
        return letters

    def _next_user(self) -> tuple[int, int] | None:
        """As root, a user id of this check's own, drawn at random from a range no account uses (two runs
        checking at once must not share one: each kills its id's processes): its processes can all be
        found and killed afterwards, and the process limit counts only them."""
        if not self.root:
            return None
        uid = _CHECK_UIDS + secrets.randbelow(_CHECK_UID_COUNT)
        return uid, uid

    def _execute(self, python: str, payload: bytes, folder: str,
                 user: tuple[int, int] | None) -> tuple[bytes, bool]:
        env = {"PATH": "/usr/bin:/bin", "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        who = {"user": user[0], "group": user[1], "extra_groups": []} if user else {}
        deadline = time.monotonic() + self.limits.seconds
        process = subprocess.Popen([python, "-I", "-S", "-c", self.boot], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=folder, env=env,
                                   start_new_session=True, close_fds=True, **who)
        try:
            try:
                process.stdin.write(payload)
                process.stdin.close()
            except BrokenPipeError:
                pass  # it died before reading its job: an empty report, every test E
            return _read_report(process.stdout, deadline)
        finally:
            try:  # the program's children go with it, whatever it left running
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if user:  # and so do processes that left the group (a new session), found by the check's user id
                _kill_user(user[0])
            process.wait()
            process.stdout.close()

    def _working_interpreter(self) -> str:
        """This interpreter, or when running as root the first one a check's user id can run (checked by a test
        program that must pass)."""
        candidates = [os.path.realpath(sys.executable)]
        if self.user:
            candidates += [p for p in ("/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3")) if p]
        tried = []
        for python in dict.fromkeys(candidates):
            folder = tempfile.mkdtemp(prefix="widthdepth-sandbox-")
            try:
                if self.user:
                    os.chown(folder, *self.user)
                job = {"program": "def one():\n    return 1\n", "steps": [["test", "assert one() == 1"]],
                       "bind": {}, "limits": asdict(self.limits), "guard": self.guard}
                report, timed_out = self._execute(python, json.dumps(job).encode(), folder, self.user)
                if outcome(report, 1, timed_out) == "P":
                    return python
            except OSError:
                pass
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            tried.append(python)
        who = f"an unprivileged user id ({self.user[0]}; widthdepth runs as root)" if self.user else "this user"
        raise WidthdepthError(f"code checks: no Python interpreter that {who} can run passed a trivial test "
                              f"(tried {', '.join(tried)}, working folders under {tempfile.gettempdir()}); install "
                              "python3 under /usr/bin, point TMPDIR at a folder that user can enter, or run as a "
                              "normal user")


def outcome(report: bytes, tests: int, timed_out: bool) -> str:
    """The letters from a report, tests it never reached filled in: T after a timeout, else E."""
    text = report.decode("ascii", errors="replace")
    body = text[1:] if text.startswith("<") else ""
    done = body.endswith(">")
    letters = body.rstrip(">")
    if not set(letters) <= set("PFE") or len(letters) > tests or (done and len(letters) != tests):
        return "E" * tests  # not a report the bootstrap writes
    return letters + ("T" if timed_out else "E") * (tests - len(letters))


def _read_report(stream, deadline: float) -> tuple[bytes, bool]:
    """The child's report, read until it closes (or writes ``>``), a size cap, or the deadline."""
    report = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(report), True
            if not selector.select(left):
                continue
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                return bytes(report), False
            report += chunk[:max(0, 65_536 - len(report))]
            if b">" in chunk:  # done: the program's leftover children may hold the pipe open
                return bytes(report), False


def _kill_user(uid: int) -> None:
    """SIGKILL every process whose real user id is `uid` (a check's own, so nothing else is touched)."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as status:
                line = next(l for l in status if l.startswith("Uid:"))
            if int(line.split()[1]) == uid:
                os.kill(int(name), signal.SIGKILL)
        except (OSError, StopIteration, ValueError):
            continue  # gone already, or not ours to read
