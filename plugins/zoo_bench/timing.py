"""Timing a step many times: CUDA events on a GPU, perf_counter on a CPU, and robust summaries.

Per-step CUDA events are recorded without synchronising between steps, so the host keeps queueing
work as in real use; the one synchronisation comes after the last step.

Interference: a model's steps do the same work every time, so on a quiet machine their times sit close
together (p90 within ~1.2x of the median, and so is the mean). Other work on the machine shows in two
ways, and either marks the figures ``unstable``: many slowed steps push the p90 above
``UNSTABLE_RATIO`` x the median; a few long stalls (another process's burst, swapping) leave the p90
alone but stretch the wall time, so the mean step rises above ``UNSTABLE_RATIO`` x the median.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

UNSTABLE_RATIO = 1.5


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between the closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Timing:
    """Step times of one timed loop (seconds) and the wall time from its first step to its last."""

    steps: list[float]
    elapsed: float

    def summary(self, batch_size: int) -> dict[str, Any]:
        median, p90 = percentile(self.steps, 50), percentile(self.steps, 90)
        mean = sum(self.steps) / len(self.steps)
        spread = spread_ratios(median, p90, mean)
        return {
            "samples_per_sec": batch_size / median,
            "samples_per_sec_mean": batch_size * len(self.steps) / self.elapsed,
            "step_time_ms": median * 1e3,
            "step_time_ms_p90": p90 * 1e3,
            "step_time_ms_mean": mean * 1e3,
            "step_time_ms_min": min(self.steps) * 1e3,
            "iters": len(self.steps),
            **spread,
            "unstable": is_unstable(spread),
        }


def spread_ratios(median: float, p90: float, mean: float) -> dict[str, float]:
    """How far the slow steps sit from the median: p90 / median and mean / median."""
    if median <= 0:  # a step too short for the clock: no spread can be told
        return {"p90_over_median": 1.0, "mean_over_median": 1.0}
    return {"p90_over_median": p90 / median, "mean_over_median": mean / median}


def is_unstable(spread: dict[str, float]) -> bool:
    """Whether the spread shows interference from other work (see the module's docstring)."""
    return max(spread["p90_over_median"], spread["mean_over_median"]) > UNSTABLE_RATIO


def time_steps(
    step: Callable[[], Any],
    iters: int,
    device: str,
    on_step: Callable[[int], None] | None = None,
) -> Timing:
    """Run ``step`` ``iters`` times and time each run; ``on_step(i)`` runs between steps, untimed."""
    if device == "cpu":
        return _time_cpu(step, iters, on_step)
    return _time_cuda(step, iters, device, on_step)


def _time_cpu(step: Callable[[], Any], iters: int, on_step: Callable[[int], None] | None) -> Timing:
    clock = time.perf_counter
    steps = [0.0] * iters
    start = clock()
    for i in range(iters):
        t0 = clock()
        step()
        steps[i] = clock() - t0
        if on_step is not None:
            on_step(i)
    return Timing(steps, clock() - start)


def _time_cuda(step: Callable[[], Any], iters: int, device: str, on_step: Callable[[int], None] | None) -> Timing:
    import torch

    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(iters)]
    stream = torch.cuda.current_stream(device)
    torch.cuda.synchronize(device)
    for i in range(iters):
        events[i][0].record(stream)
        step()
        events[i][1].record(stream)
        if on_step is not None:
            on_step(i)
    torch.cuda.synchronize(device)
    steps = [start.elapsed_time(end) / 1e3 for start, end in events]
    return Timing(steps, events[0][0].elapsed_time(events[-1][1]) / 1e3)


def auto_iters(step_time: float, device: str) -> int:
    """Enough timed steps for a stable median: about 10 s on a CPU (2 s on a GPU), within bounds."""
    target, low, high = (10.0, 8, 200) if device == "cpu" else (2.0, 50, 2000)
    return int(min(high, max(low, math.ceil(target / max(step_time, 1e-6)))))
