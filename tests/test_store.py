import sqlite3

import pytest

from widthdepth.attempts import Attempt
from widthdepth.errors import WidthdepthError
from widthdepth.store import DB_NAME, MIGRATIONS, Store


def attempt(key="k1", status="ok", text="Answer: 3"):
    return Attempt(key=key, model="mock:", task="chain:L=1,m=10", problem_key="p", w=0, d=1, mode="",
                   parent_key=None, seed=1, prompt="x", prompt_key="h", settings="{}", text=text, answer="3",
                   final_answer="3", correct=status == "ok" or None, finish_reason="stop", status=status,
                   error=None, prompt_tokens=5, completion_tokens=3, serial_tokens=3, wall_seconds=0.1,
                   created_at="2026-01-01")


def test_migrations_are_recorded_once(tmp_path):
    Store.open(tmp_path).close()
    store = Store.open(tmp_path)
    names = [r[0] for r in store.db.execute("SELECT name FROM schema_migrations")]
    assert names == [name for name, _ in MIGRATIONS]


def test_attempt_round_trip_and_success_is_never_overwritten(tmp_path):
    store = Store.open(tmp_path)
    store.put_attempt(attempt())
    store.put_attempt(attempt(text="something else"))
    assert store.get_attempt("k1") == attempt()


def test_failed_attempt_is_replaced_by_a_later_success(tmp_path):
    store = Store.open(tmp_path)
    store.put_attempt(attempt(status="failed", text=""))
    assert store.get_attempt("k1").failed
    store.put_attempt(attempt())
    assert not store.get_attempt("k1").failed


def test_a_newer_store_is_refused_untouched(tmp_path):
    Store.open(tmp_path).close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.execute("INSERT INTO schema_migrations VALUES ('999_future', 'x')")
    db.commit()
    db.close()
    before = (tmp_path / DB_NAME).read_bytes()
    with pytest.raises(WidthdepthError, match="newer widthdepth"):
        Store.open(tmp_path)
    assert (tmp_path / DB_NAME).read_bytes() == before


def test_open_without_create(tmp_path):
    with pytest.raises(WidthdepthError, match="no store"):
        Store.open(tmp_path / "none", create=False)


def test_snapshot_ignores_timing(tmp_path):
    one, two = Store.open(tmp_path / "a"), Store.open(tmp_path / "b")
    one.put_attempt(attempt())
    other = attempt()
    two.put_attempt(Attempt(**{**other.__dict__, "wall_seconds": 9.0, "created_at": "later"}))
    assert one.snapshot() == two.snapshot()


def test_snapshot_compares_adaptive_decisions(tmp_path):
    """An adaptive run's decisions are part of what a resumed run must reproduce."""
    one, two = Store.open(tmp_path / "a"), Store.open(tmp_path / "b")
    decision = {"problem_key": "p#0", "predicted": 0.4, "bin": 1, "w": 4, "d": 2, "aggregator": "majority",
                "answer": "3", "correct": True, "cost": 120.0}
    for store, w in ((one, 4), (two, 8)):
        store.put_allocation("run", "chain:L=1", "mock:", "adaptive:p.json@1e3", "agreement", "generated_tokens",
                             {**decision, "w": w})
    assert one.snapshot()["allocations"] and one.snapshot() != two.snapshot()


def test_the_store_is_a_sink_with_the_same_signatures():
    """Executors see the store only through `execute.base.Sink`: every method of it exists on `Store`
    with the same parameters, so a second sink (a replica's chunk) can stand in for the store."""
    import inspect

    from widthdepth.execute.base import Sink

    methods = [name for name, member in vars(Sink).items() if inspect.isfunction(member) and not name.startswith("_")]
    assert len(methods) == 8
    for name in methods:
        assert list(inspect.signature(getattr(Store, name)).parameters) == list(
            inspect.signature(getattr(Sink, name)).parameters), name
