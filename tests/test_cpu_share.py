"""Decoding on a shared machine: the thread governor follows the cores other processes leave free
(a real busy loop takes a core; the real model decodes meanwhile, samples unchanged), and the
progress line says when throughput collapses."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from widthdepth.backends.cpu_share import ThreadGovernor, available_cores, busy_cpu_seconds
from widthdepth.progress import ThroughputWatch


class Machine:
    """CPU counters advanced by hand: `others` cores busy besides this process's `own`."""

    def __init__(self) -> None:
        self.t = self.busy = self.mine = 0.0

    def run(self, seconds: float, others: float, own: float) -> None:
        self.t += seconds
        self.busy += seconds * (others + own)
        self.mine += seconds * own


def test_the_governor_gives_way_to_other_processes_and_takes_the_cores_back():
    m = Machine()
    governor = ThreadGovernor(4, interval=1.0, smoothing=0.0, machine=lambda: m.busy, own=lambda: m.mine,
                              clock=lambda: m.t)
    assert governor.tick() is None  # the first look only starts the counters
    m.run(1.0, others=0.1, own=4.0)
    assert governor.tick() is None and governor.threads == 4  # a little background work: all cores
    m.run(0.5, others=2.0, own=2.0)
    assert governor.tick() is None  # not a second yet
    m.run(0.5, others=2.0, own=2.0)
    assert governor.tick() == 2  # two cores taken by others
    m.run(1.0, others=3.9, own=0.1)
    assert governor.tick() == 1  # never fewer than one
    m.run(1.0, others=0.0, own=1.0)
    assert governor.tick() == 4
    assert governor.history == [(2.0, 2), (3.9, 1), (0.0, 4)]
    assert ThreadGovernor(1).tick() is None and not ThreadGovernor(1).active  # one core: nothing to choose


def test_the_throughput_watch_warns_once_when_throughput_collapses():
    watch = ThroughputWatch(window=10.0)
    said = [watch.add(tokens, now) for now, tokens in [(0, 0), (5, 500), (10, 500), (20, 1000), (30, 900)]]
    assert said == [None] * 5 and watch.best == 100
    line = watch.add(250, 40)  # 25 tokens/s after 100
    assert line.startswith("throughput fell from 100 to 25 tokens/s") and "--threads" in line
    assert watch.add(10, 50) is None  # once


@pytest.mark.model
@pytest.mark.skipif(available_cores() < 2 or busy_cpu_seconds() is None, reason="needs 2 cores and /proc/stat")
def test_a_busy_core_lowers_the_threads_and_leaves_samples_unchanged():
    from widthdepth.backends import BackendOptions, GenerationRequest, load_backend

    request = GenerationRequest(messages=(("user", "Count from 1 to 60, one number per line."),), n=16,
                                max_tokens=72, temperature=0.8, seed=5)
    fixed = load_backend("llamacpp:smollm2-135m", BackendOptions(threads=available_cores(), context_length=512))
    try:
        assert fixed.decoder.governor is None  # --threads N: exactly N
        expected = {s.sample_index: s.completion.text for s in fixed.generate([request])}
    finally:
        fixed.close()
    auto = load_backend("llamacpp:smollm2-135m", BackendOptions(threads=0, context_length=512))
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(available_cores() - 1)]
    try:
        time.sleep(0.5)
        got = {s.sample_index: s.completion.text for s in auto.generate([request])}
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
        auto.close()
    governor = auto.decoder.governor
    assert got == expected
    assert governor.history and min(threads for _, threads in governor.history) < available_cores(), governor.history
