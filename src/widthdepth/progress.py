"""The progress bar of `run` and `study`, and the watch that says when throughput collapses.

    with attempt_progress(errors) as bar:
        result = run(config, progress=RichProgress(bar, errors))
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Column
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class ThroughputWatch:
    """Generated tokens per second over windows of `window` seconds; one warning the first time a
    window falls below `collapse` times the best window so far (a busy machine, a stalled server)."""

    def __init__(self, window: float = 15.0, collapse: float = 1 / 3, min_tokens: int = 200) -> None:
        self.window, self.collapse, self.min_tokens = window, collapse, min_tokens
        self.best = 0.0
        self.warned = False
        self._start: float | None = None
        self._tokens = 0

    def add(self, tokens: int, now: float) -> str | None:
        """Count `tokens` made by `now`; returns the warning line once, when throughput collapses."""
        if self._start is None:
            self._start = now
        self._tokens += tokens
        elapsed = now - self._start
        if elapsed < self.window:
            return None
        rate, enough = self._tokens / elapsed, self._tokens >= self.min_tokens
        self._start, self._tokens = now, 0
        if self.best and rate < self.collapse * self.best and not self.warned:
            self.warned = True
            return (f"throughput fell from {self.best:,.0f} to {rate:,.0f} tokens/s: the machine looks busy (or "
                    "the server is). The llama.cpp backend follows the free cores itself with --threads 0 (the "
                    "default); a fixed --threads above the free cores stalls it (README, \"Threads\")")
        if enough:
            self.best = max(self.best, rate)
        return None


class RichProgress:
    """Attempts done/total, generated tokens per second, ETA; a line above the bar when throughput collapses."""

    def __init__(self, progress: Progress, console: Console | None = None, watch: ThroughputWatch | None = None) -> None:
        self.progress, self.console = progress, console or progress.console
        self.task = progress.add_task("starting", total=0, rate="")
        self.tokens = 0
        self.start = time.perf_counter()
        self.watch = watch or ThroughputWatch()

    def add_total(self, attempts: int) -> None:
        total = (self.progress.tasks[0].total or 0) + attempts
        self.progress.update(self.task, total=total)

    def advance(self, attempts: int, generated_tokens: int = 0) -> None:
        self.tokens += generated_tokens
        now = time.perf_counter()
        rate = self.tokens / max(now - self.start, 1e-9)
        self.progress.update(self.task, advance=attempts, rate=f"{rate:,.0f} tok/s")
        warning = self.watch.add(generated_tokens, now)
        if warning:
            self.console.print(warning, style="yellow", soft_wrap=True)

    def describe(self, text: str) -> None:
        self.progress.update(self.task, description=text)


class AttemptBar(Progress):
    """The bar; an error before any attempt is counted (a model that does not load, no cluster) leaves
    no bar behind, so the error's one line is all the command prints."""

    def __exit__(self, exc_type, exc, traceback) -> None:  # noqa: ANN001
        if exc_type is not None and not any(task.total for task in self.tasks):
            self.live.transient = True
            if not self.console.is_interactive:  # not `stop()`: it ends a log or a pipe with a blank line
                self.live.stop()
                return
        super().__exit__(exc_type, exc, traceback)


def attempt_progress(console: Console) -> Progress:
    """The bar of `run` and `study`: what runs, attempts done/total, tokens per second, elapsed, ETA.
    Narrower than 110 columns it drops the elapsed time and cuts only the description short, so the
    numbers are never cut (`chain:L=4,m=10 gri… ━━━━━ 33/64 10 tok/s ETA 0:12`)."""
    if console.width >= 110:
        return AttemptBar(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("attempts"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                        TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False)
    numbers = 38  # "━━━━━━━━ 1234/1234 12,345 tok/s ETA 1:23:45" and the gaps between columns
    description = Column(no_wrap=True, overflow="ellipsis", max_width=max(10, console.width - numbers - 2))
    return AttemptBar(TextColumn("{task.description}", table_column=description), BarColumn(bar_width=8),
                    MofNCompleteColumn(), TextColumn("{task.fields[rate]}"), TextColumn("ETA"),
                    TimeRemainingColumn(compact=True), console=console, transient=False, expand=False)
