"""Replicas as Ray actors (`pip install 'widthdepth[ray]'`): each loads the model once, builds the
task's verifiers itself (neither pickles) and runs the chunks `execute.dispatch` sends it; the driver
alone writes the store. Ray is imported here only.

    pool = RayPool(2, config, families, cpus=1)   # after ray.init(...)
    outcomes = dispatch(store, units, pool, chunk_size, pool.info())
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import ray

from widthdepth.backends import BackendOptions, load_backend
from widthdepth.backends.base import ModelInfo
from widthdepth.config import RunConfig
from widthdepth.execute.chunk import ChunkSink
from widthdepth.execute.dispatch import Done, run_chunk
from widthdepth.execute.units import Unit
from widthdepth.tasks import TaskFamily
from widthdepth.verifiers import load_verifier


class Replica:
    """One model replica on a Ray worker."""

    def __init__(self, config: RunConfig, families: list[TaskFamily]) -> None:
        self.config = config
        self.backend = load_backend(config.model, BackendOptions(config.threads, config.context_length, None))
        self.verifiers = {f.spec: load_verifier(config.verifier, f, self.backend) for f in families}

    def info(self) -> ModelInfo:
        return self.backend.info

    def run(self, chunk: Unit, sink: ChunkSink) -> Done:
        return run_chunk(self.backend, self.config, self.verifiers[chunk.family.spec], chunk, sink)


class RayPool:
    """`execute.dispatch.Pool` on Ray: `replicas` actors of `cpus` CPUs and `gpus` GPUs each."""

    lost = (ray.exceptions.RayActorError,)

    def __init__(self, replicas: int, config: RunConfig, families: list[TaskFamily], cpus: float = 1,
                 gpus: float = 0) -> None:
        self.replicas, self.config, self.families = replicas, config, families
        self.actor = ray.remote(Replica).options(num_cpus=cpus, num_gpus=gpus)
        self.actors: list[Any] = [self.actor.remote(config, families) for _ in range(replicas)]

    def info(self) -> ModelInfo:
        """The model as a replica loaded it."""
        return ray.get(self.actors[0].info.remote())

    def submit(self, replica: int, chunk: Unit, sink: ChunkSink) -> Future:
        return self.actors[replica].run.remote(chunk, sink).future()

    def replace(self, replica: int) -> None:
        ray.kill(self.actors[replica])
        self.actors[replica] = self.actor.remote(self.config, self.families)

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
