"""The llama.cpp backend's token sampler: exact temperature and nucleus (top-p) sampling."""

from __future__ import annotations

import numpy as np
import pytest

from widthdepth.backends.llamacpp import _inverse_cdf, sample_token


def expected(logits: np.ndarray, temperature: float, top_p: float) -> np.ndarray:
    p = np.exp((logits - logits.max()) / temperature)
    p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        keep = order[:int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return p


@pytest.mark.parametrize("temperature,top_p", [(1.0, 1.0), (0.7, 1.0), (1.0, 0.8), (1.3, 0.95), (0.5, 0.5)])
def test_frequencies_match_the_exact_distribution(temperature, top_p):
    logits = np.array([2.0, 1.0, 0.5, 0.0, -1.0, 3.0, 3.0, -4.0], dtype=np.float32)
    rng = np.random.default_rng(0)
    draws = 40_000
    counts = np.bincount([sample_token(logits, temperature, top_p, rng) for _ in range(draws)], minlength=8)
    p = expected(logits.astype(np.float64), temperature, top_p)
    assert np.all(counts[p == 0] == 0)  # nothing outside the nucleus, ever
    # every frequency within 5 standard errors of its probability
    assert np.all(np.abs(counts / draws - p) <= 5 * np.sqrt(p * (1 - p) / draws) + 1e-12), (counts / draws, p)


def test_greedy_and_a_large_vocabulary():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal(49_152).astype(np.float32) * 3
    assert sample_token(logits, 0.0, 0.9, rng) == int(np.argmax(logits))
    peaked = logits.copy()
    peaked[123] = 100.0  # all the mass on one token: every temperature and top-p must pick it
    assert {sample_token(peaked, 1.0, p, rng) for p in (1.0, 0.9, 0.5) for _ in range(20)} == {123}
    assert sample_token(logits, 1.0, 0.95, np.random.default_rng(5)) == sample_token(logits, 1.0, 0.95,
                                                                                   np.random.default_rng(5))


def test_the_two_level_inverse_cdf_matches_a_running_sum():
    rng = np.random.default_rng(2)
    for size in (1, 255, 256, 257, 1000, 49_152):
        weights = rng.random(size)
        total = np.cumsum(weights)
        for target in rng.random(50) * total[-1]:
            assert _inverse_cdf(weights, target) == min(int(np.searchsorted(total, target, side="right")), size - 1)
