"""Accuracy of a classifier on a dataset split: top-1, top-5, per class, and the confusion matrix.

``evaluate_published`` evaluates weights from the catalogue (``simplecnn.<tag>``, ``resnet50.imagenet1k_v2``)
with their own preprocessing: weights zoo trained see the data exactly as training did; others read the
image files with their library's resize and crop. Class folders are matched to the weights' classes by
name, by ImageNet WordNet id, else by sorted order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import UsageError

TTAS = ("none", "flip", "flip-translate", "unsure")  # test-time augmentation: the views tta_logits sums
UNSURE_BELOW = 0.65  # ``unsure``: flip-translate for the images whose top class has a probability under this
SHIFTED_WEIGHT = 0.5  # flip-translate: each shifted view counts half as much as the image and its mirror image
FLIP_TRANSLATE_WEIGHT = 2 + 4 * SHIFTED_WEIGHT  # the sum of flip-translate's view weights

# On a CPU a batch's activations should stay in the caches: SimpleCNN predicts the 10,000 CIFAR-10 test
# images in 0.9 s at batch 128 and 1.5 s at 256 (ImprovedCNN 2.1 s and 3.9 s) on the 2-vCPU dev box.
CPU_EVAL_BATCH = 128
GPU_EVAL_BATCH = 256


def eval_batch_size(device: Any, train_batch: int = 0) -> int:
    """The batch to predict with on ``device``: 128 on a CPU; on an accelerator 256, or the training batch
    when larger (it fits, and needs no gradients)."""
    import torch

    return CPU_EVAL_BATCH if torch.device(device).type == "cpu" else max(GPU_EVAL_BATCH, train_batch)


def predict(
    model: Any, split: Any, pipeline: Any, *, batch_size: int | None = None, precision: str = "fp32", k: int = 5,
    tta: str = "none",
) -> tuple[Any, Any]:  # fmt: skip
    """The top-``k`` predicted class indices (N x k) and the true labels (N), on the CPU; ``batch_size``
    defaults to ``eval_batch_size`` of the pipeline's device. Test-time augmentation (``tta``): ``flip`` sums the
    logits of each image and its mirror image, ``flip-translate`` adds both shifted one pixel diagonally each way
    (the border mirrored), with their mirror images, at half weight; ``unsure`` takes flip-translate's views only
    for the images whose plain prediction is unsure (top probability under ``UNSURE_BELOW``: about 30% of
    CIFAR-10's test images for the ``cifar10-fast`` model, at the same top-1 as flip-translate and 40% of its
    time)."""
    import torch

    from zoo_core.plugin_api import autocast, batches

    batch_size = batch_size or eval_batch_size(pipeline.device)
    was_training = model.training
    model.eval()
    tops, truths = [], []
    with torch.inference_mode(), autocast(pipeline.device, precision):
        for images, labels in batches(split, batch_size):
            logits = tta_logits(model, pipeline(images), tta)
            tops.append(logits.float().topk(min(k, logits.shape[1]), dim=1).indices.cpu())
            truths.append(labels.cpu())
    model.train(was_training)
    return torch.cat(tops), torch.cat(truths)


def tta_logits(model: Any, x: Any, tta: str = "none") -> Any:
    """``model``'s logits for the batch ``x``, summed over the views ``tta`` names (see ``predict``)."""
    logits = model(x)
    if tta == "none":
        return logits
    if tta == "flip":
        return logits.float() + model(x.flip(3)).float()
    if tta == "flip-translate":
        return _flip_translate(model, x, logits)
    # unsure: the views only for the images whose plain prediction is unsure; the others' logits count as
    # often as the views' weights add up to, so every row is on the same scale
    logits = logits.float()
    unsure = (logits.softmax(1).amax(1) < UNSURE_BELOW).nonzero().squeeze(1)
    summed = logits * FLIP_TRANSLATE_WEIGHT
    if len(unsure):
        summed[unsure] = _flip_translate(model, x[unsure].contiguous(memory_format=_memory_format(x)), logits[unsure])
    return summed


def _flip_translate(model: Any, x: Any, logits: Any) -> Any:
    """The ``flip-translate`` sum for ``x``, whose plain logits are ``logits``: the image and its mirror image,
    and both shifted one pixel diagonally each way (the border mirrored) with their mirror images, at half
    weight."""
    import torch.nn.functional as F

    logits = logits.float() + model(x.flip(3)).float()
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[2:]
    for view in (padded[:, :, :h, :w], padded[:, :, 2:, 2:]):
        view = view.contiguous(memory_format=_memory_format(x))
        logits = logits + SHIFTED_WEIGHT * (model(view).float() + model(view.flip(3)).float())
    return logits


def _memory_format(x: Any) -> Any:
    """The memory format ``x`` is in, for views made from it."""
    import torch

    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format


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
    model: Any, split: Any, pipeline: Any, labels: list[str], *, batch_size: int | None = None,
    precision: str = "fp32", tta: str = "none",
) -> dict[str, Any]:  # fmt: skip
    """``accuracy_report`` of ``model`` on ``split`` (whose labels index ``labels``)."""
    top, truth = predict(model, split, pipeline, batch_size=batch_size, precision=precision, tta=tta)
    return accuracy_report(top, truth, labels)


WNID = re.compile(r"^n\d{8}$")


def _normal(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def match_classes(classes: list[str], model_labels: list[str], label_ids: list[str], outputs: int,
                  ref: str) -> tuple[Any, list[str], str]:  # fmt: skip
    """Map the dataset's classes to the model's outputs -> (dataset index -> output index, the names of the
    outputs, how they were matched): by label name, by ImageNet WordNet id, else (weights that name no
    classes) by sorted order. Weights that name their classes and do not know the dataset's are an error."""
    import torch

    names = model_labels or [str(i) for i in range(outputs)]
    ids = label_ids or _imagenet_ids(outputs, classes)
    ways = (("by name", model_labels, str), ("by name", model_labels, _normal), ("by ImageNet id", ids, str))
    for how, keys, lookup in ways:
        where = {lookup(k): i for i, k in enumerate(keys)}
        if keys and all(lookup(c) in where for c in classes):
            return torch.tensor([where[lookup(c)] for c in classes], dtype=torch.long), names, how
    if len(classes) == outputs and not model_labels:
        # Weights that name no classes, as many as the folders: their sorted order is the outputs' order.
        return torch.arange(outputs), list(classes), "by sorted order"
    known = model_labels or label_ids
    if known:
        missing = [c for c in classes if c not in known and _normal(c) not in {_normal(k) for k in known}]
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UsageError(f"{ref} does not know the dataset's classes {shown} (it predicts: "
                         f"{', '.join(known[:10])}{' ...' if len(known) > 10 else ''})")  # fmt: skip
    raise UsageError(f"{ref} predicts {outputs} classes and records no labels; the dataset has {len(classes)} "
                     "classes, so they cannot be matched")  # fmt: skip


def _imagenet_ids(outputs: int, classes: list[str]) -> list[str]:
    """The WordNet ids of an ImageNet-family classifier's outputs, when the dataset's folders are such ids."""
    if not classes or not all(WNID.match(c) for c in classes):
        return []
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset({"num_classes": outputs})
    return list(ImageNetInfo(subset).label_names()) if subset else []


class _Files:
    """A torch Dataset over image files: the weights' own transform on each (for DataLoader workers)."""

    def __init__(self, paths: list[str], labels: Any, transform: Any) -> None:
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        from zoo_core.plugin_api import load_image

        return self.transform(load_image(self.paths[i])), self.labels[i]


def predict_files(model: Any, split: Any, transform: Any, device: Any, *, batch_size: int = 64, precision: str = "fp32",
                  k: int = 5, workers: int = 2, tta: str = "none") -> tuple[Any, Any]:  # fmt: skip
    """``predict`` over a split of image files, each read with zoo's decoder and ``transform`` (PIL ->
    tensor), in DataLoader workers."""
    import torch
    from torch.utils.data import DataLoader

    from zoo_core.plugin_api import autocast

    loader = DataLoader(_Files(split.paths, split.labels, transform), batch_size=batch_size, num_workers=workers,
                        persistent_workers=False)  # fmt: skip
    was_training = model.training
    model.eval()
    tops, truths = [], []
    with torch.inference_mode(), autocast(device, precision):
        for images, labels in loader:
            logits = tta_logits(model, images.to(device, memory_format=torch.channels_last), tta)
            tops.append(logits.float().topk(min(k, logits.shape[1]), dim=1).indices.cpu())
            truths.append(labels)
    model.train(was_training)
    return torch.cat(tops), torch.cat(truths)


def is_training_pipeline(pre: Any) -> bool:
    """Weights whose preprocessing is zoo's training pipeline (resize the whole image, no crop): evaluated on
    the decoded dataset exactly as training saw it. Any other preprocessing reads the image files."""
    return pre.crop_mode == "squash" and pre.crop_pct == 1.0 and pre.resize_size is None


def _limited(split: Any, limit: int | None) -> Any:
    """``limit`` images spread evenly over the split (folders are in class order, so every class shows)."""
    import torch

    if limit is None or limit >= len(split):
        return split
    if limit < 1:
        raise UsageError(f"--limit must be at least 1, got {limit}")
    return split.subset(torch.linspace(0, len(split) - 1, limit).round().long().unique())


def evaluate_published(
    spec: str, dataset: str, data_dir: str | None = None, *, device: str = "auto", batch_size: int | None = None,
    precision: str = "fp32", data_options: dict[str, Any] | None = None, img_size: int | None = None,
    crop_pct: float | None = None, limit: int | None = None, workers: int = 2, module: Any = None,
    tta: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Evaluate ``[plugin:]model[.tag]`` (the model's default tag when none is given) on the test split (else
    val) of ``dataset``, preprocessing it as the tag says (``img_size``/``crop_pct`` override it). ``module``
    runs in place of the eager model: an export of the same weights (``zoo_export.runtime``), judged alike.
    ``tta`` (``none`` or ``flip``) defaults to the protocol the weights' own test used, so a published number is
    reproduced as it was measured.

    Weights trained by zoo see the decoded dataset as training did; other weights (torchvision's, timm's)
    read the image files with their own resize and centre crop, so their published accuracy is reproduced.
    """
    import torch

    from zoo_core import create_model, resolve_weights
    from zoo_core.plugin_api import (
        check_precision,
        create_transform,
        environment,
        keep_freed_cpu_memory,
        load_dataset,
        numerics,
        override,
        resolve_device,
    )
    from zoo_train.pipeline import BatchPipeline

    found = resolve_weights(spec)
    weights = found.weights
    assert weights is not None
    tta = tta or (weights.metrics or {}).get("tta") or "none"
    if tta not in TTAS:
        raise UsageError(f"--tta must be one of {', '.join(TTAS)}, got {tta!r}")
    pre = override(weights.preprocessing, img_size=img_size, crop_pct=crop_pct)
    dev = resolve_device(device)
    check_precision(dev, precision)
    if dev.type == "cpu":
        keep_freed_cpu_memory()
    data = load_dataset(dataset, data_dir, decode=is_training_pipeline(pre), for_training=False,
                        **(data_options or {}))  # fmt: skip
    model = create_model(found.ref)
    cfg = getattr(model, "pretrained_cfg", None) or {}
    if module is not None:
        model = module
    labels = list(weights.labels) or list(cfg.get("label_names") or [])
    mapping, names, how = match_classes(data.classes, labels, list(cfg.get("label_ids") or []), weights.num_classes,
                                        weights.ref)  # fmt: skip
    split = _limited(data.split(data.eval_split), limit)
    split = type(split)(split.pixels, mapping[split.labels], split.paths)
    model.to(dev, memory_format=torch.channels_last)
    with numerics(dev, precision):
        if split.pixels is None:
            top, truth = predict_files(model, split, create_transform(pre), dev, batch_size=min(batch_size or 64, 64),
                                       precision=precision, workers=workers, tta=tta)  # fmt: skip
        else:
            resize = None if is_training_pipeline(pre) else _resize_for(pre, tuple(split.pixels.shape[1:3]))
            pipeline = BatchPipeline(mean=pre.mean, std=pre.std, size=pre.input_size[1:], channels=pre.channels,
                                     device=dev, resize_to=resize)  # fmt: skip
            top, truth = predict(model, split, pipeline, batch_size=batch_size, precision=precision, tta=tta)
    report = accuracy_report(top, truth, names)
    per_output = report["per_class_top1"]  # keyed by the weights' names: report by the dataset's own
    pairs = zip(data.classes, (names[int(o)] for o in mapping.tolist()), strict=True)
    report["per_class_top1"] = {c: per_output[name] for c, name in pairs if name in per_output}
    if len(names) > MAX_CONFUSION:
        report.pop("confusion")  # a 1000 x 1000 matrix says little and weighs megabytes
    return {
        "model": found.entry.qualified,
        "tag": found.tag,
        "ref": weights.ref,
        "dataset": data.name,
        "split": data.eval_split,
        **report,
        "label_matching": how,
        "limit": limit,
        "preprocessing": pre.to_dict(),
        "read_from": "files" if split.pixels is None else "decoded dataset",
        "precision": precision,
        "tta": tta,
        "runtime": getattr(model, "zoo_runtime", None) or {"runtime": "torch"},
        "environment": environment(str(dev)),
    }


MAX_CONFUSION = 100


def _resize_for(pre: Any, image: tuple[int, int]) -> tuple[int, int]:
    """The size a decoded image is resized to before the centre crop of ``pre`` (shorter side kept in ratio,
    or both sides for squash)."""
    from zoo_core.plugin_api import resize_sides

    sides = resize_sides(pre)
    if pre.crop_mode == "squash":
        return sides
    h, w = image
    scale = sides[0] / min(h, w)
    return max(sides[0], round(h * scale)), max(sides[1], round(w * scale))


def plot_confusion(report: dict[str, Any], path: str | Path) -> Path:
    """Draw ``report["confusion"]`` as a heat map (matplotlib, no display needed); written atomically, and a
    path that cannot be written is a one-line error."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from zoo_core.plugin_api import image_format, write_output

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
