"""`widthdepth lab sweep --experiment thought|memory` (issue 21) on tiny settings: models trained once (a
rerun trains nothing), each model's study run into its own store, the sizes compared, the page written."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from widthdepth import optimisation_sweep
from widthdepth.cli import main
from widthdepth.lab.sweep import read_results
from widthdepth.tasks import load_task

TINY = {
    "thought": {"arms": {"h16": {"hidden": 16, "latent": 4, "steps": 30, "batch_size": 16},
                         "h32": {"hidden": 32, "latent": 4, "steps": 30, "batch_size": 16}},
                "study": {"tasks": ["rule:L=1,k=3", "rule:L=2,k=2"], "plans": ["grid:4x4"], "problems": 8}},
    "memory": {"arms": {"dim4": {"dim": 4, "steps": 20, "batch_size": 8, "max_facts": 12},
                        "dim8": {"dim": 8, "steps": 20, "batch_size": 8, "max_facts": 12}},
               "study": {"tasks": ["recall:n=8,h=1", "recall:n=8,h=3"], "plans": ["grid:3x4"], "problems": 8}},
}
CHECKS = {"thought": ["rule:L=1,k=3"], "memory": ["recall:n=8,h=2"]}


@pytest.fixture
def tiny(monkeypatch):
    for name, kind in optimisation_sweep.KINDS.items():
        monkeypatch.setitem(optimisation_sweep.KINDS, name, replace(kind, presets={"quick": TINY[name]},
                                                                    tasks=CHECKS[name]))
    monkeypatch.setattr(optimisation_sweep, "CHECK_PROBLEMS", 12)


@pytest.mark.parametrize("experiment", ["thought", "memory"])
def test_the_sweep_trains_once_runs_each_model_and_compares(experiment, tmp_path, tiny, capsys):
    out = tmp_path / experiment
    kind = optimisation_sweep.KINDS[experiment]
    load = getattr(__import__(f"widthdepth.lab.{kind.lab}_train", fromlist=[kind.load]), kind.load)
    assert main(["lab", "sweep", "--experiment", experiment, "--out", str(out), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert "the smaller models against the largest" in printed
    rows = read_results(out)
    names = list(TINY[experiment]["arms"])
    assert [r["arm"] for r in rows] == names
    check = CHECKS[experiment][0].split(":", 1)[1]
    assert all(len(r[kind.family][check]) == 12 for r in rows)
    for row in rows:
        model, metadata = load(out / "models" / f"{row['recipe']}.safetensors")
        assert row["params"] == model.n_params()
        assert row["training_flops"] == json.loads(metadata["summary"])["training_flops"] > 0
    assert (out / "report.html").is_file() and (out / "compare.html").is_file()
    assert (out / "runs" / names[0] / f"{experiment}-{names[0]}.safetensors").is_file()
    compare = json.loads((out / "compare.json").read_text())
    assert {r["task"] for r in compare["rates"]} == {load_task(t).spec for t in TINY[experiment]["study"]["tasks"]}
    models = {p: p.stat().st_mtime_ns for p in (out / "models").iterdir()}
    assert main(["lab", "sweep", "--experiment", experiment, "--out", str(out), "--threads", "1"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "models").iterdir()} == models and read_results(out) == rows


def test_bad_sweep_options(tmp_path, capsys):
    assert main(["lab", "sweep", "--experiment", "thought", "--preset", "gpu", "--out", str(tmp_path / "a")]) == 2
    assert "--preset 'gpu': unknown for thought (valid: quick, full)" in capsys.readouterr().err
    assert main(["lab", "sweep", "--experiment", "width", "--out", str(tmp_path / "a")]) == 2
    assert "(valid: shape, depth, size, thought, memory)" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("experiment", ["thought", "memory"])
def test_the_shipped_checkpoint_is_the_default_recipes_model(experiment):
    """The sweeps reuse the shipped checkpoint for the arm of the default recipe: its recorded recipe must be
    that one (a changed default would otherwise silently train it again, or worse, be taken for it)."""
    from widthdepth.backends import builtin

    kind = optimisation_sweep.KINDS[experiment]
    training = __import__(f"widthdepth.lab.{kind.lab}_train", fromlist=[kind.recipe])
    _, metadata = getattr(training, kind.load)(getattr(builtin, kind.shipped))
    recorded = json.loads(metadata["train_config"])
    assert optimisation_sweep._digest(recorded) == optimisation_sweep._digest(asdict(getattr(training, kind.recipe)()))
