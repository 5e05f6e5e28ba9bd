"""Throughput against accuracy (when every model has one) or against GMACs, as a picture file.

Results whose step times show interference (``unstable``, see ``timing``) are drawn hollow, with a legend
entry saying so, so that a swing caused by other work on the machine is not read as the model's speed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import UsageError, image_format, write_output


def plot(records: list[dict[str, Any]], path: str | Path) -> str:
    """Draw inference samples/s (log scale) against top-1 or GMACs; return what the x axis shows."""
    import matplotlib.pyplot as plt

    fig, xlabel = figure(records)
    image = io.BytesIO()
    fig.savefig(image, format=image_format(path))
    plt.close(fig)
    write_output(path, image.getvalue(), "--plot")
    return xlabel


def figure(records: list[dict[str, Any]]) -> tuple[Any, str]:
    """The plot as a matplotlib figure (the caller closes it), and what its x axis shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from zoo_bench.timing import UNSTABLE_RATIO

    points = [r for r in records if (r.get("infer") or r.get("train")) and not r.get("error")]
    if not points:
        raise UsageError("--plot: no model was measured, so there is nothing to draw")
    phase = "infer" if all(r.get("infer") for r in points) else "train"
    by_accuracy = all((r.get("accuracy") or {}).get("top1") is not None for r in points)
    xs = [r["accuracy"]["top1"] if by_accuracy else r["gmacs"] for r in points]
    ys = [r[phase]["samples_per_sec"] for r in points]
    shaky = [bool(r[phase].get("unstable")) for r in points]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    steady = [(x, y) for x, y, s in zip(xs, ys, shaky, strict=True) if not s]
    if steady:
        ax.scatter(*zip(*steady, strict=True), color="tab:blue", label="steady step times")
    if any(shaky):
        unsteady = [(x, y) for x, y, s in zip(xs, ys, shaky, strict=True) if s]
        ax.scatter(*zip(*unsteady, strict=True), facecolors="none", edgecolors="tab:red",
                   label=f"unstable: p90 or mean step > {UNSTABLE_RATIO}x median")  # fmt: skip
        ax.legend(fontsize=8)
    for r, x, y, s in zip(points, xs, ys, shaky, strict=True):
        ax.annotate(r["model"] + (" (!)" if s else ""), (x, y), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)  # fmt: skip
    ax.set_yscale("log")
    if not by_accuracy and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    xlabel = "top-1 accuracy (%)" if by_accuracy else "GMACs per sample"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{phase} samples/s")
    env = points[0].get("environment") or {}
    ax.set_title(f"{env.get('device_name', '')}, {env.get('precision', '')}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig, xlabel
