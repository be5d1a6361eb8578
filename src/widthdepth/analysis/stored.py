"""A run folder's surface, its experiments read and estimated side by side in worker processes.

Each experiment (model, task, plan, seed, sampling) is read from the store and estimated on its own —
its bootstrap resamples and Monte Carlo orders are seeded per experiment — so a worker that reads and
estimates one gives exactly the numbers the report's own process would. A large store's report then
takes little more than 1/workers of the time; a small one is done in-process (starting a worker costs
about a second).

    surface = open_surface("runs/full")            # workers: one per core, for a large store
    surface = open_surface("runs/full", workers=1)  # in this process
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from functools import partial
from pathlib import Path

from widthdepth.analysis.surface import Surface, TraceSurface, estimate_trace_surface
from widthdepth.analysis.traces import Experiment, Scope, experiments_in, read_trace
from widthdepth.store import Store

PARALLEL_FROM = 250_000
"""Stores with at least this many attempts are reported with workers by default. Measured on 2 cores
(benchmarks/RESULTS.md, 2026-12-03): the quick study's report (131,072 attempts) 2.9 s with 2 workers,
2.6 s without; the full study's (8.8 M attempts, 1.18 M of them the grid) 33.8 s with, 45.0 s without."""
MOST_WORKERS = 8
"""Workers at most by default: each holds one experiment's arrays besides its imports."""


def open_surface(folder: str | Path, scope: Scope | None = None, workers: int | None = None) -> Surface:
    """The surface of every grid experiment in the folder's store (what `scope` ran, if given), in the
    store's order, read and estimated in `workers` processes (None: one per available core, at most
    `MOST_WORKERS` and one per experiment, where the store holds `PARALLEL_FROM` attempts or more)."""
    store = Store.open(folder, create=False)
    try:
        experiments = experiments_in(store, scope)
        if workers is None:
            large = (store.db.execute("SELECT max(id) FROM attempt_rows").fetchone()[0] or 0) >= PARALLEL_FROM
            workers = min(len(os.sched_getaffinity(0)), MOST_WORKERS, len(experiments)) if large else 1
        if workers <= 1:
            names, settings = store.names(), store.settings_json()
            traces = (read_trace(store, e, scope, names, settings) for e in experiments)
            return Surface([estimate_trace_surface(t) for t in traces if t is not None])
    finally:
        store.close()
    pool = multiprocessing.get_context("spawn").Pool(workers, initializer=signal.signal,
                                                     initargs=(signal.SIGINT, signal.SIG_IGN))
    try:  # Ctrl-C reaches this process only: the workers are stopped, not left to finish
        surfaces = pool.map(partial(_estimate, Path(folder), scope), experiments, chunksize=1)
    finally:
        pool.terminate()
        pool.join()
    return Surface([s for s in surfaces if s is not None])


def _estimate(folder: Path, scope: Scope | None, experiment: Experiment) -> TraceSurface | None:
    """In a worker: one experiment's surface, its intervals made (they are what costs)."""
    store = Store.open(folder, create=False)
    try:
        trace = read_trace(store, experiment, scope)
    finally:
        store.close()
    if trace is None:
        return None
    surface = estimate_trace_surface(trace)
    surface.make_intervals()
    return surface
