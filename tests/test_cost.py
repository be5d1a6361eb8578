import pytest

from widthdepth.cost import AttemptCost, Cost, VerificationCost, attempt_flops, cell_cost, mean_cost


def a(prompt_key, prompt, gen, serial):
    return AttemptCost(prompt_key, prompt, gen, serial, 0.5)


def test_shared_prompt_counted_once_only_where_backend_shares():
    attempts = [a("p", 100, 10, 10), a("p", 100, 20, 20), a("q", 50, 5, 25)]
    shared = cell_cost(attempts, attempts[1:], [], n_params=1000, shares_prompt_prefix=True)
    unshared = cell_cost(attempts, attempts[1:], [], n_params=1000, shares_prompt_prefix=False)
    assert shared.prompt_tokens == 150 and unshared.prompt_tokens == 250
    assert shared.generated_tokens == 35
    assert shared.flops == attempt_flops(1000, 185) == 2 * 1000 * 185


def test_serial_tokens_take_the_longest_chain_not_the_sum():
    final_round = [a("x", 1, 5, 30), a("y", 1, 5, 12)]
    assert cell_cost(final_round, final_round, [], 1, True).serial_tokens == 30


def test_verifier_cost_is_kept_apart():
    cost = cell_cost([a("p", 10, 1, 1)], [], [VerificationCost(40, 2)], n_params=10, shares_prompt_prefix=True,
                     verifier_params=100)
    assert cost.verifier_tokens == 42 and cost.verifier_flops == 2 * 100 * 42
    assert cost.flops == 2 * 10 * 11


def test_mean_cost():
    mean = mean_cost([Cost(generated_tokens=2, serial_tokens=4), Cost(generated_tokens=4, serial_tokens=0)])
    assert mean.generated_tokens == pytest.approx(3) and mean.serial_tokens == pytest.approx(2)
    assert mean_cost([]) == Cost()
