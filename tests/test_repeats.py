"""`--repeats R`: a method run R times on the same problems, each repeat with a sampling seed of its own,
pooled per problem on the frontier so that its interval holds the seed's noise as well as the problems'."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from widthdepth.analysis.methods import methods_for, open_method_points
from widthdepth.backends.mock import MockBackend
from widthdepth.runner import run
from widthdepth.store import Store
from tests.scripts import crashing_after, gold_or_scatter


def _by_repeat(points: list[dict]) -> dict[int, dict[str, dict]]:
    out: dict[int, dict[str, dict]] = {}
    for p in points:
        out.setdefault(p["repeat"], {})[p["problem_key"]] = p
    return out


def test_repeats_resample_the_method_on_the_same_problems_and_repeat_0_is_the_single_run(make_config, tmp_path):
    once = make_config(tasks=["chain:L=1"], plans=["parallel:16", "early:16"], problems=24, out=str(tmp_path / "once"))
    thrice = once.model_copy(update={"repeats": 3, "out": str(tmp_path / "thrice")})
    run(once, backend=MockBackend(script=gold_or_scatter))
    result = run(thrice, backend=MockBackend(script=gold_or_scatter))
    assert len(result.plan_runs) == 1 and [m.repeat for m in result.methods] == [0, 1, 2]  # the grid runs once
    single, store = Store.open(once.out), Store.open(thrice.out)
    repeats = _by_repeat(store.method_points())
    assert sorted(repeats) == [0, 1, 2] and all(len(r) == 24 for r in repeats.values())
    # repeat 0 is exactly the run without --repeats: same run key, same outcomes, drawn from parallel:16's chains
    first = {p["problem_key"]: p for p in single.method_points()}
    assert {k: (p["run_key"], p["answer"], p["cost"]["generated_tokens"]) for k, p in first.items()} == {
        k: (p["run_key"], p["answer"], p["cost"]["generated_tokens"]) for k, p in repeats[0].items()}
    # the other repeats drew chains of their own: new attempts, other answers on the problems that scatter
    assert store.counts()["attempts"] > single.counts()["attempts"]
    differ = [k for k in first if len({repeats[r][k]["answer"] for r in range(3)}) > 1]
    assert differ and all(repeats[r][k]["answer"] == repeats[0][k]["answer"]  # the gold never scatters
                          for k in first if first[k]["correct"] and first[k]["detail"]["chains"] == 4 for r in (1, 2))
    single.close(), store.close()

    # pooled per problem: the mean outcome and cost over the repeats, each repeat's accuracy kept
    from widthdepth.analysis.traces import load_grid_traces
    from widthdepth.analysis.surface import estimate_surface

    store = Store.open(thrice.out)
    (ts,) = estimate_surface(load_grid_traces(store)).traces
    store.close()
    (method,) = methods_for(ts, open_method_points(thrice.out))
    index = {p.key: i for i, p in enumerate(ts.trace.problems)}
    for key, i in index.items():
        assert method.correct[i] == pytest.approx(np.mean([repeats[r][key]["correct"] for r in range(3)]))
        assert method.cost["generated_tokens"][i] == pytest.approx(
            np.mean([repeats[r][key]["cost"]["generated_tokens"] for r in range(3)]))
    assert method.repeat_accuracy == pytest.approx(
        [np.mean([p["correct"] for p in repeats[r].values()]) for r in range(3)])
    assert method.repeats == 3


def test_the_report_and_the_verdict_say_how_many_repeats_a_point_pools(make_config):
    from widthdepth.report import write_report

    config = make_config(tasks=["chain:L=1"], plans=["parallel:16", "early:16"], problems=30, repeats=2)
    run(config, backend=MockBackend(script=gold_or_scatter))
    paths = write_report(config.out)
    (c,) = json.loads(paths["verdict"].read_text())["methods"]["generated_tokens"]
    assert len(c["repeat_accuracy"]) == 2 and c["problems"] == 30
    assert c["accuracy"] == pytest.approx(sum(c["repeat_accuracy"]) / 2)  # every problem finished in both
    assert c["ci_low"] <= c["accuracy"] <= c["ci_high"]
    assert "over 2 repeats (each " in paths["report"].read_text()


def test_a_crash_in_a_later_repeat_then_rerun_gives_the_uninterrupted_store(make_config, tmp_path):
    def config(name):  # noqa: ANN001, ANN202
        return make_config(tasks=["chain:L=1"], plans=["early:16"], problems=8, repeats=3, out=str(tmp_path / name))

    run(config("whole"), backend=MockBackend(script=gold_or_scatter))
    whole = Store.open(tmp_path / "whole")
    samples = whole.counts()["attempts"]
    assert len(whole.method_points()) == 24
    with pytest.raises(KeyboardInterrupt):
        run(config("killed"), backend=MockBackend(script=crashing_after(gold_or_scatter, samples - 10)))
    partial = Store.open(tmp_path / "killed")
    assert 16 <= len(partial.method_points()) < 24  # it died in the last repeat
    partial.close()
    run(config("killed"), backend=MockBackend(script=gold_or_scatter))
    killed = Store.open(tmp_path / "killed")
    assert killed.snapshot() == whole.snapshot()
    whole.close(), killed.close()


@pytest.mark.parametrize("args,says", [
    (["--plan", "grid:2x2", "--repeats", "3"], "--repeats 3: repeats rerun methods"),
    (["--plan", "early:4", "--repeats", "0"], "repeats: Input should be greater than or equal to 1"),
])
def test_impossible_repeats_are_one_line_exit_2_and_no_store(tmp_path, args, says):
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "widthdepth.cli", "run", "--model", "mock:", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and says in " ".join(done.stderr.split()), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not out.exists()


def test_a_search_repeats_with_its_own_draws_and_resampling(make_config):
    from tests.test_search import one_step

    config = make_config(tasks=["chain:L=4"], plans=["particles:4"], problems=6, verifier="steps", max_tokens=200,
                         repeats=2)
    run(config, backend=MockBackend(script=one_step))
    store = Store.open(config.out)
    repeats = _by_repeat(store.method_points())
    assert sorted(repeats) == [0, 1] and all(len(r) == 6 for r in repeats.values())
    assert len({p["run_key"] for r in repeats.values() for p in r.values()}) == 2
    # every attempt belongs to one repeat's tree: the two trees share no attempt
    seeds = [a.seed for a in store.attempts()]
    assert len(seeds) == len(set(seeds)) and len(seeds) == sum(p["attempts"] for r in repeats.values() for p in r.values())
    store.close()


def test_a_store_from_before_repeats_reads_its_points_as_repeat_0(make_config):
    import sqlite3

    config = make_config(tasks=["chain:L=1"], plans=["early:8"], problems=3)
    run(config, backend=MockBackend(script=gold_or_scatter))
    store = Store.open(config.out)
    before = store.method_points()
    store.close()
    with sqlite3.connect(f"{config.out}/widthdepth.sqlite") as db:  # the store as migration 006 left it
        db.execute("ALTER TABLE method_points DROP COLUMN repeat")
        db.execute("DELETE FROM schema_migrations WHERE name = '007_method_repeats'")
    store = Store.open(config.out)
    after = store.method_points()
    store.close()
    assert [p["repeat"] for p in after] == [0, 0, 0]
    assert [{k: v for k, v in p.items() if k != "created_at"} for p in after] == \
        [{k: v for k, v in p.items() if k != "created_at"} for p in before]
