"""The fast-weight memory (issue 21, sleep-style consolidation) on tiny settings: the recall family, exact
FLOPs against torch's counter (passes and training), a copy that depends on its seed only, a tiny memory
that stores contexts and composes hops, and `builtin:memory` through the real runner and store."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from widthdepth.cli import main
from widthdepth.config import RunConfig
from widthdepth.errors import WidthdepthError
from widthdepth.lab.consolidation import FastWeightMemory, MemoryConfig, sample_grid
from widthdepth.lab.consolidation_train import MemoryTrainConfig, load_memory, train_memory
from widthdepth.lab.train import save_checkpoint
from widthdepth.runner import run
from widthdepth.tasks import load_task

TINY = MemoryTrainConfig(steps=300, batch_size=32, min_facts=6, max_facts=10, max_passes=4, dim=16, threads=1)


@pytest.fixture(scope="module")
def trained():
    return train_memory(TINY)


def structures(spec: str, count: int, seed: int = 0) -> list[dict]:
    return [p.structure for p in load_task(spec).problems(count, seed=seed)]


def test_recall_problems_follow_their_facts():
    family = load_task("recall:n=12,h=3")
    for problem in family.problems(20, seed=2):
        s = problem.structure
        follows = dict(map(tuple, s["links"]))
        x = s["start"]
        for _ in range(3):
            x = follows[x]
        assert problem.gold == (str(x),) and len(follows) == 12 and family.check(problem, str(x))
        assert f"Starting at {s['start']}, follow 3 facts" in problem.question
    demo = family.demonstrations(1)[0]
    assert demo.solution.split("Answer: ")[1] != demo.flawed_solution.split("Answer: ")[1]
    with pytest.raises(WidthdepthError, match="h=13 is out of range"):
        load_task("recall:n=12,h=13")


def test_pass_flops_are_torchs_count():
    torch.manual_seed(0)
    model = FastWeightMemory(MemoryConfig(dim=8))
    problems = structures("recall:n=6,h=2", 3) + structures("recall:n=4,h=1", 2)  # two batches
    seeds = [[10 * i + c for c in range(2)] for i in range(5)]
    for rounds in (1, 3):
        with FlopCounterMode(display=False) as counter:
            grid = sample_grid(model, problems, 2, rounds, seeds)
        assert sum(a.flops for p in grid for copy in p for a in copy) == counter.get_total_flops()
    assert grid[0][0][0].flops == model.first_flops(6) + model.pass_flops(6, 2) > grid[0][0][1].flops


def test_a_copy_depends_on_its_seed_only_and_training_flops_are_counted():
    torch.manual_seed(1)
    model = FastWeightMemory(MemoryConfig(dim=8))
    problems = structures("recall:n=8,h=2", 4)
    wide = sample_grid(model, problems, 3, 5, [[7, 8, 9]] * 4)
    alone = sample_grid(model, problems[1:2], 1, 2, [[9]])
    assert [a.answer for a in alone[0][0]] == [a.answer for a in wide[1][2][:2]]
    config = MemoryTrainConfig(steps=4, batch_size=4, min_facts=3, max_facts=5, max_passes=3, dim=4, threads=1)
    with FlopCounterMode(display=False) as counter:
        _, summary = train_memory(config)
    assert summary["training_flops"] == counter.get_total_flops() > 0


def test_a_tiny_memory_stores_contexts_and_more_passes_help_more_hops(trained):
    model, _ = trained
    accuracy = {}
    for hops in (1, 3):
        problems = load_task(f"recall:n=8,h={hops}").problems(150, seed=4)
        grid = sample_grid(model, [p.structure for p in problems], 1, 16, [[i] for i in range(150)])
        accuracy[hops] = [sum(g[0][d - 1].answer == p.gold[0] for g, p in zip(grid, problems)) / 150 for d in (1, 16)]
    assert accuracy[1][1] >= 0.9 and accuracy[3][1] >= 0.8  # chance is 1 in 64
    assert accuracy[3][1] - accuracy[3][0] > accuracy[1][1] - accuracy[1][0] > 0


def test_builtin_memory_runs_through_the_runner_and_refuses_other_tasks(tmp_path, trained, capsys):
    model, summary = trained
    checkpoint = save_checkpoint(model, tmp_path / "memory.safetensors", TINY, summary)
    out = tmp_path / "run"
    result = run(RunConfig(model=f"builtin:memory,checkpoint={checkpoint}", tasks=["recall:n=8,h=2"],
                           plans=["grid:3x4"], problems=5, out=str(out), verifier="latent"))
    assert result.generated == 5 * 12
    (plan_run,) = result.plan_runs
    chain = next(iter(plan_run.chains.values()))[0]
    assert [a.flops for a in chain[:2]] == [model.first_flops(8) + model.pass_flops(8, 2), model.pass_flops(8, 2)]
    assert len(plan_run.verifications) == 5 * 12
    with pytest.raises(WidthdepthError, match="answers recall problems"):
        run(RunConfig(model=f"builtin:memory,checkpoint={checkpoint}", tasks=["rule:L=1,k=3"], out=str(tmp_path / "x")))
    assert main(["lab", "train-memory", "--dim", "0", "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "--steps, --dim" in capsys.readouterr().err
    with pytest.raises(WidthdepthError, match="train-memory --out"):
        load_memory(tmp_path / "missing.safetensors")
    with pytest.raises(WidthdepthError, match="not a checkpoint that `widthdepth lab train-thought` makes"):
        run(RunConfig(model=f"builtin:thought,checkpoint={checkpoint}", tasks=["rule:L=1,k=3"], out=str(tmp_path / "z")))
    with pytest.raises(WidthdepthError, match="not a reasoner checkpoint"):
        run(RunConfig(model=f"builtin:reasoner,checkpoint={checkpoint}", tasks=["chain:L=1"], out=str(tmp_path / "z")))
    assert not (tmp_path / "z").exists()
