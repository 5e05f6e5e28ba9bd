"""One model's benchmark in a process of its own: ``python -m zoo_bench.worker JOB.json RESULT.json``.

A fresh process per model means no model inherits another's allocator caches, compiled graphs or
peak-memory counters. Progress events go to the parent as JSON lines on the original stdout; anything
else the model prints goes to stderr, so it cannot corrupt them. The record goes to RESULT.json.

Ctrl-C at a terminal reaches the whole process group: the worker ignores it and leaves the decision to
the parent, which stops it (kill) and reports the models that finished (runner.RunInterrupted).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo_bench.settings import BenchSettings


def run_in_subprocess(
    spec: str, settings: BenchSettings, on_progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Benchmark ``spec`` in a child process and return its record (errors included, never raised)."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        job, result = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job.write_text(json.dumps({"spec": spec, "settings": settings.to_dict()}))
        cmd = [sys.executable, "-m", "zoo_bench.worker", str(job), str(result)]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
            try:
                assert proc.stdout is not None
                for line in proc.stdout:
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if on_progress is not None and isinstance(event, dict):
                        on_progress(event)
                code = proc.wait()
            except BaseException:
                proc.kill()
                raise
        if result.is_file():
            return json.loads(result.read_text())
    return {"model": spec, "error": f"the benchmark process exited with code {code} before writing a result"}


def main(argv: list[str]) -> int:
    job_path, result_path = Path(argv[0]), Path(argv[1])
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # the model's own prints go to stderr
    sys.stdout = sys.stderr

    def progress(event: dict[str, Any]) -> None:
        protocol.write(json.dumps(event) + "\n")

    from zoo_bench.measure import measure
    from zoo_core.plugin_api import ZooError, atomic_write_json

    job = json.loads(job_path.read_text())
    spec = job["spec"]
    try:
        record = measure(spec, BenchSettings.from_dict(job["settings"]), progress)
    except ZooError as e:
        record = {"model": spec, "error": str(e), "error_exit_code": e.exit_code}
    atomic_write_json(result_path, record)
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # only in the instant before SIGINT was ignored
        sys.exit(130)
