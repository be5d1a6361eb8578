"""Problems of the built-in families as token sequences for the latent reasoner, and the targets.

- chain (add/multiply/subtract by 1..9, modulo m <= 16, L <= 16): ``[CHAIN_START(s), OP(op, c) x L]``;
  the target at position i is the value after i operations (position 0: the start value).
- search, kind=subset (items 1..20, n <= 12): ``[TARGET(t), ITEM(v) x n]``; the target of item i is
  whether it belongs to the generating subset.

    >>> encode_structure({"family": "chain", "start": 3, "steps": [["add", 4]], "size": 10})
    Encoded(family='chain', tokens=[4, 17], values=[3, 7], modulus=10)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from widthdepth.errors import WidthdepthError

MAX_MODULUS = 16
MAX_CONSTANT = 9
MAX_ITEM = 20
MAX_TARGET = 64
MAX_LENGTH = 17  # positions: a start or target token plus up to 16 steps or items
OPS = ("add", "mul", "sub")

PAD = 0
CHAIN_START = 1                                   # + start value (0..15)
OP_BASE = CHAIN_START + MAX_MODULUS               # + op index * 9 + (c - 1)
TARGET_BASE = OP_BASE + len(OPS) * MAX_CONSTANT   # + target (0..64)
ITEM_BASE = TARGET_BASE + MAX_TARGET + 1          # + item value (1..20)
VOCAB = ITEM_BASE + MAX_ITEM + 1


@dataclass(frozen=True)
class Encoded:
    family: str
    """"chain" or "search"."""
    tokens: list[int]
    values: list[int] = field(default_factory=list)
    """chain: the value after each prefix (supervision at every position); search: inclusion bits."""
    modulus: int = 0
    items: list[int] = field(default_factory=list)
    target: int = 0


def _apply(op: str, x: int, c: int, m: int) -> int:
    return {"add": x + c, "mul": x * c, "sub": x - c}[op] % m


def encode_chain(start: int, steps: list[tuple[str, int]], modulus: int) -> Encoded:
    if not 2 <= modulus <= MAX_MODULUS or len(steps) > MAX_LENGTH - 1:
        raise WidthdepthError(f"the built-in reasoner handles chain with m <= {MAX_MODULUS} and L <= "
                              f"{MAX_LENGTH - 1}; got m={modulus}, L={len(steps)}")
    tokens, values, x = [CHAIN_START + start], [start], start
    for op, c in steps:
        tokens.append(OP_BASE + OPS.index(op) * MAX_CONSTANT + (c - 1))
        x = _apply(op, x, c, modulus)
        values.append(x)
    return Encoded("chain", tokens, values, modulus)


def encode_subset(items: list[int], target: int, chosen: list[int] | None = None) -> Encoded:
    if len(items) > MAX_LENGTH - 1 or max(items) > MAX_ITEM or target > MAX_TARGET:
        raise WidthdepthError(f"the built-in reasoner handles search:kind=subset with n <= {MAX_LENGTH - 1}, "
                              f"items <= {MAX_ITEM} and targets <= {MAX_TARGET}")
    bits = [0] * len(items)
    for index in chosen or []:
        bits[index] = 1
    return Encoded("search", [TARGET_BASE + target] + [ITEM_BASE + v for v in items], bits,
                   items=list(items), target=target)


def encode_structure(structure: dict) -> Encoded:
    """A stored problem's `structure` as reasoner input (the gold is not needed)."""
    family = structure.get("family")
    if family == "chain":
        return encode_chain(structure["start"], [(op, c) for op, c in structure["steps"]], structure["size"])
    if family == "search" and structure.get("kind") == "subset":
        return encode_subset(structure["items"], structure["target"])
    raise WidthdepthError(f"the built-in reasoner handles chain and search:kind=subset problems, not "
                          f"{family}:{structure.get('kind', '')}")


def random_chain(rng: random.Random, length: int, modulus: int = 10, ops: tuple[str, ...] = ("add", "mul")) -> Encoded:
    start = rng.randrange(modulus)
    return encode_chain(start, [(rng.choice(ops), rng.randint(1, MAX_CONSTANT)) for _ in range(length)], modulus)


def random_subset(rng: random.Random, n: int) -> Encoded:
    """As `search:kind=subset` draws them: items 1..20, the target the sum of 2-3 of them."""
    items = [rng.randint(1, MAX_ITEM) for _ in range(n)]
    chosen = rng.sample(range(n), rng.randint(2, max(2, min(3, n))))
    return encode_subset(items, sum(items[i] for i in chosen), chosen)
