"""The progress bar on stderr: one line for the run, one for the model being measured.

It refreshes only when an event arrives (events come between timed steps, at most five a second), so
no drawing thread competes with the model for the CPU or the interpreter lock.
"""

from __future__ import annotations

import sys
from typing import Any


class ProgressDisplay:
    """``with ProgressDisplay(n) as p: p.update(event); p.model_done()``; silent unless stderr is a tty."""

    def __init__(self, total_models: int, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.total = total_models
        self._progress: Any = None

    def __enter__(self) -> ProgressDisplay:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=Console(stderr=True), transient=True, auto_refresh=False,
            )  # fmt: skip
            self._progress.start()
            self._run = self._progress.add_task("models", total=self.total)
            self._step = self._progress.add_task("", total=1)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, event: dict[str, Any]) -> None:
        if self._progress is None:
            return
        stage = event.get("stage", "")
        label = f"{event.get('model', '')} {event.get('phase', '')}" + (f" ({stage})" if stage != "timed" else "")
        self._progress.update(self._step, description=label, completed=event.get("done", 0),
                              total=max(1, event.get("total", 1)))  # fmt: skip
        self._progress.refresh()

    def model_done(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._run)
            self._progress.refresh()
