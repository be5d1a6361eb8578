"""The lab's models on another device (issue 20's `--device`): every tensor the reasoner makes follows its
input's device — checked by running on the CPU with torch's default device set to `meta`, so a tensor made
without naming its device lands on `meta`, and every operation is checked to take its tensors from one
device (0-dim ones aside), as CUDA requires of a CPU tensor — and a
device that is not there is one line, exit 2, before anything is written. (No GPU here: the CUDA runs
themselves are for a lent GPU.)"""

from __future__ import annotations

import random

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from widthdepth.errors import WidthdepthError
from widthdepth.lab.model import LatentReasoner, ReasonerConfig
from widthdepth.lab.tokens import random_chain, random_subset
from widthdepth.lab.train import encode_batch, masked_value_logits, readout_correct, resolve_device

PRODUCTS = {torch.ops.aten.mm, torch.ops.aten.mv, torch.ops.aten.bmm, torch.ops.aten.addmm, torch.ops.aten.addmv,
            torch.ops.aten.baddbmm, torch.ops.aten.dot}
"""Matrix products: CUDA has none on integers."""


class OneDevice(TorchDispatchMode):
    """Fails what CUDA would refuse: an operation whose tensor arguments (0-dim ones aside, as on CUDA) are
    on different devices, or a matrix product of integers."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        tensors = [t for t in tree_flatten((args, kwargs or {}))[0] if isinstance(t, torch.Tensor)]
        devices = {t.device.type for t in tensors if t.dim() > 0}
        assert len(devices) <= 1, f"{func} mixes tensors on {sorted(devices)}"
        assert not (func.overloadpacket in PRODUCTS and any(not t.is_floating_point() for t in tensors)), \
            f"{func} multiplies integers"
        return func(*args, **(kwargs or {}))


no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without a GPU")


@pytest.mark.parametrize("items", [4, 16])  # heads folded into the positions (<= 12), and not
@pytest.mark.parametrize("layers", [1, 3])
def test_the_reasoner_makes_its_tensors_where_its_input_is(items, layers):
    from widthdepth.lab.sampling import sample_grid
    from widthdepth.lab.search import search_latent
    from widthdepth.lab.train import loss_and_metrics

    model = LatentReasoner(ReasonerConfig(d_model=16, ffn=32, layers=layers))
    rng = random.Random(0)
    problems = [random_chain(rng, 3), random_subset(rng, items), random_chain(rng, 2)]
    batch = encode_batch(problems)
    with torch.device("meta"), OneDevice():  # anything made without a device lands on meta, beside the CPU's
        readouts = model(batch.tokens, batch.family, 3)
        logits = masked_value_logits(readouts[-1].value_logits, batch.modulus)
        assert readout_correct(batch, logits, readouts[-1].include_logits).device.type == "cpu"
        loss, _ = loss_and_metrics(model, batch, 3)
        loss.backward()
        grid = sample_grid(model, problems, 2, 3, [[1, 2], [3, 4], [5, 6]])
        nodes = search_latent(model, problems, 2, 3, [1, 2, 3], lambda p, t, scores, answers: [1, 1])
    assert loss.device.type == "cpu" and len(grid[1][1]) == 3 and nodes[2][2][0].parent == 1


@no_gpu
def test_a_device_that_is_not_here_is_refused():
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(WidthdepthError, match="--device cuda: torch sees no CUDA device here"):
        resolve_device("cuda")
    with pytest.raises(WidthdepthError, match="--device 'tpu': unknown"):
        resolve_device("tpu")


@no_gpu
def test_the_commands_refuse_a_missing_gpu_in_one_line(tmp_path, capsys):
    from widthdepth.cli import main

    assert main(["lab", "sweep", "--experiment", "depth", "--device", "cuda", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert "torch sees no CUDA device" in err and len(err.splitlines()) == 1 and not (tmp_path / "s").exists()
    assert main(["run", "--model", "builtin:reasoner,device=cuda", "--tasks", "chain:L=1", "--plan", "grid:2x2",
                 "--problems", "2", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err  # not a terminal: the bar leaves nothing, not even a blank line
    assert err.startswith("error: --model builtin:reasoner,device=cuda: torch sees no CUDA device")
    assert err.count("\n") == 1


def test_the_train_command_takes_a_width_and_a_device(tmp_path, capsys):
    from widthdepth.cli import main
    from widthdepth.lab.train import load_checkpoint

    out = tmp_path / "r.safetensors"
    assert main(["lab", "train", "--steps", "2", "--batch-size", "8", "--d-model", "16", "--device", "cpu",
                 "--out", str(out)]) == 0
    model, metadata = load_checkpoint(out)
    assert model.config.d_model == 16 and model.config.ffn == 64 and "--d-model 16 " in metadata["command"]
    assert main(["lab", "train", "--d-model", "6", "--out", str(tmp_path / "bad.safetensors")]) == 2
    assert "--d-model 6: give a multiple of 4" in capsys.readouterr().err
    assert not (tmp_path / "bad.safetensors").exists()
