"""Batch-1 latency of an export beside its eager model: what an export's record says about speed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def median_ms(step: Callable[[], Any], *, warmup: int = 3, budget_s: float = 1.5, min_runs: int = 5,
              max_runs: int = 200) -> float:  # fmt: skip
    """The median wall time of ``step`` in milliseconds, over as many runs as fit ``budget_s``."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return 1e3 * times[len(times) // 2]


def batch1(eager: Any, run: Callable[[Any], Any], sample: Any, budget_s: float = 1.5,
           rounds: int = 3) -> dict[str, Any]:  # fmt: skip
    """Median batch-1 latency of ``run`` (numpy in, numpy out) and of the eager model on one picture, measured in
    alternating rounds so that other work on the machine weighs on both alike."""
    import numpy as np
    import torch

    x = sample[:1].contiguous()
    array = np.ascontiguousarray(x.numpy(), dtype=np.float32)
    exported, eager_ms = [], []
    with torch.inference_mode():
        for i in range(rounds):
            warm = 3 if i == 0 else 1
            exported.append(median_ms(lambda: run(array), warmup=warm, budget_s=budget_s / rounds))
            eager_ms.append(median_ms(lambda: eager(x), warmup=warm, budget_s=budget_s / rounds))
    ours, theirs = sorted(exported)[rounds // 2], sorted(eager_ms)[rounds // 2]
    return {"batch": 1, "export_ms": round(ours, 4), "eager_ms": round(theirs, 4),
            "ratio": round(ours / theirs, 4) if theirs else None, "threads": torch.get_num_threads()}
