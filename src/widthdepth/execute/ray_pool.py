"""Replicas as Ray actors (`pip install 'widthdepth[ray]'`): each loads the model once, builds the
task's verifiers itself (neither pickles) and runs the chunks `execute.dispatch` sends it, streaming
its writes back; the driver alone writes the store. Ray is imported here only.

    with cluster("ray:10.0.0.5:6379"):                 # joins it (or starts one here for plain "ray")
        pool = start(config, families, api_key=None)     # as many replicas as fit, each checked
        info, verifier_params = pool.check(plans, structures)
        outcomes = dispatch(store, units, pool, config.chunk, info)

Start-up problems (no cluster at the address, another Ray version, a replica asking for more than any
node has, a model that does not load on a worker) are one-line `WidthdepthError`s raised before the
caller touches a store.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import ray

from widthdepth.backends import BackendOptions, load_backend, resolve_model
from widthdepth.backends.base import ModelInfo
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.execute.chunk import ChunkSink
from widthdepth.execute.dispatch import Done, Failed, Part, Report, run_chunk
from widthdepth.execute.fit import check_loaded
from widthdepth.execute.units import Unit
from widthdepth.tasks import TaskFamily
from widthdepth.verifiers import load_verifier


@contextlib.contextmanager
def cluster(executor: str) -> Iterator[None]:
    """Connected to the cluster `executor` names for the block: ray:HOST:PORT (a head's GCS address),
    ray:auto (the cluster this machine joined with `ray start`), or plain ray ($RAY_ADDRESS, else a
    cluster of this machine's cores started for the block). Already connected (`ray.init` by the
    caller): that cluster, left connected."""
    address = executor.partition(":")[2] or os.environ.get("RAY_ADDRESS") or "local"
    option = f"--executor {executor}"
    if address not in ("local", "auto") and "://" not in address:  # ray.init would retry for 14 minutes
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=3).close()
        except (OSError, ValueError):
            raise WidthdepthError(f"{option}: no Ray cluster answers at {address}; start its head with `ray start "
                                  "--head` and pass the address it prints (HOST:PORT)") from None
    if ray.is_initialized():
        yield
        return
    try:
        ray.init(address=address, log_to_driver=False, logging_level="warning",
                 **({"include_dashboard": False} if address == "local" else {}))
    except ConnectionError as exc:
        raise WidthdepthError(f"{option}: {str(exc).splitlines()[0]}; start a head with `ray start --head`, or "
                              "use plain --executor ray for a cluster of this machine") from None
    except RuntimeError as exc:
        if "version mismatch" not in str(exc).lower():
            raise
        raise WidthdepthError(f"{option}: {str(exc).splitlines()[0]} (install the cluster's Ray and Python "
                              "versions here, or run from a node of it)") from None
    try:
        yield
    finally:
        ray.shutdown()


class Replica:
    """One model replica on a Ray worker. A model that fails to load is kept as the error's line, which
    `check` returns (Ray's own error for a failed actor is a traceback)."""

    def __init__(self, config: RunConfig, families: list[TaskFamily], options: BackendOptions) -> None:
        self.config, self.error = config, ""
        self.backend: Any = None
        self.verifiers: dict[str, Any] = {}
        try:
            self.backend = load_backend(config.model, options)
            self.verifiers = {f.spec: load_verifier(config.verifier, f, self.backend, api_key=options.api_key)
                              for f in families}
        except WidthdepthError as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the run's one line
            self.error = f"{type(exc).__name__}: {exc}"

    def check(self, plans: list, structures: dict[str, Any]) -> tuple[str, Any]:
        """("ok", (ModelInfo, verifier parameters)) or ("error", the line)."""
        if self.error:
            return "error", self.error
        try:
            check_loaded(plans, self.backend, self.verifiers, structures)
        except WidthdepthError as exc:
            return "error", str(exc)
        return "ok", (self.backend.info, {v.name: v.n_params for v in self.verifiers.values() if v is not None})

    def failures(self) -> list[str]:
        return [r for v in self.verifiers.values() for r in getattr(v, "failures", [])]

    def run(self, chunk: Unit, sink: ChunkSink) -> Iterator[Part | Done | Failed]:
        """Parts as the chunk runs (in a thread of this actor), then its `Done`, or the `Failed` it stopped with."""
        items: queue.Queue = queue.Queue()

        def work() -> None:
            try:
                items.put(run_chunk(self.backend, self.config, self.verifiers[chunk.family.spec], chunk, sink,
                                    items.put))
            except Failed as exc:
                items.put(exc)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller below
                items.put(("raise", exc))

        threading.Thread(target=work, name="widthdepth-chunk", daemon=True).start()
        while True:
            item = items.get()
            if isinstance(item, tuple):
                raise item[1]
            yield item
            if not isinstance(item, Part):
                return

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


class RayPool:
    """`execute.dispatch.Pool` on Ray: `replicas` actors of `cpus` CPUs and `gpus` GPUs each."""

    lost = (ray.exceptions.RayActorError,)

    def __init__(self, replicas: int, config: RunConfig, families: list[TaskFamily], cpus: float = 1,
                 gpus: float = 0, api_key: str | None = None) -> None:
        threads = config.threads or max(1, math.floor(cpus))  # --threads 0 on a replica: the CPUs it holds
        self.options = BackendOptions(threads, config.context_length, api_key, replicas)
        self.replicas, self.config, self.families = replicas, config, families
        self.actor = ray.remote(Replica).options(num_cpus=cpus, num_gpus=gpus)
        self.actors: list[Any] = [self._new() for _ in range(replicas)]

    def _new(self) -> Any:
        return self.actor.remote(self.config, self.families, self.options)

    def check(self, plans: list, structures: dict[str, Any]) -> tuple[ModelInfo, dict[str, int]]:
        """The model and verifiers every replica loaded, checked for the run as a local run checks them;
        a replica that failed, or loaded another model, stops the run in one line."""
        answers = ray.get([actor.check.remote(plans, structures) for actor in self.actors])
        for status, value in answers:
            if status == "error":
                raise WidthdepthError(f"--executor {self.config.executor}: on a replica: {value}")
        infos = {value[0] for _, value in answers}
        if len(infos) > 1:
            raise WidthdepthError(f"--executor {self.config.executor}: replicas loaded different models "
                                  f"({', '.join(sorted(i.id for i in infos))}); every node needs the same model files")
        return answers[0][1]

    @property
    def failures(self) -> list[str]:
        """Verifications that failed on the replicas (left unverified; a rerun retries them)."""
        return [r for failed in ray.get([a.failures.remote() for a in self.actors]) for r in failed]

    def submit(self, replica: int, chunk: Unit, sink: ChunkSink, report: Report) -> Future:
        stream = self.actors[replica].run.options(num_returns="streaming").remote(chunk, sink)
        future: Future = Future()
        threading.Thread(target=_follow, args=(stream, report, future), name="widthdepth-follow", daemon=True).start()
        return future

    def replace(self, replica: int) -> None:
        ray.kill(self.actors[replica])
        self.actors[replica] = self._new()

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)


def _follow(stream: Any, report: Callable[[Part], None], future: Future) -> None:
    """A chunk's stream into `report` and `future` (a driver thread per running chunk)."""
    try:
        for ref in stream:
            item = ray.get(ref)
            if isinstance(item, Part):
                report(item)
                continue
            if isinstance(item, Failed):
                future.set_exception(item)
            else:
                future.set_result(item)
            return
        future.set_exception(ray.exceptions.RayActorError())
    except BaseException as exc:  # noqa: BLE001 - the dispatcher decides: a lost replica or the run's error
        future.set_exception(exc)


def fitting(cpus: float, gpus: float) -> int:
    """How many replicas of `cpus` CPUs and `gpus` GPUs the cluster's live nodes hold."""
    total = 0
    for node in ray.nodes():
        if node.get("Alive"):
            held = node.get("Resources", {})
            fit = math.floor(held.get("CPU", 0) / cpus + 1e-9) if cpus else 10**6
            if gpus:
                fit = min(fit, math.floor(held.get("GPU", 0) / gpus + 1e-9))
            total += fit
    return total


def start(config: RunConfig, families: list[TaskFamily], api_key: str | None = None) -> RayPool:
    """The run's replicas: `config.replicas` of them (0: as many as fit), each loading the model."""
    spec, gpus = resolve_model(config.model), config.replica_gpus
    if spec.scheme == "vllm" and not gpus:
        gpus = float(spec.params.get("tensor_parallel_size", 1))  # vLLM's ranks on the GPUs the replica holds
    fit = fitting(config.replica_cpus, gpus)
    wanted = config.replicas or fit
    if fit == 0 or wanted > fit:
        have = ray.cluster_resources()
        raise WidthdepthError(
            f"--replicas {config.replicas or 'auto'}: the cluster holds {fit} replicas of {config.replica_cpus:g} "
            f"CPUs and {gpus:g} GPUs (it has {have.get('CPU', 0):g} CPUs, {have.get('GPU', 0):g} GPUs over its "
            "nodes); lower --replicas, --replica-cpus or --replica-gpus, or add nodes")
    return RayPool(wanted, config, families, config.replica_cpus, gpus, api_key)
