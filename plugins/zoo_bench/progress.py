"""Progress on stderr: on a terminal, a bar for the run and one for the model being measured; elsewhere (a
log file, a pipe), one line per finished model of a multi-model run, so a long run's log shows how far it got.

The bars refresh only when an event arrives (events come between timed steps, at most five a second), so
no drawing thread competes with the model for the CPU or the interpreter lock.
"""

from __future__ import annotations

import sys
from typing import Any


class ProgressDisplay:
    """``with ProgressDisplay(n) as p: p.update(event); p.model_done(record, seconds)``.

    ``enabled`` None: bars on a terminal, else lines when there are several models; False: silent.
    """

    def __init__(self, total_models: int, enabled: bool | None = None) -> None:
        tty = sys.stderr.isatty()
        self.enabled = tty if enabled is None else enabled
        self.lines = enabled is None and not tty and total_models > 1
        self.total = total_models
        self.done = 0
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

    def model_done(self, record: dict[str, Any] | None = None, seconds: float | None = None) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.advance(self._run)
            self._progress.refresh()
        elif self.lines and record is not None:
            status = "failed" if record.get("error") else "done"
            took = f" in {seconds:.1f} s" if seconds is not None else ""
            print(f"zoo: [{self.done}/{self.total}] {record.get('model')} {status}{took}", file=sys.stderr, flush=True)
