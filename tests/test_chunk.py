"""Chunks of problems run away from the store (`execute.chunk`): an executor writing into a `ChunkSink`
whose writes the store applies afterwards leaves exactly the store of an ordinary run — chunk by
chunk, resumed over a partial store, and after a chunk cut short and run again."""

from __future__ import annotations

import pytest

from widthdepth.backends import BackendOptions, load_backend
from widthdepth.backends.mock import MockBackend
from widthdepth.config import RunConfig
from widthdepth.execute import NoProgress, executor_for
from widthdepth.execute.chunk import ChunkSink, apply, prefetch
from widthdepth.runner import prepare, run
from widthdepth.store import Store
from widthdepth.verifiers import load_verifier


def chunked(config: RunConfig, backend, size: int, cut: int | None = None) -> int:  # noqa: ANN001
    """Run `config` chunk by chunk of `size` problems through sinks, as a replica would; `cut`: the first
    chunk's writes are applied only that far, then the chunk is run again. Returns attempts generated."""
    prepared = prepare(config)
    store = Store.open(config.out)
    generated = 0
    try:
        store.put_model(backend.info)
        for family in prepared.families:
            problems = family.problems(config.problems, config.seed)
            store.put_problems(problems)
            verifier = load_verifier(config.verifier, family, backend)
            for plan in prepared.plans:
                for start in range(0, len(problems), size):
                    part = problems[start:start + size]
                    tries = 2 if cut is not None and start == 0 else 1
                    for attempt in range(tries):
                        sink = prefetch(store, backend.info.id, [p.key for p in part])
                        executor = executor_for(plan, backend)(sink, backend, config, family, plan, part, verifier,
                                                               NoProgress())
                        executor.execute()
                        generated += executor.generated
                        apply(store, sink.outbox[:cut] if attempt < tries - 1 else sink.outbox)
        return generated
    finally:
        store.close()


def snapshot(folder) -> dict:  # noqa: ANN001
    store = Store.open(folder, create=False)
    try:
        return store.snapshot()
    finally:
        store.close()


def text_config(out, plans=("grid:4x3", "parallel:6")) -> RunConfig:  # noqa: ANN001
    return RunConfig(model="mock:", tasks=["chain:L=2", "search"], plans=list(plans), problems=7, verifier="self",
                     out=str(out))


def test_text_chunks_give_the_store_of_one_run(tmp_path):
    run(text_config(tmp_path / "whole"), backend=MockBackend())
    generated = chunked(text_config(tmp_path / "chunks"), MockBackend(), size=3)
    whole = snapshot(tmp_path / "whole")
    assert whole["attempts"] and whole["verifications"]
    assert snapshot(tmp_path / "chunks") == whole
    assert generated == len(whole["attempts"])  # grid:4x3 holds parallel:6's first 4 chains: read back


def test_a_chunk_cut_short_runs_again_without_regenerating_what_arrived(tmp_path):
    run(text_config(tmp_path / "whole"), backend=MockBackend())
    generated = chunked(text_config(tmp_path / "cut"), MockBackend(), size=4, cut=5)
    whole = snapshot(tmp_path / "whole")
    assert snapshot(tmp_path / "cut") == whole
    assert generated > len(whole["attempts"])  # the first chunk ran twice ...
    rerun = chunked(text_config(tmp_path / "cut"), MockBackend(), size=4)
    assert rerun == 0 and snapshot(tmp_path / "cut") == whole  # ... and a third run generates nothing


def test_chunks_resume_a_store_an_ordinary_run_began(tmp_path):
    run(text_config(tmp_path / "whole"), backend=MockBackend())
    run(text_config(tmp_path / "mixed", plans=["grid:2x2"]), backend=MockBackend())  # began locally
    chunked(text_config(tmp_path / "mixed"), MockBackend(), size=2)
    mixed, whole = snapshot(tmp_path / "mixed"), snapshot(tmp_path / "whole")
    assert mixed == whole


def test_the_sink_keeps_the_stores_rules():
    from tests.test_store_schema import attempt

    ok, failed = attempt("a" * 64), attempt("b" * 64, status="failed")
    sink = ChunkSink([ok, failed], [], [])
    sink.put_attempt(attempt("a" * 64, text="other"))  # a stored success is kept
    retried = attempt("b" * 64)
    sink.put_attempt(retried)  # a stored failure is replaced
    assert sink.get_attempt("a" * 64) == ok and sink.get_attempt("b" * 64) == retried
    assert sink.outbox == [("put_attempt", (retried,))]


@pytest.fixture(scope="module")
def reasoner():
    backend = load_backend("builtin:reasoner", BackendOptions(0, None, None))
    yield backend
    backend.close()


def test_latent_chunks_with_a_search_method_give_the_store_of_one_run(tmp_path, reasoner):
    """Latent executors sample 64-problem blocks: chunks of whole blocks; the beam search writes trees
    and method points through the sink."""
    def config(out):  # noqa: ANN001
        return RunConfig(model="builtin:reasoner", tasks=["chain:L=3"], problems=128, out=str(out),
                         plans=["grid:4x3", "beam:2,2,steps=4"])

    run(config(tmp_path / "whole"), backend=reasoner)
    chunked(config(tmp_path / "chunks"), reasoner, size=64)
    whole = snapshot(tmp_path / "whole")
    assert whole["method_points"] and len(whole["attempts"]) > 128 * 12
    assert snapshot(tmp_path / "chunks") == whole
