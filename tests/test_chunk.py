"""Chunks of problems run away from the store (`execute.chunk`): an executor writing into a `ChunkSink`
whose writes the store applies afterwards leaves exactly the store of an ordinary run — chunk by
chunk, resumed over a partial store, and after a chunk cut short and run again."""

from __future__ import annotations

import pytest

from widthdepth.backends import BackendOptions, load_backend
from widthdepth.backends.mock import MockBackend
from widthdepth.config import RunConfig
from widthdepth.execute import NoProgress
from widthdepth.errors import WidthdepthError
from widthdepth.execute.chunk import ChunkSink, apply, prefetch
from widthdepth.execute.dispatch import Lost, ThreadPool, dispatch
from widthdepth.execute.units import Unit, merge, run_unit, split, units_of
from widthdepth.plans import load_plan
from widthdepth.runner import prepare, run
from widthdepth.store import Store
from widthdepth.tasks import load_task
from widthdepth.verifiers import load_verifier


def chunked(config: RunConfig, backend, size: int, cut: int | None = None) -> tuple[int, list]:  # noqa: ANN001
    """Run `config` unit by unit, each split into chunks of about `size` problems run through sinks, as
    replicas would; `cut`: the first chunk's writes are applied only that far, then the chunk is run
    again. Returns (attempts generated, each unit's merged outcome)."""
    prepared = prepare(config)
    store = Store.open(config.out)
    generated, outcomes = 0, []
    try:
        store.put_model(backend.info)
        problems = {f.spec: f.problems(config.problems, config.seed) for f in prepared.families}
        for family in prepared.families:
            store.put_problems(problems[family.spec])
        verifiers = {f.spec: load_verifier(config.verifier, f, backend) for f in prepared.families}
        first = True
        for unit in units_of(prepared.families, prepared.plans, problems, lambda plan: 1):
            parts = []
            for chunk in split(unit, size, backend.info):
                for again in ((True, False) if first and cut is not None else (False,)):
                    sink = prefetch(store, backend.info.id, [p.key for p in chunk.problems])
                    outcome, made, _ = run_unit(sink, backend, config, chunk, verifiers[unit.family.spec], NoProgress())
                    generated += made
                    apply(store, sink.outbox[:cut] if again else sink.outbox)
                first = False
                parts.append(outcome)
            outcomes.append(merge(parts))
        return generated, outcomes
    finally:
        store.close()


def keys(outcome) -> list:  # noqa: ANN001
    """What a unit's outcome holds, timing aside: problems, and the attempts of each chain or each
    method outcome's answer."""
    problems = [p.key for p in outcome.problems]
    if hasattr(outcome, "chains"):
        chains = {key: [[a.key for a in chain] for chain in chains] for key, chains in outcome.chains.items()}
        return [problems, chains, sorted(outcome.verifications)]
    return [problems, [(o.problem_key, o.answer, o.correct, o.attempts) for o in outcome.outcomes]]


def snapshot(folder) -> dict:  # noqa: ANN001
    store = Store.open(folder, create=False)
    try:
        return store.snapshot()
    finally:
        store.close()


def text_config(out, plans=("grid:4x3", "parallel:6")) -> RunConfig:  # noqa: ANN001
    return RunConfig(model="mock:", tasks=["chain:L=2", "search"], plans=list(plans), problems=7, verifier="self",
                     out=str(out))


def test_text_chunks_give_the_store_and_outcomes_of_one_run(tmp_path):
    result = run(text_config(tmp_path / "whole"), backend=MockBackend())
    generated, outcomes = chunked(text_config(tmp_path / "chunks"), MockBackend(), size=3)
    whole = snapshot(tmp_path / "whole")
    assert whole["attempts"] and whole["verifications"]
    assert snapshot(tmp_path / "chunks") == whole
    assert generated == len(whole["attempts"])  # grid:4x3 holds parallel:6's first 4 chains: read back
    assert [keys(o) for o in outcomes] == [keys(o) for o in result.plan_runs]


def test_a_chunk_cut_short_runs_again_without_regenerating_what_arrived(tmp_path):
    run(text_config(tmp_path / "whole"), backend=MockBackend())
    generated, _ = chunked(text_config(tmp_path / "cut"), MockBackend(), size=4, cut=5)
    whole = snapshot(tmp_path / "whole")
    assert snapshot(tmp_path / "cut") == whole
    assert generated > len(whole["attempts"])  # the first chunk ran twice ...
    rerun, _ = chunked(text_config(tmp_path / "cut"), MockBackend(), size=4)
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

    result = run(config(tmp_path / "whole"), backend=reasoner)
    _, outcomes = chunked(config(tmp_path / "chunks"), reasoner, size=50)  # whole blocks: 64
    whole = snapshot(tmp_path / "whole")
    assert whole["method_points"] and len(whole["attempts"]) > 128 * 12
    assert snapshot(tmp_path / "chunks") == whole
    assert [keys(o) for o in outcomes] == [keys(o) for o in result.plan_runs + result.methods]


def test_latent_units_split_at_whole_blocks_only(reasoner):
    family = load_task("chain:L=3")
    problems = family.problems(150, 0)
    sizes = {plan: [len(c.problems) for c in split(Unit(family, load_plan(plan), 0, problems), 10, reasoner.info)]
             for plan in ("grid:4x3", "beam:2,2,steps=4", "early:8")}
    assert sizes == {"grid:4x3": [64, 64, 22], "beam:2,2,steps=4": [64, 64, 22], "early:8": [150]}
    text = split(Unit(family, load_plan("early:8"), 0, problems), 70, MockBackend().info)
    assert [len(c.problems) for c in text] == [70, 70, 10]


class Dying(MockBackend):
    """A mock replica whose backend dies (`Lost`) at its `at`-th sample, `times` times over all replicas."""

    deaths = 0

    def __init__(self, at: int, times: int) -> None:
        super().__init__()
        self.at, self.times, self.requests = at, times, 0

    def generate(self, requests):  # noqa: ANN001, ANN201
        for sample in super().generate(requests):
            self.requests += 1
            if self.requests == self.at and Dying.deaths < self.times:
                Dying.deaths += 1
                raise Lost(f"replica killed at sample {self.at}")
            yield sample


def dispatched(config: RunConfig, make_backend, replicas: int, size: int, make_pool=None) -> list:  # noqa: ANN001
    """`config` run by `dispatch` on replicas (threads, or `make_pool(replicas, config, families)`): each
    unit's (outcome, generated, reused)."""
    prepared = prepare(config)
    problems = {f.spec: f.problems(config.problems, config.seed) for f in prepared.families}
    driver = make_backend()
    store = Store.open(config.out)
    pool = make_pool(replicas, config, prepared.families) if make_pool else ThreadPool(
        replicas, make_backend, config,
        lambda backend: {f.spec: load_verifier(config.verifier, f, backend) for f in prepared.families})
    try:
        store.put_model(driver.info)
        for family in prepared.families:
            store.put_problems(problems[family.spec])
        units = units_of(prepared.families, prepared.plans, problems, lambda plan: 1)
        return dispatch(store, units, pool, size, driver.info)
    finally:
        pool.close()
        store.close()
        driver.close()


def test_replicas_give_the_store_and_outcomes_of_one_run(tmp_path):
    result = run(text_config(tmp_path / "whole"), backend=MockBackend())
    done = dispatched(text_config(tmp_path / "pool"), MockBackend, replicas=2, size=2)
    assert snapshot(tmp_path / "pool") == snapshot(tmp_path / "whole")
    assert [keys(outcome) for outcome, _, _ in done] == [keys(o) for o in result.plan_runs]
    assert sum(generated for _, generated, _ in done) == result.generated


def test_a_lost_replica_has_its_chunk_run_again(tmp_path):
    result = run(text_config(tmp_path / "whole"), backend=MockBackend())
    Dying.deaths = 0
    done = dispatched(text_config(tmp_path / "pool"), lambda: Dying(at=5, times=2), replicas=2, size=3)
    assert Dying.deaths == 2
    assert snapshot(tmp_path / "pool") == snapshot(tmp_path / "whole")
    assert [keys(outcome) for outcome, _, _ in done] == [keys(o) for o in result.plan_runs]


def test_a_chunk_lost_again_and_again_stops_the_run_keeping_what_came_back(tmp_path):
    Dying.deaths = 0
    with pytest.raises(WidthdepthError, match="lost its replica 3 times"):
        dispatched(text_config(tmp_path / "pool"), lambda: Dying(at=1, times=99), replicas=1, size=3)
    Dying.deaths = 99  # no more deaths: the rerun resumes and ends with the store of one run
    dispatched(text_config(tmp_path / "pool"), lambda: Dying(at=1, times=0), replicas=2, size=3)
    run(text_config(tmp_path / "whole"), backend=MockBackend())
    assert snapshot(tmp_path / "pool") == snapshot(tmp_path / "whole")


def test_a_chunk_waits_only_for_earlier_chunks_of_its_task_holding_its_problems():
    from widthdepth.execute.dispatch import _after

    families = [load_task("chain:L=2"), load_task("search")]
    problems = {f.spec: f.problems(4, 0) for f in families}
    units = units_of(families, [load_plan("grid:2x2"), load_plan("parallel:4")], problems, lambda plan: 1)
    chunks = [(u, chunk) for u, unit in enumerate(units) for chunk in split(unit, 2, MockBackend().info)]
    # chain grid 0,1 · chain parallel 2,3 · search grid 4,5 · search parallel 6,7
    assert _after(chunks) == [set(), set(), {0}, {1}, set(), set(), {4}, {5}]


@pytest.mark.parametrize("model", ["mock:fail=0.2", "builtin:reasoner"])
def test_a_prefetch_reads_what_the_stores_views_read(tmp_path, model):
    """`store_read.problem_rows` (the prefetch) against `Store.attempts` and `verifications_of`: failures,
    parents of revise rounds, verifications, a latent model's rows."""
    from widthdepth.store_read import problem_rows

    config = RunConfig(model=model, tasks=["chain:L=2"], plans=["grid:3x3", "beam:2,2,steps=3"] if model.startswith(
        "builtin") else ["grid:3x3"], problems=5, verifier="self" if model.startswith("mock") else "auto",
        out=str(tmp_path / "run"))
    run(config)
    store = Store.open(config.out, create=False)
    try:
        info_id = store.db.execute("SELECT id FROM models").fetchone()[0]
        keys = [r[0] for r in store.db.execute("SELECT key FROM problems ORDER BY key")][1:4]
        attempts, verifications = problem_rows(store, info_id, keys)
        expected = [a for key in sorted(keys) for a in store.attempts(model=info_id, problem_key=key)]
        assert attempts == expected and any(a.parent_key for a in attempts)
        assert model.startswith("builtin") or any(a.failed for a in attempts)
        assert sorted(verifications, key=repr) == sorted(store.verifications_of(a.key for a in expected), key=repr)
        assert verifications and problem_rows(store, info_id, ["no such problem"]) == ([], [])
    finally:
        store.close()
