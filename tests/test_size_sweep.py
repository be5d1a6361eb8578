"""`widthdepth lab sweep --experiment size` (issue 20) on tiny settings: sizes trained with one recipe (the
shipped checkpoint standing in for its own recipe, its training FLOPs counted by replay), a study grid per
size into a store of its own, and the exchange rate in inference and in total FLOPs; a rerun computes
nothing again."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch

from widthdepth.lab import sweep as lab_sweep
from widthdepth.lab.sweep import Arm, Sweep, plan_sweep, run_sweep
from widthdepth.lab.train import TrainConfig, load_checkpoint, recipe_flops, save_checkpoint, train
from widthdepth.report.compare import rate_table
from widthdepth.size_sweep import run_size_sweep
from widthdepth.store import Store

STUDY = {"tasks": ["chain:L=1", "search:kind=subset,n=6"], "plans": ["grid:4x3"], "problems": 8}


def tiny() -> Sweep:
    arms = [Arm(f"d{d}", "size", TrainConfig(steps=6, batch_size=16, d_model=d, ffn=4 * d, threads=1))
            for d in (8, 16)]
    return Sweep("size", "tiny", arms, seeds=1, chains=(1,), searches=(4,), trajectories=2, problems=10)


def attempts(folder) -> int:  # noqa: ANN001
    return sum(1 for _ in Store.open(folder, create=False).attempts())


def test_the_size_preset_is_the_shipped_recipe_at_each_width():
    arms = plan_sweep("size", "quick").arms
    assert [a.train.d_model for a in arms] == [32, 64, 128] and {a.group for a in arms} == {"size"}
    assert [lab_sweep._is_shipped(replace(a.train, seed=0)) for a in arms] == [False, False, True]
    assert not lab_sweep._is_shipped(replace(arms[-1].train, seed=1))


def test_the_training_flops_replayed_equal_those_counted_while_training():
    config = TrainConfig(steps=3, batch_size=8, d_model=8, ffn=32, threads=1)
    assert recipe_flops(config) == train(config)[1]["training_flops"]
    stack = replace(config, family="chain", layers=2)
    assert recipe_flops(stack) == train(stack)[1]["training_flops"]


def test_a_checkpoint_of_the_same_recipe_is_read_not_trained(tmp_path, monkeypatch):
    arm = tiny().arms[0]
    model, summary = train(arm.train)
    shipped = save_checkpoint(model, tmp_path / "shipped.safetensors", arm.train, {"steps": 6, "seconds": 1.0})
    monkeypatch.setattr(lab_sweep, "SHIPPED", shipped)
    events: list[str] = []
    [row] = run_sweep(replace(tiny(), arms=[arm]), tmp_path / "sweep", events.append)
    assert not any(e.startswith("training") for e in events) and events[0].startswith("counting")
    assert row["training_flops"] == summary["training_flops"] and row["seconds"] == 1.0
    copied, _ = load_checkpoint(next((tmp_path / "sweep" / "models").glob("*.safetensors")))
    assert all(torch.equal(a, b) for a, b in zip(copied.state_dict().values(), model.state_dict().values()))


def test_sizes_compared_at_matched_inference_and_total_flops(tmp_path):
    events: list[str] = []
    result = run_size_sweep(tiny(), tmp_path / "size", queries=1e4, study=STUDY, on_event=events.append)
    assert [r["d_model"] for r in result.rows] == [8, 16] and sum(e.startswith("training") for e in events) == 2
    small, large = result.runs
    assert small.label.startswith("d=8 ") and small.n_params < large.n_params
    assert small.training_flops == result.rows[0]["training_flops"] > 0
    assert small.model.startswith("builtin:reasoner,checkpoint=reasoner-d8.safetensors@")
    assert set(small.traces) == {"chain:L=1,m=10", "search:kind=subset,n=6"}
    flops = [r for r in result.rates if r.unit == "flops"]
    assert {(r.task, math.isinf(r.queries)) for r in flops} == {(t, q) for t in small.traces for q in (True, False)}
    record = json.loads((tmp_path / "size" / "compare.json").read_text())
    assert record["runs"][0]["training_flops"] == small.training_flops and len(record["rates"]) == 6
    assert "× the total FLOPs (training over 10,000 queries)" in (tmp_path / "size" / "compare.html").read_text()
    assert (tmp_path / "size" / "runs" / "d8" / "report.html").exists()
    assert len(rate_table(result.rates)) == 2
    stored = [attempts(tmp_path / "size" / "runs" / name) for name in ("d8", "d16")]
    assert stored[0] == 8 * 2 * 4 * 3  # problems x tasks x the grid's attempts
    events.clear()
    again = run_size_sweep(tiny(), tmp_path / "size", queries=1e4, study=STUDY, on_event=events.append)
    assert [attempts(tmp_path / "size" / "runs" / n) for n in ("d8", "d16")] == stored  # nothing generated again
    assert not any(e.startswith(("training", "evaluating")) for e in events) and again.rows == result.rows


def cheapest(frame, task: str, accuracy: float) -> float:  # noqa: ANN001
    """Brute force from a run's surface.csv: the cheapest cell reaching `accuracy`, in FLOPs, best-of paying
    its verifier."""
    rows = frame[(frame.task == task) & (frame.aggregator != "coverage") & (frame.accuracy >= accuracy - 1e-12)]
    costs = rows["flops"] + rows["verifier_flops"].fillna(0) * (rows.aggregator == "best_of")
    return costs.min() if len(costs) else math.inf


def test_the_total_rate_is_the_surface_with_the_training_spread_over_the_queries(tmp_path):
    import statistics

    import pandas as pd

    from widthdepth.analysis.frontier import frontier

    result = run_size_sweep(tiny(), tmp_path / "size", queries=1e4, study=STUDY)
    small, large = result.runs
    frames = [pd.read_csv(tmp_path / "size" / "runs" / name / "surface.csv") for name in ("d8", "d16")]
    checked = 0
    for rate in result.rates:
        if math.isinf(rate.queries):
            continue
        levels = sorted({p.cell.accuracy for p in frontier(large.traces[rate.task], "flops")
                         if p.strategy == "best" and p.cell is not None and p.cell.accuracy > 0})
        ratios = [(cheapest(frames[0], rate.task, a) + small.training_flops / 1e4)
                  / (cheapest(frames[1], rate.task, a) + large.training_flops / 1e4) for a in levels]
        finite = [r for r in ratios if math.isfinite(r)]
        assert (rate.levels, rate.reached) == (len(levels), len(finite))
        if finite:
            assert (rate.median, rate.low, rate.high) == pytest.approx(
                (statistics.median(finite), min(finite), max(finite)), rel=1e-6)
            checked += 1
    assert checked == 2  # both tasks: the tiny models reach some of each other's levels


def test_training_dominates_the_total_rate_when_spread_over_few_queries(tmp_path):
    from widthdepth.report.compare import exchange_rate

    result = run_size_sweep(tiny(), tmp_path / "size", queries=1e4, study=STUDY)
    small, large = result.runs
    for task in small.traces:
        inference = exchange_rate(task, small, large, "flops")
        assert inference.reached and exchange_rate(task, small, large, "flops", 1e30).median == inference.median
        few = exchange_rate(task, small, large, "flops", 1e-6)  # training over a millionth of a query: all training
        assert math.isclose(few.median, small.training_flops / large.training_flops, rel_tol=1e-6)


def test_the_command_prints_the_rates_and_writes_the_page(tmp_path, capsys, monkeypatch):
    from widthdepth import size_sweep
    from widthdepth.cli import main

    assert main(["lab", "sweep", "--experiment", "size", "--queries", "0", "--out", str(tmp_path / "no")]) == 2
    assert "--queries 0.0: give a positive number" in capsys.readouterr().err and not (tmp_path / "no").exists()
    assert main(["lab", "sweep", "--experiment", "size", "--threads", "0", "--out", str(tmp_path / "no")]) == 2
    assert "--threads 0: give at least 1" in capsys.readouterr().err and not (tmp_path / "no").exists()
    monkeypatch.setattr(lab_sweep, "plan_sweep", lambda experiment, preset: replace(tiny(), preset="quick"))
    monkeypatch.setitem(size_sweep.STUDY, "quick", STUDY)
    assert main(["lab", "sweep", "--experiment", "size", "--queries", "1e4", "--out", str(tmp_path / "size")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "size sweep (quick)" in out and "total FLOPs, training over 10,000 queries" in out
    assert "d=8 (" in out and "chain:L=1,m=10" in out
    page = (tmp_path / "size" / "report.html").read_text()
    assert "× the total FLOPs (training over 10,000 queries)" in page and "href='runs/d16/report.html'" in page
    assert "data:image/png;base64," in page
    assert (tmp_path / "size" / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_model_trained_again_is_the_one_its_study_runs(tmp_path):
    from widthdepth.errors import WidthdepthError

    first = run_size_sweep(tiny(), tmp_path / "size", queries=1e4, study=STUDY)
    row = first.rows[0]
    model = tmp_path / "size" / "models" / f"{row['recipe']}-s0.safetensors"
    other, summary = train(replace(tiny().arms[0].train, seed=7))  # the model file replaced (another run's)
    save_checkpoint(other, model, tiny().arms[0].train, summary)
    again = run_size_sweep(tiny(), tmp_path / "size", queries=1e4, study=STUDY)
    named = tmp_path / "size" / "runs" / "d8" / "reasoner-d8.safetensors"
    assert named.read_bytes() == model.read_bytes()
    assert again.runs[0].model != first.runs[0].model  # the store holds both; the comparison reads the new one
    assert {ts.trace.model for ts in again.runs[0].traces.values()} == {again.runs[0].model}
    model.unlink()
    with pytest.raises(WidthdepthError, match="its checkpoint is gone; delete that row"):
        run_size_sweep(tiny(), tmp_path / "size", queries=1e4, study=STUDY)
