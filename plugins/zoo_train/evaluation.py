"""Accuracy of a classifier on a dataset split: top-1, top-5, per class, and the confusion matrix.

``evaluate_published`` evaluates weights from the catalogue (``simplecnn.<tag>``) with the preprocessing
published with them, so an evaluation sees the data exactly as training did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo_core.errors import UsageError


def predict(
    model: Any, split: Any, pipeline: Any, *, batch_size: int = 256, precision: str = "fp32", k: int = 5
) -> tuple[Any, Any]:
    """The top-``k`` predicted class indices (N x k) and the true labels (N), on the CPU."""
    import torch

    from zoo_core.datasets import batches
    from zoo_core.devices import autocast

    was_training = model.training
    model.eval()
    tops, truths = [], []
    with torch.inference_mode(), autocast(pipeline.device, precision):
        for images, labels in batches(split, batch_size):
            logits = model(pipeline(images))
            tops.append(logits.float().topk(min(k, logits.shape[1]), dim=1).indices.cpu())
            truths.append(labels.cpu())
    model.train(was_training)
    return torch.cat(tops), torch.cat(truths)


def top1(model: Any, split: Any, pipeline: Any, **kwargs: Any) -> float:
    """Top-1 accuracy in percent (labels are model output indices)."""
    top, labels = predict(model, split, pipeline, k=1, **kwargs)
    return round(100.0 * float((top[:, 0] == labels).float().mean()), 2)


def accuracy_report(top: Any, labels: Any, names: list[str]) -> dict[str, Any]:
    """top-1, top-5 (top-k for fewer classes), per-class top-1 in percent, and the confusion matrix
    (rows: true class, columns: predicted), from ``predict``'s output."""
    import torch

    n = len(names)
    pred = top[:, 0]
    confusion = torch.zeros(n, n, dtype=torch.long)
    confusion.index_put_((labels, pred), torch.ones_like(labels), accumulate=True)
    per_class = {}
    for i, name in enumerate(names):
        total = int(confusion[i].sum())
        if total:
            per_class[name] = round(100.0 * int(confusion[i, i]) / total, 2)
    hits5 = (top == labels[:, None]).any(dim=1)
    return {
        "top1": round(100.0 * float((pred == labels).float().mean()), 2),
        "top5": round(100.0 * float(hits5.float().mean()), 2),
        "topk": int(top.shape[1]),
        "per_class_top1": per_class,
        "num_samples": int(labels.numel()),
        "labels": list(names),
        "confusion": confusion.tolist(),
    }


def evaluate(
    model: Any, split: Any, pipeline: Any, labels: list[str], *, batch_size: int = 256, precision: str = "fp32"
) -> dict[str, Any]:
    """``accuracy_report`` of ``model`` on ``split`` (whose labels index ``labels``)."""
    top, truth = predict(model, split, pipeline, batch_size=batch_size, precision=precision)
    return accuracy_report(top, truth, labels)


def _label_map(model_labels: list[str], classes: list[str], ref: str) -> Any:
    """Dataset class index -> model output index, matching by name."""
    import torch

    where = {name: i for i, name in enumerate(model_labels)}
    missing = [c for c in classes if c not in where]
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UsageError(f"{ref} does not know the dataset's classes {shown} (it predicts: "
                         f"{', '.join(model_labels[:10])}{' ...' if len(model_labels) > 10 else ''})")  # fmt: skip
    return torch.tensor([where[c] for c in classes], dtype=torch.long)


def evaluate_published(
    spec: str, dataset: str, data_dir: str | None = None, *, device: str = "auto", batch_size: int = 256,
    precision: str = "fp32", data_options: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Evaluate ``[plugin:]model[.tag]`` (the default tag when none is given) on the test split (else
    val) of ``dataset``, preprocessing it as the tag's metadata says."""
    import torch

    from zoo_core.datasets import load_dataset
    from zoo_core.devices import check_precision, numerics, resolve_device
    from zoo_core.environment import environment
    from zoo_core.models import create_model, resolve
    from zoo_train.pipeline import BatchPipeline

    entry, tag = resolve(spec)
    if tag is None:
        tag = entry.default_tag
        if tag is None:
            raise UsageError(f"{entry.qualified} has no trained weights; train some with `zoo train {entry.name} "
                             f"--dataset {dataset}` or name a tag: {entry.name}.TAG")  # fmt: skip
    weights = entry.weights(tag)
    dev = resolve_device(device)
    check_precision(dev, precision)
    data = load_dataset(dataset, data_dir, **(data_options or {}))
    model = create_model(entry.qualified, pretrained=tag)
    pre = weights.preprocessing
    model_labels = list(weights.labels)
    if not model_labels:
        if weights.num_classes != data.num_classes:
            raise UsageError(f"{weights.ref} predicts {weights.num_classes} classes and records no labels; {data.name} "
                             f"has {data.num_classes} classes, so they cannot be matched")  # fmt: skip
        model_labels = list(data.classes)  # same count and no names: assume the same order
    mapping = _label_map(model_labels, data.classes, weights.ref)
    split = data.split(data.eval_split)
    split = type(split)(split.pixels, mapping[split.labels])
    pipeline = BatchPipeline(mean=pre.mean, std=pre.std, size=pre.input_size[1:], channels=pre.channels, device=dev)
    model.to(dev, memory_format=torch.channels_last)
    with numerics(dev, precision):
        report = evaluate(model, split, pipeline, model_labels, batch_size=batch_size, precision=precision)
    present = set(data.classes)
    report["per_class_top1"] = {k: v for k, v in report["per_class_top1"].items() if k in present}
    return {
        "model": entry.qualified,
        "tag": tag,
        "ref": weights.ref,
        "dataset": data.name,
        "split": data.eval_split,
        **report,
        "preprocessing": pre.to_dict(),
        "precision": precision,
        "environment": environment(str(dev)),
    }


def plot_confusion(report: dict[str, Any], path: str | Path) -> Path:
    """Draw ``report["confusion"]`` as a heat map (matplotlib, no display needed); written atomically, and a
    path that cannot be written is a one-line error."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from zoo_core.output import image_format, write_output

    path = Path(path)
    fmt = image_format(path)
    matrix = np.asarray(report["confusion"], dtype=float)
    labels = report["labels"]
    n = len(labels)
    side = min(4 + 0.45 * n, 30)
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if n <= 30:
        ax.set_xticks(range(n), labels, rotation=45, ha="right")
        ax.set_yticks(range(n), labels)
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if shares[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    title = report.get("ref") or report.get("model") or "model"
    ax.set_title(f"{title} on {report.get('dataset', '')} {report.get('split', '')}: top-1 {report['top1']}%")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=120)
    plt.close(fig)
    write_output(path, buffer.getvalue(), "--plot")
    return path
