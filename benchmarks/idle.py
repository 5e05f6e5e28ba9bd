"""Waiting for a shared machine to go quiet before a measurement (Linux /proc/stat; elsewhere a no-op).

On a box that others use too, a run that overlaps their work measures them as much as the model; the
comparison scripts call this between runs, when none of their own work is running.
"""

from __future__ import annotations

import time


def busy_fraction(seconds: float = 1.0) -> float | None:
    """Share of all CPU time spent busy over the next ``seconds`` (None where /proc/stat is missing)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields), idle

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total > 0 else 0.0


def wait_until_idle(max_wait: float = 300.0, threshold: float = 0.15, quiet_seconds: int = 3) -> float:
    """Block until the CPUs are below ``threshold`` busy for ``quiet_seconds`` in a row, or ``max_wait``
    has passed; return the seconds waited."""
    start = time.monotonic()
    quiet = 0
    while time.monotonic() - start < max_wait:
        busy = busy_fraction()
        if busy is None:
            break
        quiet = quiet + 1 if busy < threshold else 0
        if quiet >= quiet_seconds:
            break
    return time.monotonic() - start
