"""`widthdepth lab sweep` (issue 20) on tiny settings: the plan of each experiment, a sweep that resumes
without training a finished model again (also after kill -9 mid-training), the same results as an
uninterrupted sweep, and the summaries the command prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import json
import time
from dataclasses import replace

import pytest
import torch

from widthdepth.errors import WidthdepthError
from widthdepth.lab.model import LatentReasoner, ReasonerConfig
from widthdepth.lab.sweep import Arm, Sweep, plan_sweep, read_results, run_sweep, shape_for
from widthdepth.lab.sweep_stats import critical_depths, shape_contrasts, summary
from widthdepth.lab.train import TrainConfig, load_checkpoint


def tiny(steps: int = 4) -> Sweep:
    base = TrainConfig(family="chain", steps=steps, batch_size=16, d_model=16, ffn=64, max_chain_length=3, threads=1)
    arms = [Arm(f"{kind}-{depth}", kind, replace(base, layers=depth if kind == "stack" else 1, depth=depth))
            for depth in (1, 2) for kind in ("stack", "loop")]
    arms.append(Arm("anyloop-2", "anyloop", replace(base, max_iterations=2), depth=2))  # read at depth 2
    return Sweep("depth", "tiny", arms, seeds=2, chains=(1, 2), searches=(4,), trajectories=2, problems=20)


def timeless(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


def test_the_presets_plan_what_the_experiments_compare():
    shape = plan_sweep("shape", "quick")
    by_steps = [a for a in shape.arms if a.group == "steps"]
    counts = [LatentReasoner(ReasonerConfig(a.train.d_model, a.train.ffn, layers=a.train.layers)).n_params()
              for a in by_steps]
    assert [a.train.layers for a in by_steps] == [2, 4, 8, 16]
    assert max(counts) / min(counts) < 1.02  # one parameter count, deep-thin to wide
    assert {a.train.steps for a in by_steps} == {600} and len(shape.arms) == 2 * len(by_steps)
    depth = plan_sweep("depth", "quick")
    assert [(a.group, a.train.layers, a.train.depth) for a in depth.arms[:4]] == [
        ("stack", 1, 1), ("loop", 1, 1), ("stack", 2, 2), ("loop", 1, 2)]
    anyloop = [a for a in depth.arms if a.group == "anyloop"]
    assert [a.depth for a in anyloop] == [1, 2, 4, 8] and {a.train for a in anyloop} == {anyloop[0].train}
    assert anyloop[0].train.depth == 0 and anyloop[0].train.max_iterations == 8  # one model, read at each depth
    d, ffn = shape_for(32, 250_000)
    assert d % 4 == 0 and abs(LatentReasoner(ReasonerConfig(d, ffn, layers=32)).n_params() - 250_000) < 32 * 2 * d
    with pytest.raises(WidthdepthError, match="--experiment 'width'"):
        plan_sweep("width", "quick")
    with pytest.raises(WidthdepthError, match="--preset 'huge'"):
        plan_sweep("depth", "huge")


def test_threads_train_the_same_model_id_and_are_recorded(tmp_path):
    one = replace(tiny(), arms=tiny().arms[:1], seeds=1)  # the recipe's threads are 1
    run_sweep(one, tmp_path / "sweep", threads=2)
    [path] = (tmp_path / "sweep" / "models").glob("*.safetensors")
    assert json.loads(load_checkpoint(path)[1]["train_config"])["threads"] == 2
    (tmp_path / "sweep" / "results.jsonl").write_text("")
    events: list[str] = []
    run_sweep(one, tmp_path / "sweep", events.append)  # the model of 2 threads is this recipe's: not trained again
    assert events == ["evaluating stack-1 seed 0"]


def test_a_sweep_resumes_without_training_again(tmp_path):
    events: list[str] = []
    rows = run_sweep(tiny(), tmp_path / "sweep", events.append)
    assert len(rows) == 10 and sum(e.startswith("training") for e in events) == 8  # stack-1 is loop-1: one model
    assert rows[-1]["depth"] == 2 and rows[-1]["group"] == "anyloop"
    assert all(len(r["chain"]["2"]) == 20 and set(r["chain"]["2"]) <= {"0", "1"} for r in rows)
    events.clear()
    assert run_sweep(tiny(), tmp_path / "sweep", events.append) == rows and events == []
    (tmp_path / "sweep" / "results.jsonl").write_text("")  # evaluations lost, models kept: evaluated, not trained
    again = run_sweep(tiny(), tmp_path / "sweep", events.append)
    assert timeless(again) == timeless(rows) and not any(e.startswith("training") for e in events)
    path = tmp_path / "sweep" / "results.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:50])  # the last line cut short by a kill
    events.clear()
    assert timeless(run_sweep(tiny(), tmp_path / "sweep", events.append)) == timeless(rows)
    assert events == ["evaluating anyloop-2 seed 1"] and len(read_results(tmp_path / "sweep")) == 10
    events.clear()
    run_sweep(tiny(steps=5), tmp_path / "sweep", events.append)  # another recipe: neither its rows nor models
    assert sum(e.startswith("training") for e in events) == 8
    arms = summary(rows)
    assert [a["arm"] for a in arms] == ["stack-1", "loop-1", "stack-2", "loop-2", "anyloop-2"]
    assert critical_depths(rows, "anyloop", threshold=0.0) == {"1": (2, 2, 2), "2": (2, 2, 2)}
    assert set(critical_depths(rows, "stack", threshold=0.0).values()) == {(1, 1, 1)}
    assert set(critical_depths(rows, "loop", threshold=1.01).values()) == {(None, None, None)}
    for arm in arms:
        low, high = arm["chain 2 ci"]
        assert low <= arm["chain 2"] <= high


SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from tests.test_sweep import tiny
from widthdepth.lab.sweep import run_sweep
run_sweep(tiny(steps=60), sys.argv[1], save_every=0.0)  # the model in training saves every step
"""


def test_a_sweep_killed_mid_training_resumes_to_the_same_results(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    folder = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "-c", SCRIPT.format(root=root), str(folder)])
    models = folder / "models"
    deadline = time.monotonic() + 120
    while not (models.exists() and list(models.glob("*.safetensors")) and list(models.glob("*.resume"))):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    first = sorted(models.glob("*.safetensors"))[0]
    written = first.stat().st_mtime_ns
    process.send_signal(signal.SIGKILL)
    process.wait()
    resume = sorted(models.glob("*.resume"))[0]  # the next model's training state, saved before the kill
    assert 0 < torch.load(resume, weights_only=True)["step"] < 60  # killed mid-training: resumed from there
    rows = run_sweep(tiny(steps=60), folder)
    assert first.stat().st_mtime_ns == written  # the finished model was not trained again
    assert not list(models.glob("*.partial")) and not list(models.glob("*.resume"))
    assert timeless(rows) == timeless(run_sweep(tiny(steps=60), tmp_path / "whole"))
    assert timeless(read_results(folder)) == timeless(rows)


def test_the_command_prints_the_table_and_the_critical_depths(tmp_path, capsys, monkeypatch):
    from widthdepth.cli import main
    from widthdepth.lab import sweep

    assert main(["lab", "sweep", "--experiment", "width", "--out", str(tmp_path / "no")]) == 2
    assert "--experiment 'width': unknown (valid: shape, depth, size, thought, memory)" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()
    monkeypatch.setattr(sweep, "plan_sweep", lambda experiment, preset: tiny())
    assert main(["lab", "sweep", "--experiment", "depth", "--out", str(tmp_path / "depth")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "depth sweep (quick)" in out and "stack-2" in out
    assert "critical depth (loop, accuracy >= 0.9 from there on)" in out
    assert (tmp_path / "depth" / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "depth" / "report.html").read_text()
    assert "<h2>Critical depths</h2>" in page and "critical depth (anyloop" in page and "stack-2" in page


def test_the_shape_contrast_says_which_shape_wins_and_how_sure():
    def row(group: str, layers: int, seed: int, chain: str) -> dict:
        return {"group": group, "layers": layers, "seed": seed, "chain": {"1": chain}, "search": {}}

    deep, wide, half = "1" * 40, "0" * 40, "01" * 20
    rows = [row("steps", 16, s, deep) for s in range(2)] + [row("steps", 2, s, wide) for s in range(2)]
    rows += [row("flops", 16, s, half) for s in range(2)] + [row("flops", 2, s, half) for s in range(2)]
    rows += [row("steps", 8, 0, half)]  # between the two: not compared
    steps, flops = shape_contrasts(rows)
    assert (steps["winner"], steps["difference"], steps["low"], steps["high"]) == ("deep", 1.0, 1.0, 1.0)
    assert (steps["deep"], steps["wide"], flops["winner"], flops["difference"]) == (16, 2, "neither", 0.0)
    assert flops["low"] == 0.0 == flops["high"]  # the same problems drawn for both: the same answers cancel
    assert (steps["best"], steps["best_accuracy"], flops["best"]) == (16, 1.0, 2)  # equals: the fewest layers
    rows = [row("steps", 16, s, "0" * 30 + "1" * 10) for s in range(3)] + [row("steps", 2, s, "1" * 40)
                                                                            for s in range(3)]
    (wide_wins,) = shape_contrasts(rows)
    assert wide_wins["winner"] == "wide" and wide_wins["high"] < 0 and wide_wins["difference"] == -0.75


def test_a_critical_depth_is_held_at_every_deeper_depth():
    from widthdepth.lab.sweep_stats import first_reached
    from widthdepth.report.sweep import critical_lines, summary_table

    def row(arm: str, group: str, depth: int, seed: int, chain: dict[str, str]) -> dict:
        return {"arm": arm, "group": group, "depth": depth, "seed": seed, "chain": chain, "search": {},
                "recipe": f"{group}{depth}" if depth > 1 else "one", "params": 10, "training_flops": 1.0}

    ok, bad = "1" * 40, "1" * 20 + "0" * 20
    accuracies = {1: (ok, bad), 2: (bad, bad), 4: (ok, bad), 8: (ok, ok)}  # L=1 reached at 1, lost at 2
    rows = [row(f"stack-{d}", "stack", d, s, {"1": one, "2": two}) for d, (one, two) in accuracies.items()
            for s in range(2)]
    rows += [row("loop-1", "loop", 1, s, {"1": ok, "2": bad}) for s in range(2)]
    assert critical_depths(rows, "stack") == {"1": (4, 4, 4), "2": (8, 8, 8)}
    assert first_reached(rows, "stack") == {"1": 1, "2": 8}
    assert critical_depths(rows, "loop") == {"1": (1, 1, 1), "2": (None, None, None)}
    stack, loop = critical_lines(rows)
    assert "L=1: 4 (reached at 1, lost deeper) [4, 4], L=2: 8 [8, 8]" in stack
    assert "L=2: none up to 1 [none, none]" in loop
    columns, table = summary_table(rows)
    assert columns[:5] == ("arm", "params", "depth", "seeds", "train FLOPs")
    assert table[-1][:4] == ("loop-1 (= stack-1)", "10", "1", "2") and table[0][0] == "stack-1"
    noisy = [row("stack-1", "stack", 1, s, {"1": "1" * 19 + "0"}) for s in range(3)]
    noisy += [row("stack-2", "stack", 2, s, {"1": "1" * 18 + "0" * 2}) for s in range(3)]
    point, low, high = critical_depths(noisy, "stack")["1"]  # 0.95, then 0.90: held, in most draws
    assert (point, low) == (1, 1) and high in (2, None)


def test_the_shape_command_states_the_contrast(tmp_path, capsys, monkeypatch):
    from widthdepth.cli import main
    from widthdepth.lab import sweep

    base = TrainConfig(family="mix", steps=3, batch_size=16, d_model=8, ffn=32, max_chain_length=2, max_items=4,
                       threads=1)
    arms = [Arm(f"L{n}", "steps", replace(base, layers=n)) for n in (2, 3)]
    shape = Sweep("shape", "quick", arms, seeds=2, chains=(1,), searches=(4,), trajectories=2, problems=10)
    monkeypatch.setattr(sweep, "plan_sweep", lambda experiment, preset: shape)
    assert main(["lab", "sweep", "--experiment", "shape", "--out", str(tmp_path / "shape"), "--device", "cpu"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "same steps, chain 1: 3 layers against 2:" in out and "same steps, search 4: 3 layers against 2:" in out
    page = (tmp_path / "shape" / "report.html").read_text()
    assert "Deep and thin against wide" in page and "--device cpu" in page
