"""`builtin:` — models trained by widthdepth itself: the latent reasoner (`widthdepth lab train`) and
the small language model (`widthdepth lab train-lm`).

    builtin:reasoner                          the checkpoint shipped in the package
    builtin:reasoner,checkpoint=my.safetensors
    builtin:reasoner,device=cuda              on a GPU (auto: where there is one); not part of the model id
    builtin:thought[,checkpoint=PATH]         the latent-thought model: rule problems, width = restarts,
                                              depth = inference steps (gradient steps on z)
    builtin:memory[,checkpoint=PATH]          the fast-weight memory: recall problems, width = copies
                                              consolidated apart, depth = consolidation passes
    builtin:lm                                the shipped LM, run by llama.cpp: the same backend and
                                              model id as llamacpp:lm (settings as for llamacpp:)

A latent model answers a problem from its `structure` (chain, or search with kind=subset), not from
text: the runner asks it for a whole grid of W trajectories x D iterations at once (`sample_grid`);
width is the number of trajectories, depth the number of iterations, and cost is counted in exact
FLOPs (serial cost: iterations).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from widthdepth.backends.base import Completion, GenerationRequest, ModelInfo, Sample
from widthdepth.errors import WidthdepthError

CHECKPOINTS = Path(__file__).resolve().parent.parent / "lab" / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINTS / "reasoner.safetensors"
THOUGHT_CHECKPOINT = CHECKPOINTS / "thought.safetensors"
MEMORY_CHECKPOINT = CHECKPOINTS / "memory.safetensors"


class ReasonerBackend:
    def __init__(self, checkpoint: Path, model_id: str, threads: int = 0, device: str = "cpu") -> None:
        import torch  # heavy: only when this backend is used

        from widthdepth.lab.memory import keep_freed_memory
        from widthdepth.lab.train import load_checkpoint, resolve_device

        keep_freed_memory()
        if threads:
            torch.set_num_threads(threads)
        self.model, self.metadata = load_checkpoint(checkpoint)
        self.model.to(resolve_device(device, f"--model {model_id},device="))  # where it runs: not in the id
        digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12]
        self.info = ModelInfo(id=f"{model_id}@{digest}", n_params=self.model.n_params(), prompt_style="latent",
                              shares_prompt_prefix=True, supports_raw_continuation=False, context_length=0,
                              description=f"latent reasoner {checkpoint.name}", latent=True,
                              latent_search=True)

    def sample_grid(self, structures: list[dict], chains: int, rounds: int, seeds: list[list[int]]):  # noqa: ANN201
        from widthdepth.lab.sampling import sample_grid
        from widthdepth.lab.tokens import encode_structure

        return sample_grid(self.model, [encode_structure(s) for s in structures], chains, rounds, seeds)

    def search(self, structures: list[dict], rows: int, iterations: int, seeds: list[int], select):  # noqa: ANN001, ANN201
        from widthdepth.lab.search import search_latent
        from widthdepth.lab.tokens import encode_structure

        return search_latent(self.model, [encode_structure(s) for s in structures], rows, iterations, seeds, select)

    def check_task(self, structure: dict) -> None:
        from widthdepth.lab.tokens import encode_structure

        encode_structure(structure)  # raises a WidthdepthError naming what the reasoner can answer

    def generate(self, requests: Sequence[GenerationRequest]) -> Iterator[Sample]:
        for index, request in enumerate(requests):
            for i in range(request.n):
                yield Sample(index, i, Completion("", 0, 0, "error",
                                                  error=f"{self.info.id} answers problems, not text prompts"))

    def render_chat(self, messages: tuple[tuple[str, str], ...]) -> str:
        raise WidthdepthError(f"{self.info.id} reads problems, not chat messages")

    def close(self) -> None:
        pass


class ThoughtBackend(ReasonerBackend):
    """The latent-thought model: a restart is a trajectory, an inference step an iteration, and the examples'
    likelihood its verifier score."""

    kind, lab_module, loader = "latent-thought model", "thought", "load_thought"

    def __init__(self, checkpoint: Path, model_id: str, threads: int = 0, device: str = "cpu") -> None:
        import importlib

        import torch

        from widthdepth.lab.train import resolve_device

        if threads:
            torch.set_num_threads(threads)
        load = getattr(importlib.import_module(f"widthdepth.lab.{self.lab_module}_train"), self.loader)
        self.model, self.metadata = load(checkpoint)
        self.model.to(resolve_device(device, f"--model {model_id},device="))
        digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()[:12]
        self.info = ModelInfo(id=f"{model_id}@{digest}", n_params=self.model.n_params(), prompt_style="latent",
                              shares_prompt_prefix=True, supports_raw_continuation=False, context_length=0,
                              description=f"{self.kind} {checkpoint.name}", latent=True)

    def _lab(self):  # noqa: ANN202
        import importlib

        return importlib.import_module(f"widthdepth.lab.{self.lab_module}")

    def sample_grid(self, structures: list[dict], chains: int, rounds: int, seeds: list[list[int]]):  # noqa: ANN201
        return self._lab().sample_grid(self.model, structures, chains, rounds, seeds)

    def search(self, structures: list[dict], rows: int, iterations: int, seeds: list[int], select):  # noqa: ANN001, ANN201
        raise WidthdepthError(f"{self.info.id}: no latent search (its ModelInfo says so; plans refuse it first)")

    def check_task(self, structure: dict) -> None:
        import json

        trained = json.loads(self.metadata.get("train_config") or "{}")
        self._lab().check_structure(structure, self.model.config, trained)  # raises, naming what it can answer


class MemoryBackend(ThoughtBackend):
    """The fast-weight memory: a copy is a trajectory, a consolidation pass an iteration, and the copy's
    recall of the whole context its verifier score."""

    kind, lab_module, loader = "fast-weight memory", "consolidation", "load_memory"


def build(target: str, params: dict[str, str], options: object):  # noqa: ANN201
    if target == "lm":
        from widthdepth.backends import llamacpp

        return llamacpp.build("lm", params, options)
    unknown = sorted(set(params) - {"checkpoint", "device"})
    if unknown:
        raise WidthdepthError(f"--model builtin:{target}: unknown setting {unknown[0]!r} (valid: checkpoint=PATH, "
                              "device=auto|cpu|cuda|cuda:N)")
    shipped = {"thought": THOUGHT_CHECKPOINT, "memory": MEMORY_CHECKPOINT}.get(target, DEFAULT_CHECKPOINT)
    checkpoint = Path(params["checkpoint"]).expanduser() if "checkpoint" in params else shipped
    model_id = f"builtin:{target}" + (f",checkpoint={checkpoint.name}" if "checkpoint" in params else "")
    kind = {"thought": ThoughtBackend, "memory": MemoryBackend}.get(target, ReasonerBackend)
    return kind(checkpoint, model_id, getattr(options, "threads", 0), params.get("device", "cpu"))
