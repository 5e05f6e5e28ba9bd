"""Top-1/top-5 of the benchmarked weights, measured in the same run exactly as `zoo eval` does.

zoo_train.evaluation owns how published weights are evaluated (their recorded preprocessing, matching
the dataset's classes to the model's labels), so the benchmark's accuracy and `zoo eval`'s agree.
"""

from __future__ import annotations

import time
from typing import Any

# zoo_train.evaluation autocasts bf16 only; other precisions are evaluated in fp32 (TF32 as set).
EVAL_PRECISIONS = ("fp32", "bf16")


def evaluate(built: Any, settings: Any, report: Any) -> dict[str, Any]:
    """Accuracy of ``built``'s weights on ``settings.dataset``'s test split (else val)."""
    from zoo_train.evaluation import evaluate_published

    precision = settings.precision if settings.precision in EVAL_PRECISIONS else "fp32"
    report("evaluate", 0, 1)
    start = time.perf_counter()
    result = evaluate_published(
        f"{built.qualified}.{built.tag}", settings.dataset, settings.data_dir, device=settings.device,
        batch_size=settings.batch_size, precision=precision,
        module=built.model if getattr(built.model, "zoo_runtime", None) else None,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    report("evaluate", 1, 1)
    return {
        "dataset": result["dataset"],
        "split": result["split"],
        "top1": result["top1"],
        "top5": result["top5"],
        "topk": result["topk"],
        "num_samples": result["num_samples"],
        "precision": precision,
        "seconds": round(seconds, 3),
    }
