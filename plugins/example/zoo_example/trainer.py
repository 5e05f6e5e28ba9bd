"""The ``pocket-sgd`` trainer: plain SGD with momentum and label smoothing, validated every epoch.

It shows what a trainer receives (``zoo_core.plugin_api.TrainJob``) and returns (a dict of metrics); zoo does
the rest around it: building the model for the data, preprocessing, the final evaluation and publishing.
"""

from __future__ import annotations

import math
import time
from typing import Any

from zoo_core.plugin_api import TrainingError, TrainJob


def train_pocket_sgd(job: TrainJob) -> dict[str, Any]:
    """Train ``job.model`` in place for ``job.config.epochs`` epochs; return the run's metrics."""
    import torch

    from zoo_core.plugin_api import batches

    cfg = job.config
    optimizer = torch.optim.SGD(job.params, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    history = []
    for epoch in job.epochs(1):  # no checkpoints: a killed run starts again from epoch 1
        generator = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        job.train_mode()
        began, loss_sum, seen = time.perf_counter(), 0.0, 0
        for images, labels in batches(job.train, cfg.batch_size, shuffle=True, generator=generator):
            x = job.train_pipeline(images, generator, train=True)
            labels = labels.to(job.device)
            with job.autocast():
                loss = loss_fn(job.model(x), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(labels)
            seen += len(labels)
        if not math.isfinite(loss_sum):
            raise TrainingError(f"the loss diverged in epoch {epoch}; lower --lr (now {cfg.lr:g})")
        val_top1 = accuracy(job)
        seconds = time.perf_counter() - began
        history.append({"epoch": epoch, "loss": round(loss_sum / seen, 4), "val_top1": val_top1,
                        "images_per_s": round(seen / seconds, 1), "train_s": round(seconds, 2)})  # fmt: skip
        job.reporter.info(f"epoch {epoch}/{cfg.epochs}  loss {loss_sum / seen:.4f}  val {val_top1:.1f}%")
    return {
        "epochs": len(history),
        "history": history,
        "val_top1": history[-1]["val_top1"],
        "best_val_top1": max(h["val_top1"] for h in history),
        "loss": "cross_entropy, label smoothing 0.1",
    }


def accuracy(job: TrainJob) -> float:
    """Top-1 accuracy on the validation split, in percent."""
    import torch

    from zoo_core.plugin_api import batches

    job.model.eval()
    correct = 0
    with torch.inference_mode(), job.autocast():
        for images, labels in batches(job.val, 256):
            predicted = job.model(job.eval_pipeline(images)).argmax(1)
            correct += int((predicted.cpu() == labels.cpu()).sum())
    return round(100.0 * correct / len(job.val), 2)
