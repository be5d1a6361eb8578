"""The program that runs inside the code sandbox's subprocess (see `widthdepth.tasks.sandbox`).

It is never imported by widthdepth: the parent passes this file's text to ``python -I -S -c`` in a
fresh process, with the job (program, test steps, limits) as JSON on stdin. In order, it:

1. reads the job, keeps a private copy of stdout for its report and points fds 0-2 at /dev/null,
   so nothing the program prints reaches the parent (output is capped at zero);
2. lowers its resource limits (address space, CPU seconds, file size, open files, processes, core
   dumps) — limits a process may lower but never raise again;
3. installs an audit hook (PEP 578) that refuses process creation, signals to other processes,
   sockets, ctypes (and importing the C modules behind them), and file access outside its temporary
   folder (reads also from the standard library's folders). An audit hook is not a security boundary
   against a determined attacker; the resource limits, the check's own user id, its killed process
   group and processes are the hard layer. The report travels on a file descriptor of this process,
   so a program written to forge it can: this checks honest attempts, not adversaries;
4. runs the program, then each step; after each test step it writes one letter: P passed,
   F failed (an AssertionError), E error (any other exception, SystemExit included).
   ``<`` opens the report and ``>`` closes it; a report without ``>`` was cut short.

Written for any Python 3.8 or newer: as root, the parent may run it with another interpreter
(one the unprivileged user can execute).
"""

import _thread
import json
import os
import resource
import signal
import sys

_BLOCKED = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill",
            "os.killpg", "subprocess.Popen", "pty.spawn", "socket.", "ctypes.", "resource.setrlimit",
            "resource.prlimit", "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
            "webbrowser.open", "urllib.Request", "http.client.connect", "ftplib.", "smtplib.", "imaplib.",
            "poplib.", "nntplib.", "telnetlib.")
_WRITES = ("os.remove", "os.rmdir", "os.rename", "os.replace", "os.mkdir", "os.chmod", "os.chown", "os.link",
           "os.symlink", "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copytree",
           "shutil.copyfile", "shutil.make_archive", "os.setxattr", "os.removexattr", "os.chflags")
_READS = ("os.listdir", "os.scandir", "os.chdir", "glob.glob", "os.listxattr", "os.getxattr", "shutil.unpack_archive")
_MODULES = {"_posixsubprocess", "_ctypes", "_socket", "_multiprocessing"}
"""Imports refused: their functions start processes, call C, or open sockets without raising audit events
(``_posixsubprocess.fork_exec`` starts a process in a session of its own, outside the killed group)."""
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _task_count(uid):
    """Threads already running as `uid` (RLIMIT_NPROC counts all of them, not just this process's)."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/" + name + "/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1 0").split()[0]) == uid:
            count += int(fields.get("Threads", "1"))
    return count


def _limit(kind, value):
    soft, hard = resource.getrlimit(kind)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (value, value))


def _lower_limits(limits):
    mb = 1024 * 1024
    _limit(resource.RLIMIT_AS, limits["memory_mb"] * mb)
    _limit(resource.RLIMIT_CPU, int(limits["seconds"]) + 1)
    _limit(resource.RLIMIT_FSIZE, limits["file_mb"] * mb)
    _limit(resource.RLIMIT_NOFILE, 64)
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NPROC, _task_count(os.getuid()) + limits["processes"])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file limit raises instead of killing


def _install_guard(folder):
    """Refuse what a test program has no business doing; see the module docstring."""
    real = os.path.realpath
    writable = [real(folder)]
    readable = writable + [real(p) for p in sys.path if p]
    busy = set()  # threads inside the hook: the hook's own path resolution raises events too

    def inside(path, roots):
        if isinstance(path, int) or path is None:
            return True  # an open file descriptor: its opening was checked
        resolved = real(os.fsdecode(path))
        return any(resolved == root or resolved.startswith(root + os.sep) for root in roots)

    def is_write(args):
        mode, flags = (args[1], args[2]) if len(args) >= 3 else (None, 0)
        return bool(isinstance(mode, str) and any(c in mode for c in "wax+") or (flags or 0) & _WRITE_FLAGS)

    def hook(event, args):
        thread = _thread.get_ident()
        if thread in busy:
            return
        busy.add(thread)
        try:
            if event == "import" and args and args[0] in _MODULES:
                raise PermissionError("sandbox: import " + args[0] + " is not allowed")
            if event.startswith(_BLOCKED):
                raise PermissionError("sandbox: " + event + " is not allowed")
            if event == "open":
                roots = writable if is_write(args) else readable
                if not inside(args[0], roots):
                    raise PermissionError("sandbox: no access to " + repr(args[0]))
            elif event.startswith(_WRITES) and not all(inside(a, writable) for a in args[:2] if isinstance(a, str)):
                raise PermissionError("sandbox: no writing outside the working folder")
            elif event.startswith(_READS) and args and isinstance(args[0], (str, bytes)) \
                    and not inside(args[0], readable):
                raise PermissionError("sandbox: no access to " + repr(args[0]))
        finally:
            busy.discard(thread)

    sys.addaudithook(hook)


def _run(job, report):
    namespace = {"__name__": "__solution__", "__builtins__": __builtins__}
    tests = sum(1 for kind, _ in job["steps"] if kind == "test")
    try:
        exec(compile(job["program"], "solution.py", "exec"), namespace)
        for alias, name in job["bind"].items():  # HumanEval's check(candidate) body runs with candidate bound
            namespace[alias] = namespace[name]
    except BaseException:
        report("E" * tests)
        return
    for index, (kind, code) in enumerate(job["steps"]):
        try:
            exec(compile(code, "tests.py", "exec"), namespace)
            letter = "P"
        except AssertionError:
            letter = "F"
        except BaseException:
            letter = "E"
        if kind == "test":
            report(letter)
        elif letter != "P":  # a failed setup step fails every test after it
            report("E" * sum(1 for k, _ in job["steps"][index + 1:] if k == "test"))
            return


def main():
    job = json.loads(sys.stdin.read())
    out = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")
    sys.dont_write_bytecode = True
    _lower_limits(job["limits"])
    if job["guard"]:
        _install_guard(os.getcwd())

    def report(letters):
        os.write(out, letters.encode())

    report("<")
    _run(job, report)
    report(">")
    os._exit(0)  # no atexit handlers or finalisers of the program


if __name__ == "__main__":  # run by `python -c`; importing it does nothing
    main()
