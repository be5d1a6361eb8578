"""Threads for CPU decoding on a machine that others share.

llama.cpp's threads meet at a spinning barrier after every operation, so one thread that shares its
core with another process holds all the others up: on this project's 2-core machine, with one core
taken by a busy loop, SmolLM2 decoded 53 tokens/s with 2 threads and 113 with 1 (221 with 2 when
idle; `benchmarks/RESULTS.md`). With `--threads 0` (the default) the llama.cpp backend therefore
decodes with as many threads as there are cores that other processes leave free, measured from the
kernel's CPU counters, and follows the machine as that changes (`ThreadGovernor`, every second;
`llama_set_n_threads`: the thread count does not change the floats, so samples stay exact).
`--threads N` fixes N threads.

    governor = ThreadGovernor(max_threads=2)
    threads = governor.start()           # now: 2 on an idle machine, 1 with a core taken
    changed = governor.tick()            # later, between decoding steps: a new count, or None
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

STAT = "/proc/stat"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def busy_cpu_seconds(path: str = STAT) -> float | None:
    """CPU seconds spent busy by the whole machine since boot (None where the kernel has no /proc/stat)."""
    try:
        with open(path) as handle:
            fields = handle.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class ThreadGovernor:
    """Chooses the thread count from the cores that other processes keep busy: the machine's busy
    CPU time minus this process's own, per second of wall time, smoothed over a few seconds."""

    def __init__(self, max_threads: int, interval: float = 1.0, smoothing: float = 0.5,
                 machine: Callable[[], float | None] = busy_cpu_seconds,
                 own: Callable[[], float] = time.process_time, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_threads, self.interval, self.smoothing = max(1, max_threads), interval, smoothing
        self._machine, self._own, self._clock = machine, own, clock
        self.threads = self.max_threads
        self.others: float | None = None
        """Cores other processes keep busy (smoothed), once measured."""
        self.history: list[tuple[float, int]] = []
        """(others, threads) at every change: what the decoder did and why."""
        self._last: tuple[float, float, float] | None = None

    @property
    def active(self) -> bool:
        return self.max_threads > 1 and self._machine() is not None

    def start(self, settle: float = 0.25) -> int:
        """The thread count to begin with, from a short look at the machine (`settle` seconds)."""
        if not self.active:
            return self.threads
        self._last = self._sample()
        time.sleep(settle)
        self.tick(force=True)
        return self.threads

    def tick(self, force: bool = False) -> int | None:
        """Call between decoding steps: the new thread count when it should change, else None."""
        if self._last is None:
            if not self.active:
                return None
            self._last = self._sample()
            return None
        now = self._clock()
        if not force and now - self._last[0] < self.interval:
            return None
        sample = self._sample()
        wall = sample[0] - self._last[0]
        if wall <= 0:
            return None
        others = max(0.0, (sample[1] - self._last[1]) - (sample[2] - self._last[2])) / wall
        self._last = sample
        self.others = others if self.others is None else self.smoothing * self.others + (1 - self.smoothing) * others
        wanted = max(1, min(self.max_threads, self.max_threads - int(self.others + 0.35)))
        if wanted == self.threads:
            return None
        self.threads = wanted
        self.history.append((round(self.others, 2), wanted))
        return wanted

    def _sample(self) -> tuple[float, float, float]:
        return self._clock(), self._machine() or 0.0, self._own()
