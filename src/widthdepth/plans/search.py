"""Search over partial solutions, guided by a verifier that scores them (a process reward):

    beam:N,M        keep the N best partial solutions; each unfinished one is continued M times a step
    dvts:N,M        diverse verifier tree search: N/M independent subtrees, each keeping its best of M
    particles:N     particle filtering: N particles continued one step each, resampled by their scores

Options, all kinds: ``steps=S`` (most steps, default 24), ``step=line|blank|TEXT`` (where a step ends,
default ``line``: the task families write one step a line), ``tokens=T`` (most tokens a step, default
64). A solution ends when it states its answer, when a step adds nothing, or at the run's
--max-tokens along its path. Text models need raw-text continuation; the verifier must score
partial solutions (`--verifier steps` on chain).

    >>> from widthdepth.specs import parse_spec
    >>> load_search(parse_spec("beam:4,2"))
    SearchPlan(kind='beam', width=4, expand=2, steps=24, delimiter='\\n', step_tokens=64)
"""

from __future__ import annotations

from dataclasses import dataclass

from widthdepth.errors import WidthdepthError
from widthdepth.specs import Spec

DELIMITERS = {"line": "\n", "blank": "\n\n"}


@dataclass(frozen=True)
class SearchPlan:
    kind: str
    width: int
    """Beams kept (beam), expansions a step in all (dvts), particles (particles)."""
    expand: int = 1
    """Continuations of each kept unfinished node a step (beam: M, dvts: M, particles: 1)."""
    steps: int = 24
    delimiter: str = "\n"
    step_tokens: int = 64
    mode: str = "revise"
    """Only so that checks over every plan's mode read the same."""

    @property
    def spec(self) -> str:
        """The plan's text, settings at their defaults left out (as `grid:` leaves out mode=revise)."""
        head = f"{self.kind}:{self.width}" + (f",{self.expand}" if self.kind != "particles" else "")
        named = {v: k for k, v in DELIMITERS.items()}
        step = named.get(self.delimiter, self.delimiter.encode("unicode_escape").decode())
        defaults = SearchPlan(self.kind, self.width, self.expand)
        return head + "".join(f",{name}={value}" for name, value, default in (
            ("steps", self.steps, defaults.steps), ("step", step, "line"), ("tokens", self.step_tokens,
                                                                            defaults.step_tokens)) if value != default)

    @property
    def rounds(self) -> int:
        return 1

    @property
    def attempts_per_problem(self) -> int:
        return 0  # not known ahead: each step adds what it generates to the progress bar

    @property
    def slots(self) -> int:
        """Nodes kept between steps: N beams, N/M subtrees, N particles."""
        return self.width // self.expand if self.kind == "dvts" else self.width

    needs_partial_verifier = True

    def check_backend(self, info) -> None:  # noqa: ANN001 - backends.ModelInfo
        if info.latent and not info.latent_search:
            raise WidthdepthError(f"--plan {self.spec!r}: {info.id.split('@')[0]} runs grid, parallel, sequential and "
                                  "early plans; beam, dvts and particles resample the built-in reasoner's latent "
                                  "states (use builtin:reasoner)")
        if not info.latent and not info.supports_raw_continuation:
            raise WidthdepthError(f"--plan {self.spec!r}: search continues partial solutions as raw text, which "
                                  f"{info.id} cannot do; use a llamacpp: or hf: model")

    def check_family(self, family) -> None:  # noqa: ANN001 - tasks.TaskFamily
        """A delimiter that never occurs in the family's worked solutions would make every solution one step."""
        solutions = [d.solution for d in family.demonstrations(2)] if hasattr(family, "demonstrations") else []
        if solutions and not any(self.delimiter in s for s in solutions):
            raise WidthdepthError(f"--plan {self.spec!r}: the step delimiter {self.delimiter!r} never occurs in "
                                  f"{family.spec}'s worked solutions; use step=line")


def load_search(spec: Spec) -> SearchPlan:
    spec.check_known({"steps", "step", "tokens"})
    wanted = 1 if spec.name == "particles" else 2
    example = "particles:N, e.g. particles:8" if wanted == 1 else f"{spec.name}:N,M, e.g. {spec.name}:4,4"
    if len(spec.args) != wanted or not all(a.isdigit() for a in spec.args):
        raise spec.error(f"expected {example}")
    numbers = [int(a) for a in spec.args]
    if any(n < 1 or n > 1024 for n in numbers):
        raise spec.error(f"N and M must be whole numbers from 1 to 1024; expected {example}")
    width, expand = numbers[0], numbers[1] if wanted == 2 else 1
    if spec.name == "dvts" and width % expand:
        raise spec.error(f"N={width} must be a multiple of M={expand} (N/M subtrees of beam width M)")
    raw = spec.params.get("step", "line")
    delimiter = DELIMITERS.get(raw, raw.encode().decode("unicode_escape"))
    if not delimiter:
        raise spec.error("step= must not be empty (line, blank, or the text that ends a step)")
    return SearchPlan(spec.name, width, expand, spec.int_param("steps", 24, minimum=1, maximum=256), delimiter,
                      spec.int_param("tokens", 64, minimum=1, maximum=8192))
