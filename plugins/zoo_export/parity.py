"""The parity gate: an export is kept only if it computes what the eager model computes on real pictures.

The export runs every picture at batch 1 and again in larger batches, and so does the eager model, batch for
batch; each run's logits are compared with the eager model's. It passes when, on every picture and at every batch size:

- the top-1 class is the eager model's (where the eager model's two best classes lie within the tolerance of
  each other, either one counts: no float arithmetic can order them, and the record counts such ties), and
- every logit is within ``ATOL + RTOL * max|eager logit of that picture|`` of the eager one.

The tolerance is stated here, in docs/export.md and in every export's record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from zoo_core.plugin_api import ZooError

ATOL = 1e-3
RTOL = 1e-3
LARGER_BATCH = 16


class ExportRefused(ZooError):
    """The export was made but does not compute what the model computes (or could not be made), or its int8
    model loses more accuracy than allowed: nothing kept."""


@dataclass
class Parity:
    """What the gate found, over every picture and batch size."""

    images: int
    batches: list[int]
    source: str
    top1_differs: int = 0  # pictures whose top-1 differs in at least one batch size
    beyond_tolerance: int = 0  # pictures with a logit beyond the tolerance
    ties: int = 0  # pictures whose eager top-2 lie within the tolerance
    max_abs_diff: float = 0.0
    worst_share: float = 0.0  # max over pictures of |Δ| / its tolerance: below 1 passes
    non_finite: int = 0
    branches: bool = False  # the exporter saw the model turn a tensor into a Python value (data-dependent control)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.top1_differs and not self.beyond_tolerance and not self.non_finite

    def summary(self) -> str:
        """One line: what differed, or what agreed."""
        diff = f"max |Δlogit| {self.max_abs_diff:.3g}"
        if self.non_finite:
            return f"non-finite logits on {self.non_finite} of {self.images} images"
        if self.top1_differs:
            text = f"top-1 differs on {self.top1_differs} of {self.images} images; {diff}"
        elif self.beyond_tolerance:
            text = (f"logits beyond tolerance on {self.beyond_tolerance} of {self.images} images; {diff} "
                    f"({self.worst_share:.3g}x the tolerance)")  # fmt: skip
        else:
            return (f"top-1 agrees on all {self.images} images at batch {' and '.join(map(str, self.batches))}; "
                    f"{diff}")  # fmt: skip
        return text + (": the model branches on its input" if self.branches else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed, "images": self.images, "source": self.source, "batches": self.batches,
            "top1_differs": self.top1_differs, "beyond_tolerance": self.beyond_tolerance, "ties": self.ties,
            "max_abs_diff": float(f"{self.max_abs_diff:.4g}"), "worst_share": float(f"{self.worst_share:.4g}"),
            "tolerance": {"atol": ATOL, "rtol": RTOL, "rule": "|Δ| <= atol + rtol * max|eager logit|"},
        }  # fmt: skip


def eager_runner(model: Any) -> Callable[[Any], Any]:
    """numpy in, numpy float32 logits out: the eager model under inference mode."""
    import torch

    def run(x: Any) -> Any:
        with torch.inference_mode():
            out = model(torch.from_numpy(x))
        return (out[0] if isinstance(out, (tuple, list)) else out).float().cpu().numpy()

    return run


def batch_sizes(fixed: int | None, images: int) -> list[int]:
    """Batch 1 and a larger one for an export of any batch; a fixed-batch export runs at its own only."""
    if fixed is not None:
        return [fixed]
    return [1, min(LARGER_BATCH, images)]


def _batched(run: Callable[[Any], Any], x: Any, size: int) -> Any:
    """``run`` over ``x`` in batches of ``size``; a last batch that falls short is padded with the first pictures
    and cut back, so every call sees a full batch."""
    import numpy as np

    outs = []
    for start in range(0, x.shape[0], size):
        chunk = x[start:start + size]
        short = size - chunk.shape[0]
        if short:
            chunk = np.concatenate([chunk, x[:short]])
        outs.append(np.asarray(run(chunk), dtype=np.float64)[: size - short])
    return np.concatenate(outs)


def check(eager: Callable[[Any], Any], run: Callable[[Any], Any], inputs: Any, batches: Sequence[int],
          source: str) -> Parity:  # fmt: skip
    """Run the export (``run``: numpy N x C x H x W -> numpy logits) and the eager model (``eager``, alike) over
    ``inputs`` in the same batches, at each batch size, and compare: a model whose output depends on what else is
    in its batch is compared with itself in that very batch."""
    import numpy as np

    x = inputs.numpy() if hasattr(inputs, "numpy") else np.asarray(inputs)
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = x.shape[0]
    result = Parity(images=n, batches=list(batches), source=source)
    differs = np.zeros(n, bool)
    beyond = np.zeros(n, bool)
    bad = np.zeros(n, bool)
    ties = np.zeros(n, bool)
    for size in batches:
        ref = _batched(eager, x, size)
        finite = np.isfinite(ref).all(axis=1)
        if not finite.all():
            result.non_finite = int((~finite).sum())
            result.notes.append("the eager model itself gives non-finite logits")
            return result
        tolerance = ATOL + RTOL * np.abs(ref).max(axis=1)
        ordered = np.sort(ref, axis=1)
        if ref.shape[1] > 1:
            ties |= ordered[:, -1] - ordered[:, -2] <= tolerance
        got = _batched(run, x, size)
        if got.shape != ref.shape:
            raise ValueError(f"the export gives logits of shape {got.shape[1:]} at batch {size}, the eager model "
                             f"{ref.shape[1:]}")  # fmt: skip
        bad |= ~np.isfinite(got).all(axis=1)
        delta = np.abs(got - ref).max(axis=1)
        delta = np.where(np.isfinite(delta), delta, np.inf)
        beyond |= delta > tolerance
        top = got.argmax(axis=1)
        # a tie: the export's top-1 is a class the eager model scores within the tolerance of its best
        close = ref[np.arange(n), top] >= ordered[:, -1] - tolerance
        differs |= (top != ref.argmax(axis=1)) & ~close
        finite_delta = delta[np.isfinite(delta)]
        if finite_delta.size:
            result.max_abs_diff = max(result.max_abs_diff, float(finite_delta.max()))
        result.worst_share = max(result.worst_share, float((delta / tolerance).max()))
    result.ties = int(ties.sum())
    result.top1_differs = int(differs.sum())
    result.beyond_tolerance = int(beyond.sum())
    result.non_finite = int(bad.sum())
    return result
