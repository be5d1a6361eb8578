"""`widthdepth lab sweep --experiment thought` (issue 21) on tiny settings: models trained once (a rerun
trains nothing), each model's study run into its own store, the sizes compared, the page written."""

from __future__ import annotations

import json

import pytest

from widthdepth import thought_sweep
from widthdepth.cli import main
from widthdepth.lab.sweep import read_results
from widthdepth.lab.thought_train import load_thought

TINY = {"arms": {"h16": {"hidden": 16, "latent": 4, "steps": 30, "batch_size": 16},
                 "h32": {"hidden": 32, "latent": 4, "steps": 30, "batch_size": 16}},
        "study": {"tasks": ["rule:L=1,k=3", "rule:L=2,k=2"], "plans": ["grid:4x4"], "problems": 8}}


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(thought_sweep.PRESETS, "quick", TINY)
    monkeypatch.setattr(thought_sweep, "TASKS", ["rule:L=1,k=3"])
    monkeypatch.setattr(thought_sweep, "CHECK_PROBLEMS", 12)


def test_the_thought_sweep_trains_once_runs_each_model_and_compares(tmp_path, tiny, capsys):
    out = tmp_path / "thought"
    assert main(["lab", "sweep", "--experiment", "thought", "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "h16" in printed and "the smaller models against the largest" in printed
    rows = read_results(out)
    assert [r["arm"] for r in rows] == ["h16", "h32"] and all(len(r["rule"]["L=1,k=3"]) == 12 for r in rows)
    for row in rows:
        model, metadata = load_thought(out / "models" / f"{row['recipe']}.safetensors")
        assert row["params"] == model.n_params() and row["training_flops"] == json.loads(metadata["summary"])["training_flops"]
    assert (out / "report.html").is_file() and (out / "compare.html").is_file()
    assert (out / "runs" / "h16" / "thought-h16.safetensors").is_file()
    compare = json.loads((out / "compare.json").read_text())
    assert {r["task"] for r in compare["rates"]} == {"rule:L=1,k=3,m=10", "rule:L=2,k=2,m=10"}
    models = {p: p.stat().st_mtime_ns for p in (out / "models").iterdir()}
    assert main(["lab", "sweep", "--experiment", "thought", "--out", str(out), "--threads", "1"]) == 0
    assert "training" not in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in (out / "models").iterdir()} == models and read_results(out) == rows


def test_bad_thought_options(tmp_path, capsys):
    assert main(["lab", "sweep", "--experiment", "thought", "--preset", "gpu", "--out", str(tmp_path / "a")]) == 2
    assert "--preset 'gpu': unknown for thought (valid: quick, full)" in capsys.readouterr().err
    assert main(["lab", "sweep", "--experiment", "width", "--out", str(tmp_path / "a")]) == 2
    assert "(valid: shape, depth, size, thought)" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
