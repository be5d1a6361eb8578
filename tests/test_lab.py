"""The latent reasoner: shapes, FLOPs arithmetic, per-iteration readout, determinism, and a short real
training run that beats the untrained model."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from widthdepth.lab.evaluate import chain_accuracy
from widthdepth.lab.model import LatentReasoner, ReasonerConfig
from widthdepth.lab.sampling import sample_grid
from widthdepth.lab.tokens import encode_structure, random_chain, random_subset
from widthdepth.lab.train import TrainConfig, encode_batch, load_checkpoint, save_checkpoint, train
from widthdepth.tasks import load_task


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LatentReasoner(ReasonerConfig()).eval()


def test_readout_after_every_iteration_has_the_right_shapes(model):
    rng = random.Random(0)
    batch = encode_batch([random_chain(rng, 3), random_subset(rng, 6), random_chain(rng, 1)])
    readouts = model(batch.tokens, batch.family, 5, noise=[torch.zeros(3, 7, model.config.noise_rank)] * 5)
    assert len(readouts) == 5
    for r in readouts:
        assert r.value_logits.shape == (3, 7, 16) and r.include_logits.shape == (3, 7) and r.score_logits.shape == (3,)


def test_the_first_d_iterations_do_not_depend_on_how_many_follow(model):
    batch = encode_batch([random_chain(random.Random(1), 4)])
    noise = [torch.randn(1, 5, model.config.noise_rank, generator=torch.Generator().manual_seed(t)) for t in range(6)]
    short = model(batch.tokens, batch.family, 3, noise=noise[:3])
    long = model(batch.tokens, batch.family, 6, noise=noise)
    for a, b in zip(short, long):
        assert torch.equal(a.value_logits, b.value_logits)


def test_chain_attention_reaches_one_position_per_iteration(model):
    """Changing the first step cannot move the last position's readout before enough iterations."""
    a = encode_batch([encode_structure({"family": "chain", "start": 1, "steps": [["add", 1]] * 4, "size": 10})])
    b = encode_batch([encode_structure({"family": "chain", "start": 7, "steps": [["add", 1]] * 4, "size": 10})])
    zeros = [torch.zeros(1, 5, model.config.noise_rank)] * 5
    ra, rb = model(a.tokens, a.family, 5, noise=zeros), model(b.tokens, b.family, 5, noise=zeros)
    for t in range(3):  # after iteration k the start (position 0) has reached position k, not beyond
        assert torch.equal(ra[t].value_logits[0, 4], rb[t].value_logits[0, 4])
    assert not torch.equal(ra[3].value_logits[0, 4], rb[3].value_logits[0, 4])


def test_iteration_flops_match_torch_flop_counter(model):
    heads = model.config.heads
    for tokens, family in (([4, 20, 25, 30, 40], 0), ([70, 100, 101, 105, 110, 112, 120], 1)):
        t = torch.tensor([tokens])
        fam = torch.tensor([family])
        with FlopCounterMode(display=False) as encoding:
            encoded = model.encode(t)
        bias = model._attention_bias(t, fam)
        noise = torch.randn(1, len(tokens), model.config.noise_rank)
        with FlopCounterMode(display=False) as counter:
            state = model.iterate(torch.zeros_like(encoded), encoded, bias, fam, noise)
            model.readout(state, t)
        s, d = len(tokens), model.config.d_model
        with FlopCounterMode(display=False) as attention:  # the attention the heads need, as explicit products
            q = torch.randn(1, heads, s, d // heads)
            torch.softmax(q @ q.transpose(-1, -2), -1) @ q
        batched = sum(n for op, n in counter.get_flop_counts()["Global"].items() if "bmm" in str(op))
        # short sequences fold the heads into the positions: their cross-head products are computed
        # and discarded, and not counted
        assert batched == heads * attention.get_total_flops()
        assert model.iteration_flops(s) == counter.get_total_flops() - batched + attention.get_total_flops()
        assert model.encoding_flops(len(tokens)) == encoding.get_total_flops()


def test_folded_attention_matches_the_fused_kernel(model, monkeypatch):
    rng = random.Random(4)
    mixed = encode_batch([random_chain(rng, 3), random_subset(rng, 6), random_chain(rng, 1)])  # padded
    uniform = encode_batch([random_subset(rng, 5), random_subset(rng, 5)])  # one shared mask
    for batch in (mixed, uniform):
        noise = [torch.randn(len(batch.tokens), batch.tokens.shape[1], model.config.noise_rank) for _ in range(3)]
        with torch.no_grad():
            folded = model(batch.tokens, batch.family, 3, noise=noise)
            monkeypatch.setattr("widthdepth.lab.model.FOLDED_ATTENTION_MAX", 0)
            fused = model(batch.tokens, batch.family, 3, noise=noise)
            monkeypatch.undo()
            alone = [model(batch.tokens[i:i + 1], batch.family[i:i + 1], 3, noise=[n[i:i + 1] for n in noise])
                     for i in range(len(batch.tokens))]
        for t in range(3):
            torch.testing.assert_close(folded[t].value_logits, fused[t].value_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(folded[t].include_logits, fused[t].include_logits, atol=1e-5, rtol=1e-5)
            for i, row in enumerate(alone):
                torch.testing.assert_close(folded[t].value_logits[i], row[t].value_logits[0], atol=1e-5, rtol=1e-5)


def test_sampling_is_deterministic_per_trajectory(model):
    problems = [encode_structure(p.structure) for p in load_task("chain:L=3").problems(3, seed=0)]
    seeds = [[10 * i + w for w in range(4)] for i in range(3)]
    rng = random.Random(2)
    problems += [random_subset(rng, 6), random_subset(rng, 3), random_chain(rng, 2)]  # other families and lengths
    seeds += [[10 * i + w for w in range(4)] for i in range(3, 6)]
    grid = sample_grid(model, problems, 4, 3, seeds)
    for i in (1, 3):  # alone, fewer trajectories, fewer iterations: the same answers
        again = sample_grid(model, problems[i:i + 1], 2, 2, [seeds[i][:2]])
        for w in range(2):
            assert [x.answer for x in again[0][w]] == [x.answer for x in grid[i][w][:2]]
    assert len({x.answer for row in grid[3] for x in row}) > 1  # trajectories differ
    assert grid[0][0][0].flops == model.iteration_flops(4) + model.encoding_flops(4)
    assert all(x.flops == model.iteration_flops(4) for x in grid[0][0][1:])


def test_unsupported_problems_are_refused():
    with pytest.raises(Exception, match="search:kind=subset"):
        encode_structure(load_task("search").problems(1, seed=0)[0].structure)


def test_short_training_beats_the_untrained_model_and_is_deterministic(tmp_path):
    config = TrainConfig(family="chain", steps=300, batch_size=128, max_chain_length=1, max_iterations=2, seed=3,
                         learning_rate=3e-3, d_model=64, ffn=256)  # smaller than the default: a quick test
    untrained = LatentReasoner(ReasonerConfig(d_model=64, ffn=256)).eval()
    trained, summary = train(config)
    trained.eval()
    before = chain_accuracy(untrained, 1, 200, 2, seed=5)[-1]
    after = chain_accuracy(trained, 1, 200, 2, seed=5)[-1]
    assert after > before + 0.2, (before, after)
    again, _ = train(config)
    for (name, a), (_, b) in zip(trained.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    path = save_checkpoint(trained, tmp_path / "r.safetensors", config, summary, command="test")
    loaded, metadata = load_checkpoint(path)
    assert metadata["command"] == "test"
    assert chain_accuracy(loaded, 1, 200, 2, seed=5)[-1] == after


def test_a_stack_applies_a_block_of_its_own_at_each_iteration():
    """`layers` = 3: three unique blocks (no sharing), iteration t applies block t, at most 3 iterations;
    the shared-block model's parameter names (and so its checkpoints) are unchanged."""
    torch.manual_seed(0)
    shared, stack = (LatentReasoner(ReasonerConfig(d_model=32, ffn=64, layers=n)).eval() for n in (1, 3))
    block = sum(p.numel() for name, p in shared.named_parameters() if name.split(".")[0] in (
        "norm_attention", "query", "key", "value", "attention_out", "norm_ffn", "ffn_in", "ffn_out"))
    assert stack.n_params() == shared.n_params() + 2 * block
    assert not any(name.startswith("stack") for name in shared.state_dict())
    batch = encode_batch([random_chain(random.Random(2), 4)])
    zeros = [torch.zeros(1, 5, 8)] * 3
    before = stack(batch.tokens, batch.family, 3, noise=zeros)
    with torch.no_grad():
        stack.stack[1].ffn_out.weight.add_(1.0)  # block 2, applied at iteration 3 only
    after = stack(batch.tokens, batch.family, 3, noise=zeros)
    assert all(torch.equal(a.value_logits, b.value_logits) for a, b in zip(before[:2], after[:2]))
    assert not torch.equal(before[2].value_logits, after[2].value_logits)
    with pytest.raises(ValueError, match="at most 3 iterations"):
        stack(batch.tokens, batch.family, 4)


@pytest.mark.parametrize("layers, last_only", [(1, False), (1, True), (3, True)])
def test_a_training_steps_flops_match_torch_flop_counter(layers, last_only):
    """`step_flops`, forward and backward, against torch's counter (one head: no folded cross-head products)."""
    from widthdepth.lab.train import loss_and_metrics, random_batch, step_flops

    torch.manual_seed(0)
    model = LatentReasoner(ReasonerConfig(d_model=32, ffn=64, heads=1, layers=layers))
    batch = random_batch(random.Random(1), TrainConfig(batch_size=6, max_chain_length=5, min_items=4, max_items=6))
    with FlopCounterMode(display=False) as counter:
        loss, _ = loss_and_metrics(model, batch, 3, last_only=last_only)
        loss.backward()
    assert step_flops(model, batch, 3, last_only) == counter.get_total_flops()


def test_a_stack_trains_at_its_depth_and_round_trips(tmp_path):
    from widthdepth.errors import WidthdepthError

    config = TrainConfig(family="chain", steps=3, batch_size=8, d_model=32, ffn=64, layers=3, threads=1)
    model, summary = train(config)
    assert model.config.layers == 3 and summary["training_flops"] > 0
    path = save_checkpoint(model, tmp_path / "stack.safetensors", config, summary)
    loaded, metadata = load_checkpoint(path)
    batch = encode_batch([random_chain(random.Random(3), 3)])
    zeros = [torch.zeros(1, 4, 8)] * 3
    assert torch.equal(loaded(batch.tokens, batch.family, 3, noise=zeros)[-1].value_logits,
                       model.eval()(batch.tokens, batch.family, 3, noise=zeros)[-1].value_logits)
    with pytest.raises(WidthdepthError, match="trains at depth 3"):
        train(TrainConfig(steps=1, layers=3, depth=5))


@pytest.mark.parametrize("depth", [0, 2])  # random depths (the shipped recipe: rng draws them) and a fixed one
def test_training_killed_and_resumed_reaches_the_same_weights(tmp_path, depth):
    config = TrainConfig(family="mix", steps=12, batch_size=8, d_model=16, ffn=32, max_iterations=3, depth=depth,
                         seed=4, threads=1)
    whole, summary = train(config)

    def crash_at(step: int):
        def on_step(done: int, metrics: dict) -> None:
            if done == step:
                raise KeyboardInterrupt  # as a kill: the state of step - 1 is the last one saved
        return on_step

    resume = tmp_path / "state.resume"
    with pytest.raises(KeyboardInterrupt):
        train(config, crash_at(7), resume=resume, every=0.0)
    steps: list[int] = []
    resumed, again = train(config, lambda step, metrics: steps.append(step), resume=resume, every=0.0)
    assert steps == list(range(7, 13))  # went on from step 7, not from the start
    for (name, a), (_, b) in zip(whole.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    assert again["training_flops"] == summary["training_flops"] and again["final"] == summary["final"]
    steps.clear()
    train(replace(config, seed=5), lambda step, metrics: steps.append(step), resume=resume, every=0.0)
    assert steps[0] == 1  # another recipe's state is not read
    resume.write_bytes(b"cut short")
    steps.clear()
    train(config, lambda step, metrics: steps.append(step), resume=resume)
    assert steps[0] == 1
