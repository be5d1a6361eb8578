"""The code sandbox against hostile programs: each ends as a failed check within its limit, nothing escapes."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from widthdepth.tasks.sandbox import Limits, Sandbox, Step, outcome

TESTS = [Step("test", "assert f(1) == 2"), Step("test", "assert f(2) == 3")]


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox(Limits(seconds=2, memory_mb=256))


def sandbox_processes(marker="-I -S -c"):
    """Processes of the sandbox's users still running (zombies are not running): as root, the checks' own
    user ids; else this user's processes that look like a check."""
    listing = subprocess.run(["ps", "-eo", "uid=,stat=,args="], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in listing.splitlines() if line.strip()]
    mine = (lambda uid: 1_990_000_000 <= uid < 2_090_000_000) if os.geteuid() == 0 else (lambda uid: uid == os.geteuid())
    return [r for r in rows if len(r) == 3 and mine(int(r[0])) and not r[1].startswith("Z") and marker in r[2]]


def test_a_correct_and_a_wrong_program(sandbox):
    assert sandbox.run("def f(x):\n    return x + 1\n", TESTS) == "PP"
    assert sandbox.run("def f(x):\n    return 2\n", TESTS) == "PF"
    assert sandbox.run("def f(x):\n    return None + 1\n", TESTS) == "EE"


@pytest.mark.parametrize("program, letters", [
    ("def f(x):\n    while True:\n        pass\n", "TT"),                                       # an infinite loop
    ("def f(x):\n    block = bytearray(1024 ** 3)\n    return x + 1\n", "EE"),                  # 1 GiB allocation
    ("import os\ndef f(x):\n    while True:\n        os.fork()\n", "EE"),                        # fork bomb
    ("def f(x):\n    open('/tmp/widthdepth-test-escape', 'w').write('x')\n    return x + 1\n", "EE"),
    ("def f(x):\n    return len(open('/etc/hostname').read()) + x - 99\n", "EE"),
    ("import ctypes\ndef f(x):\n    return x + 1\n", "EE"),                                     # raw syscalls
    ("import socket\ndef f(x):\n    socket.create_connection(('127.0.0.1', 22))\n    return x + 1\n", "EE"),
    ("import sys\nsys.exit(0)\n", "EE"),
    ("import _posixsubprocess\ndef f(x):\n    return x + 1\n", "EE"),                        # no audit events
    ("import os\ndef f(x):\n    os._exit(0)\n", "EE"),
    ("def f(x)\n    return x\n", "EE"),
])
def test_hostile_programs_fail_within_their_limit(sandbox, program, letters):
    start = time.monotonic()
    assert sandbox.run(program, TESTS) == letters
    assert time.monotonic() - start < sandbox.limits.seconds + 1.5
    assert not Path("/tmp/widthdepth-test-escape").exists()


def test_the_environment_holds_nothing_inherited(sandbox, monkeypatch):
    monkeypatch.setenv("WIDTHDEPTH_TEST_SECRET", "hunter2")
    program = "import os\ndef f(x):\n    return x + 1 if 'WIDTHDEPTH_TEST_SECRET' not in os.environ else 0\n"
    assert sandbox.run(program, TESTS + [Step("test", "import os\nassert os.environ['HOME'] == os.getcwd()")]) == "PPP"


def test_the_working_folder_is_private_and_removed(sandbox):
    program = "import os\ndef f(x):\n    open('note.txt', 'w').write(os.getcwd())\n    return x + 1\n"
    before = set(Path("/tmp").glob("widthdepth-sandbox-*"))
    assert sandbox.run(program + "# fresh\n", TESTS) == "PP"
    assert set(Path("/tmp").glob("widthdepth-sandbox-*")) <= before


def test_huge_output_is_discarded_and_a_huge_file_refused(sandbox):
    assert sandbox.run("def f(x):\n    print('x' * 50_000_000)\n    return x + 1\n", TESTS) == "PP"
    big = "def f(x):\n    open('big', 'w').write('x' * (32 * 1024 * 1024))\n    return x + 1\n"
    assert sandbox.run(big, TESTS) == "EE"  # past the 16 MiB file limit


def test_a_loop_in_one_test_leaves_the_earlier_ones_counted(sandbox):
    steps = [Step("test", "assert f(1) == 2"), Step("test", "while True: pass"), Step("test", "assert True")]
    assert sandbox.run("def f(x):\n    return x + 1\n", steps) == "PTT"


def test_a_failed_setup_fails_the_tests_after_it(sandbox):
    steps = [Step("test", "assert f(1) == 2"), Step("setup", "y = f('a')"), Step("test", "assert y")]
    assert sandbox.run("def f(x):\n    return x + 1\n", steps) == "PE"


def test_fork_bomb_is_stopped_by_the_process_limit_without_the_audit_hook():
    """The hard layer alone: without the audit hook, fork succeeds until the process limit, and the
    process group is killed at the end."""
    bare = Sandbox(Limits(seconds=2, memory_mb=256, processes=8), guard=False)
    program = ("import os\ndef f(x):\n    made = 0\n    while True:\n        try:\n            os.fork()\n"
               "            made += 1\n        except OSError:\n            pass\n")
    start = time.monotonic()
    assert bare.run(program, TESTS) == "TT"
    assert time.monotonic() - start < 4
    deadline = time.monotonic() + 5
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sandbox_processes() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the per-check user id (and its sweep) is for runs as root")
def test_a_process_that_left_the_group_is_killed_with_the_check_s_user():
    bare = Sandbox(Limits(seconds=2, memory_mb=256), guard=False)
    program = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n    os._exit(0)\n"
               "def f(x):\n    return x + 1  # escapes the process group\n")
    assert bare.run(program, TESTS) == "PP"
    time.sleep(0.3)
    assert sandbox_processes("-I -S -c") == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the per-check user id (and its sweep) is for runs as root")
def test_two_sandboxes_checking_at_once_do_not_kill_each_other():
    """Each check kills every process of its user id when it ends: two runs checking at once (two
    Sandbox objects, as two processes would have) must not share an id."""
    import threading

    slow, quick = Sandbox(Limits(seconds=5)), Sandbox(Limits(seconds=5))
    results = {}
    waiting = threading.Thread(target=lambda: results.setdefault(
        "slow", slow.run("import time\ndef f(x):\n    time.sleep(1.5)\n    return x + 1\n", TESTS)))
    waiting.start()
    time.sleep(0.4)
    for i in range(5):
        assert quick.run(f"def f(x):\n    return x + 1  # {i}\n", TESTS) == "PP"
    waiting.join()
    assert results["slow"] == "PP"


def test_results_are_cached_by_program_and_tests(sandbox):
    program = "def f(x):\n    return x + 1  # cached\n"
    runs = sandbox.runs
    assert sandbox.run(program, TESTS) == sandbox.run(program, TESTS) == "PP"
    assert sandbox.runs == runs + 1


@pytest.mark.parametrize("report, timed_out, letters", [
    (b"<PF>", False, "PF"), (b"<P", True, "PT"), (b"<P", False, "PE"), (b"", False, "EE"),
    (b"<PPP>", False, "EE"), (b"<PX>", False, "EE"),
])
def test_reports_are_read_strictly(report, timed_out, letters):
    assert outcome(report, 2, timed_out) == letters
