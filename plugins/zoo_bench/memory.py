"""Peak memory of a benchmark phase's timed steps: the weights plus everything the steps hold.

CUDA: ``torch.cuda.max_memory_allocated`` over the timed steps (weights, optimizer state, activations
and workspaces all live on the device). With CUDA graphs it is taken over the whole phase, warm-up
included: a replay does not go through the allocator (its memory was allocated, and counted, when the
warm-up recorded the graph), so the timed steps alone would show little more than the weights.

CPU has no allocator statistics, so it is read from the process: the peak resident set over the timed
steps (Linux VmHWM, reset after the warm-up through /proc/self/clear_refs) minus the resident set when
the phase began, plus the size of the weights and buffers. The phase begins after the model has already
run once (its FLOPs are counted first), so the library code that a first run pages in is not counted.
Where the reset is not allowed the lifetime peak (getrusage) is used and ``peak_mem_method`` says so.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

_PROC = Path("/proc/self")


def _status_mb(field: str) -> float | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", (_PROC / "status").read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def _max_rss_mb() -> float:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def tensor_mb(model: Any) -> float:
    """Size of a model's parameters and buffers in MiB."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


class PeakMemory:
    """``begin()`` when a phase starts, ``start()`` after its warm-up, ``peak_mb()`` after its timed steps."""

    def __init__(self, device: str, static_mb: float = 0.0, cuda_graphs: bool = False) -> None:
        self.device = device
        self.static_mb = static_mb
        self.cuda_graphs = cuda_graphs and device != "cpu"
        self.method = "rss_peak_delta+weights" if device == "cpu" else "cuda_max_memory_allocated"
        if self.cuda_graphs:
            self.method += "_with_warmup"
        self.baseline_mb = 0.0

    def begin(self) -> None:
        if self.device == "cpu":
            self.baseline_mb = _status_mb("VmRSS") or _max_rss_mb()
        elif self.cuda_graphs:
            self._reset_cuda()

    def start(self) -> None:
        if self.device != "cpu":
            if not self.cuda_graphs:
                self._reset_cuda()
            return
        try:
            (_PROC / "clear_refs").write_text("5")  # resets VmHWM to the current resident set
        except OSError:
            self.method = "ru_maxrss_delta+weights"

    def _reset_cuda(self) -> None:
        import torch

        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mb(self) -> float:
        if self.device != "cpu":
            import torch

            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak = _status_mb("VmHWM") if self.method.startswith("rss") else None
        return max(0.0, (peak if peak is not None else _max_rss_mb()) - self.baseline_mb) + self.static_mb
