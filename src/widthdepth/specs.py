"""Parsing of the ``name:arg,key=value`` strings used for models, task families and plans.

    >>> parse_spec("chain:L=4,m=10", option="--tasks")
    Spec(name='chain', args=(), params={'L': '4', 'm': '10'}, text='chain:L=4,m=10', option='--tasks')
    >>> parse_spec("grid:4x2", option="--plan").args
    ('4x2',)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from widthdepth.errors import WidthdepthError


@dataclass(frozen=True)
class Spec:
    name: str
    args: tuple[str, ...] = ()
    params: dict[str, str] = field(default_factory=dict)
    text: str = ""
    option: str = ""

    def int_param(self, key: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        raw = self.params.get(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise self.error(f"{key}={raw!r} is not a whole number") from None
        if minimum is not None and value < minimum or maximum is not None and value > maximum:
            bounds = f"{minimum if minimum is not None else '-inf'}..{maximum if maximum is not None else 'inf'}"
            raise self.error(f"{key}={value} is out of range {bounds}")
        return value

    def check_known(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.params) - allowed)
        if unknown:
            valid = ", ".join(sorted(allowed)) or "none"
            raise self.error(f"unknown parameter {unknown[0]!r} (valid: {valid})")

    def error(self, what: str) -> WidthdepthError:
        where = f"{self.option} " if self.option else ""
        return WidthdepthError(f"{where}{self.text!r}: {what}")


def parse_spec(text: str, option: str = "") -> Spec:
    """Split ``name[:part,part,...]`` where each part is ``key=value`` or a positional argument."""
    text = text.strip()
    name, _, rest = text.partition(":")
    if not name:
        raise WidthdepthError(f"{option + ' ' if option else ''}{text!r}: missing a name before ':'")
    args: list[str] = []
    params: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))) if rest else ():
        key, eq, value = part.partition("=")
        if eq and key and "/" not in key:
            params[key.strip()] = value.strip()
        else:
            args.append(part)
    return Spec(name=name, args=tuple(args), params=params, text=text, option=option)


def stable_int(*parts: object, bits: int = 31) -> int:
    """A seed derived from its parts that is the same in every process and on every machine."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << bits)


def stable_hash(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()
