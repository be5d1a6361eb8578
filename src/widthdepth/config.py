"""Typed run configuration: from CLI options, a YAML recipe, and ``key=value`` overrides.

Validated without I/O (names are checked against the registries; files are checked when loaded).
The resolved config is saved as ``config.yaml`` next to the store.

    config = load_config("recipes/demo.yaml", overrides=["problems=3", "plans=[grid:2x2]"])
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from widthdepth.errors import WidthdepthError


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)
    # each setting's docstring is its one description: `run --help` shows it with the default

    model: str = "llamacpp:smollm2-135m"
    """Backend and model, e.g. llamacpp:smollm2-135m (see `widthdepth models`)."""
    tasks: list[str] = Field(default_factory=lambda: ["chain:L=4"], min_length=1)
    """Task specs, e.g. chain:L=4, search, jsonl:data.jsonl (see `widthdepth tasks`); repeat --tasks for several."""
    plans: list[str] = Field(default_factory=lambda: ["grid:4x2"], min_length=1)
    """Plan specs: parallel:N, sequential:D, grid:NxD (mode=revise|extend), adaptive:POLICY.json@BUDGET;
    repeat --plan for several (they share attempts)."""
    problems: int = Field(10, ge=1, le=100_000)
    """Problems per task."""
    seed: int = Field(0, ge=0)
    """Seeds problem generation and every attempt's sampling."""
    repeats: int = Field(1, ge=1, le=1000)
    """Runs of each method plan (early, beam, dvts, particles, refine, deepconf) on the same problems, the
    first with --seed's sampling, each other with a sampling seed of its own: the method's points pool
    them, so their intervals include the seed's noise. Grids and policies run once."""
    out: str = "runs/latest"
    """Output folder: the store (widthdepth.sqlite) and config.yaml."""
    max_tokens: int = Field(256, ge=1, le=32_768)
    """Generated tokens per attempt at most (all backends)."""
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    """Sampling temperature; 0 is greedy (all backends)."""
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    """Nucleus sampling mass (all backends)."""
    verifier: str = "auto"
    """auto | exact | self | latent | none | reward:URL (see `widthdepth tasks`)."""
    threads: int = Field(0, ge=0)
    """CPU threads of local backends; 0: the cores other processes leave free, followed as that changes
    (llama.cpp; torch's default for builtin: and hf:)."""
    context_length: int = Field(4096, ge=256)
    """Context window of local backends, in tokens."""
    executor: str = "local"
    """Where attempts are generated: local, or ray[:ADDRESS] — model replicas on a Ray cluster (ray:HOST:PORT,
    ray:auto for the cluster this machine joined; plain ray: $RAY_ADDRESS, else a cluster of this machine's cores).
    This process alone writes the store; the store is the same either way."""
    replicas: int = Field(0, ge=0)
    """Model replicas on Ray, each loading the model once; 0: as many as the cluster holds."""
    replica_cpus: float = Field(1.0, gt=0)
    """CPUs each Ray replica holds (with --threads 0, also its threads)."""
    replica_gpus: float = Field(0.0, ge=0)
    """GPUs each Ray replica holds; 0 with a vllm: model: its tensor_parallel_size."""
    chunk: int = Field(0, ge=0)
    """Problems per chunk sent to a Ray replica; 0: each plan's problems in 4 chunks per replica."""

    @field_validator("executor")
    @classmethod
    def _executor(cls, value: str) -> str:
        if value != "local" and not (value == "ray" or value.startswith("ray:") and len(value) > 4):
            raise ValueError("expected local, ray, ray:auto or ray:HOST:PORT")
        return value

    @field_validator("tasks", "plans", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


FIELDS = list(RunConfig.model_fields)


def _one_line(exc: ValidationError, where: str) -> WidthdepthError:
    error = exc.errors()[0]
    name = ".".join(str(p) for p in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        return WidthdepthError(f"{where}unknown setting {name!r} (valid: {', '.join(FIELDS)})")
    return WidthdepthError(f"{where}{name}: {error['msg']} (got {error.get('input')!r})")


def make_config(values: dict[str, Any], where: str = "") -> RunConfig:
    try:
        return RunConfig(**values)
    except ValidationError as exc:
        raise _one_line(exc, where) from None


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in overrides:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise WidthdepthError(f"override {item!r}: expected key=value, e.g. problems=20")
        try:
            values[key.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            values[key.strip()] = raw
    return values


def load_recipe(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise WidthdepthError(f"--recipe {str(path)!r}: no such file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise WidthdepthError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(data, dict):
        raise WidthdepthError(f"{path}: a recipe is a mapping of settings, e.g. 'model: llamacpp:smollm2-135m'")
    return data


def load_config(recipe: str | Path | None = None, overrides: list[str] | None = None,
                **options: Any) -> RunConfig:
    """Recipe, then explicit options (None means not given), then key=value overrides."""
    values: dict[str, Any] = load_recipe(recipe) if recipe else {}
    where = f"{recipe}: " if recipe else ""
    try:
        RunConfig(**values)
    except ValidationError as exc:
        raise _one_line(exc, where) from None
    values.update({k: v for k, v in options.items() if v is not None and v != []})
    values.update(parse_overrides(overrides or []))
    return make_config(values)


def save_config(config: RunConfig, folder: str | Path) -> Path:
    path = Path(folder) / "config.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(), sort_keys=False), encoding="utf-8")
    return path
