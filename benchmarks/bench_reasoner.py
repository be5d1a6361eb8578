"""The built-in reasoner's achieved FLOP/s (its exact FLOP count over the wall time of sampling a
whole W x D grid, noise and readout sampling included) against a plain torch matmul on the same
machine in the same run. Target: >= 30%.

    .venv/bin/python benchmarks/bench_reasoner.py
"""

from __future__ import annotations

import json
import platform
import random
import time

import torch

from widthdepth.lab.memory import keep_freed_memory
from widthdepth.lab.model import LatentReasoner, ReasonerConfig
from widthdepth.lab.sampling import sample_grid
from widthdepth.lab.tokens import random_chain, random_subset

PROBLEMS, CHAINS, ROUNDS, REPEATS = 64, 16, 8, 5


def matmul_flops_per_second(m: int = 1024, k: int = 1024, n: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    torch.matmul(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    return 2 * m * k * n * repeats / (time.perf_counter() - start)


def reasoner_flops_per_second(model: LatentReasoner) -> tuple[float, float]:
    rng = random.Random(0)
    problems = [random_chain(rng, 4) if i % 2 == 0 else random_subset(rng, 8) for i in range(PROBLEMS)]
    seeds = [[i * CHAINS + w for w in range(CHAINS)] for i in range(PROBLEMS)]
    flops = sum(model.iteration_flops(len(p.tokens)) for p in problems) * CHAINS * ROUNDS
    sample_grid(model, problems, CHAINS, ROUNDS, seeds)  # warm up
    start = time.perf_counter()
    for _ in range(REPEATS):
        sample_grid(model, problems, CHAINS, ROUNDS, seeds)
    seconds = (time.perf_counter() - start) / REPEATS
    return flops / seconds, seconds


def main() -> dict:
    keep_freed_memory()  # as the builtin:reasoner backend does
    torch.manual_seed(0)
    model = LatentReasoner(ReasonerConfig()).eval()  # FLOPs and speed do not depend on the weights
    matmul = matmul_flops_per_second()
    reasoner, seconds = reasoner_flops_per_second(model)
    matmul_after = matmul_flops_per_second()  # bracket: the machine's speed may drift
    reference = max(matmul, matmul_after)
    # the model's own largest product: (trajectories x positions) x d_model @ d_model x ffn
    same_shape = matmul_flops_per_second(PROBLEMS * CHAINS * 9, model.config.d_model, model.config.ffn, repeats=50)
    results = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads", "grid": f"{PROBLEMS} problems x {CHAINS} trajectories x {ROUNDS} "
               "iterations", "grid_seconds": round(seconds, 4), "reasoner_gflops": round(reasoner / 1e9, 2),
               "matmul_gflops": round(reference / 1e9, 2), "ratio": round(reasoner / reference, 3),
               "same_shape_matmul_gflops": round(same_shape / 1e9, 2),
               "ratio_to_same_shape": round(reasoner / same_shape, 3)}
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
