"""The policy file of adaptive allocation, as data: predictor bins, and for each budget level one plan
per bin. `widthdepth allocate fit` writes it, `adaptive:POLICY.json@BUDGET` plans read it.

    policy = load_policy("policy.json")
    level = policy.level_for(2e7)           # the most generous level within the budget
    w, d, aggregator = level.plans[policy.bin_of(predicted)]
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from widthdepth.cost import UNITS
from widthdepth.errors import WidthdepthError
from widthdepth.specs import stable_hash

PREDICTORS = ("agreement", "confidence", "verifier")
POLICY_FORMAT = 1
KEY_CHARS = 16
"""Problem keys in a policy file are hashed and cut to this many hex digits (collisions: ~2^-64 per pair)."""

Choice = tuple[int, int, str]
"""What a policy chooses for a bin: (w chains, d rounds, aggregator)."""


@dataclass(frozen=True)
class Level:
    budget: float
    """Mean cost per problem this level may spend (in the policy's unit, probe included)."""
    plans: list[Choice]
    """One cell per bin."""
    train_accuracy: float
    train_cost: float


@dataclass
class Policy:
    predictor: str
    probe: int
    unit: str
    edges: list[float]
    """Bin b holds predictor values in [edges[b-1], edges[b]) (open at both ends)."""
    weights: list[float]
    levels: list[Level]
    fitted_on: list[str]
    grid: str = ""
    mode: str = "revise"
    model: str = ""
    tasks: list[str] = field(default_factory=list)
    verifier: str = ""
    """The verifiers of the runs it was fitted on, comma-separated (for the record: a run that uses
    the policy needs a verifier when its plans use best-of or it predicts from verifier scores)."""

    @property
    def bins(self) -> int:
        return len(self.edges) + 1

    def bin_of(self, value: float) -> int:
        return int(np.searchsorted(self.edges, value, side="right"))

    def level_for(self, budget: float) -> Level:
        """The most generous level within `budget`."""
        fitting = [level for level in self.levels if level.budget <= budget * (1 + 1e-9)]
        if not fitting:
            raise WidthdepthError(f"budget {budget:g} is below the policy's cheapest level "
                                  f"{self.levels[0].budget:g} {self.unit} (the probe alone costs about that)")
        return fitting[-1]

    def to_json(self) -> dict[str, Any]:
        return {"widthdepth_policy": POLICY_FORMAT, "model": self.model, "tasks": self.tasks, "grid": self.grid,
                "mode": self.mode, "verifier": self.verifier, "predictor": self.predictor, "probe": self.probe,
                "unit": self.unit,
                "bins": {"edges": self.edges, "weights": self.weights},
                "levels": [{"budget": lv.budget, "train_accuracy": lv.train_accuracy, "train_cost": lv.train_cost,
                            "plans": [{"bin": b, "w": w, "d": d, "aggregator": a}
                                      for b, (w, d, a) in enumerate(lv.plans)]} for lv in self.levels],
                "fitted_on": self.fitted_on}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")


def load_policy(path: str | Path, option: str = "--policy") -> Policy:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise WidthdepthError(f"{option} {path}: no such file; make one with `widthdepth allocate fit`") from None
    except (OSError, json.JSONDecodeError) as error:
        raise WidthdepthError(f"{option} {path}: not a policy file ({error})") from None
    if not isinstance(data, dict) or data.get("widthdepth_policy") != POLICY_FORMAT:
        raise WidthdepthError(f"{option} {path}: not a widthdepth policy (format {POLICY_FORMAT}); "
                              "make one with `widthdepth allocate fit`")
    try:
        levels = [Level(float(lv["budget"]), [(int(p["w"]), int(p["d"]), str(p["aggregator"])) for p in lv["plans"]],
                        float(lv["train_accuracy"]), float(lv["train_cost"])) for lv in data["levels"]]
        policy = Policy(str(data["predictor"]), int(data["probe"]), str(data["unit"]),
                        [float(e) for e in data["bins"]["edges"]], [float(x) for x in data["bins"]["weights"]],
                        levels, [str(k) for k in data["fitted_on"]], str(data.get("grid", "")),
                        str(data.get("mode", "revise")), str(data.get("model", "")), list(data.get("tasks", [])),
                        str(data.get("verifier") or ""))
    except (KeyError, TypeError, ValueError) as error:
        raise WidthdepthError(f"{option} {path}: a policy field is missing or malformed ({error!r})") from None
    if not policy.levels or any(len(lv.plans) != policy.bins for lv in policy.levels):
        raise WidthdepthError(f"{option} {path}: every level needs one plan per bin ({policy.bins})")
    if policy.predictor not in PREDICTORS or policy.unit not in UNITS or policy.probe < 1:
        raise WidthdepthError(f"{option} {path}: unknown predictor, unit or probe size")
    return policy


def short_key(key: str) -> str:
    """A problem's key as a policy file keeps it: the start of its hash."""
    return stable_hash(key)[:KEY_CHARS]
