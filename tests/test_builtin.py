"""builtin:reasoner through the ordinary runner, store, surface and CLI (a small untrained checkpoint:
these tests are about plumbing, not skill)."""

from __future__ import annotations

import pytest
import torch

from widthdepth.analysis.surface import estimate_surface
from widthdepth.analysis.traces import load_grid_traces
from widthdepth.backends import BackendOptions, load_backend
from widthdepth.cli import main
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.lab.model import LatentReasoner, ReasonerConfig
from widthdepth.lab.train import save_checkpoint
from widthdepth.runner import run
from widthdepth.store import Store


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(LatentReasoner(ReasonerConfig(d_model=32, ffn=64)), path, None, {})


def config(out, checkpoint, **values):
    values.setdefault("tasks", ["chain:L=3", "search:kind=subset,n=6", "mix:L=2,n=5"])
    values.setdefault("plans", ["grid:4x3"])
    values.setdefault("problems", 5)
    return RunConfig(model=f"builtin:reasoner,checkpoint={checkpoint}", out=str(out), **values)


def test_grid_of_trajectories_and_iterations(tmp_path, checkpoint):
    result = run(config(tmp_path / "a", checkpoint))
    assert result.generated == 3 * 5 * 12
    store = Store.open(tmp_path / "a")
    info = store.model_info(result.model)
    assert info.latent and info.n_params == LatentReasoner(ReasonerConfig(d_model=32, ffn=64)).n_params()
    for plan_run in result.plan_runs:
        for chains in plan_run.chains.values():
            for w, chain in enumerate(chains):
                assert [a.d for a in chain] == [1, 2, 3] and all(a.w == w for a in chain)
                assert [a.serial_tokens for a in chain] == [1, 2, 3]
                assert all(a.flops and a.flops > 0 and a.completion_tokens == 1 for a in chain)
                assert chain[1].parent_key == chain[0].key and chain[1].mode == "latent"
        verifier = plan_run.verifier
        assert verifier == ("exact" if plan_run.family.spec.startswith("search") else f"latent:{result.model}")
        assert len(plan_run.verifications) == 5 * 12


def test_surface_costs_use_exact_flops(tmp_path, checkpoint):
    out = tmp_path / "b"
    run(config(out, checkpoint, tasks=["chain:L=2"], plans=["grid:3x2"]))
    (ts,) = estimate_surface(load_grid_traces(Store.open(out))).traces
    first, second = ts.trace.problems[0].chains[0][:2]
    assert first.flops > second.flops  # the first iteration also encodes the problem
    assert float(ts.cost[(3, 2)]["flops"].mean()) == pytest.approx(3 * (first.flops + second.flops))
    assert float(ts.cost[(3, 2)]["serial_tokens"].mean()) == 2


def test_smaller_plans_are_inside_bigger_ones_and_resume_is_exact(tmp_path, checkpoint, monkeypatch):
    whole = tmp_path / "whole"
    run(config(whole, checkpoint, plans=["grid:4x3"]))
    again = run(config(whole, checkpoint, plans=["grid:2x2", "grid:4x3"]))
    assert again.generated == 0
    broken = tmp_path / "broken"
    calls = {"n": 0}
    original = Store.put_attempt

    def dying(self, attempt):
        calls["n"] += 1
        if calls["n"] == 70:
            raise KeyboardInterrupt
        original(self, attempt)

    monkeypatch.setattr(Store, "put_attempt", dying)
    with pytest.raises(KeyboardInterrupt):
        run(config(broken, checkpoint))
    monkeypatch.setattr(Store, "put_attempt", original)
    resumed = run(config(broken, checkpoint))
    assert resumed.generated == 3 * 5 * 12 - 69
    assert Store.open(broken).snapshot() == Store.open(whole).snapshot()


def test_what_the_reasoner_cannot_answer_is_refused_before_the_store(tmp_path, checkpoint):
    with pytest.raises(WidthdepthError, match="search:kind=subset"):
        run(config(tmp_path / "c", checkpoint, tasks=["search:kind=modeq,p=13"]))
    with pytest.raises(WidthdepthError, match="verifier head"):
        run(RunConfig(model="mock:", tasks=["chain:L=1"], verifier="latent", out=str(tmp_path / "d")))
    assert not (tmp_path / "c").exists() and not (tmp_path / "d").exists()


def test_unknown_builtin_and_missing_checkpoint(tmp_path, capsys):
    assert main(["run", "--model", "builtin:giant", "--out", str(tmp_path / "x")]) == 2
    assert "unknown built-in model 'giant' (valid: reasoner, thought, memory, lm)" in capsys.readouterr().err
    with pytest.raises(WidthdepthError, match="no reasoner checkpoint"):
        load_backend(f"builtin:reasoner,checkpoint={tmp_path / 'none.safetensors'}", BackendOptions())
