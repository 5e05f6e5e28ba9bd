"""The ``classifier`` trainer's loop, and ``TrainStep``, the one optimisation step it repeats (the
throughput benchmark times the same object)."""

from __future__ import annotations

import math
import time
from typing import Any

from zoo_core.devices import autocast, numerics
from zoo_core.trainers import TrainingError, TrainJob

LOG_EVERY = 10  # steps between progress reports (each one reads the loss, which syncs a GPU)


class TrainStep:
    """uint8 batch -> pipeline -> forward under autocast -> cross-entropy -> backward -> optimizer step."""

    def __init__(self, model: Any, optimizer: Any, pipeline: Any, device: Any, precision: str = "fp32") -> None:
        import torch

        self.model, self.optimizer, self.pipeline, self.device = model, optimizer, pipeline, device
        self.precision = precision
        self.loss_fn = torch.nn.CrossEntropyLoss()
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        self.scaler = torch.amp.GradScaler(torch.device(device).type) if precision == "fp16" else None

    def __call__(self, images: Any, labels: Any, generator: Any = None) -> tuple[Any, Any]:
        """One step; returns the (detached) loss and the number of correct predictions, as tensors."""
        x = self.pipeline(images, generator, train=True)
        labels = labels.to(self.device, non_blocking=True)
        with autocast(self.device, self.precision):
            logits = self.model(x)
            loss = self.loss_fn(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            self.optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return loss.detach(), (logits.detach().argmax(1) == labels).sum()


def make_optimizer(config: Any, params: list[Any]) -> Any:
    import torch

    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    try:
        # The fused kernel does Adam's update in one pass over each tensor instead of about six:
        # the same arithmetic, several times less optimizer time on a CPU.
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or torch without the fused kernel
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def scheduled_lr(config: Any, epoch: int, step: int, steps: int) -> float:
    """The learning rate at a step; a pure function of the position, so a resumed run needs no state."""
    if config.schedule != "cosine":
        return config.lr
    progress = ((epoch - 1) * steps + step - 1) / max(config.epochs * steps, 1)
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * progress))


def _diverged(value: float, epoch: int, step: int, lr: float) -> TrainingError:
    return TrainingError(
        f"the loss became {value} at epoch {epoch}, step {step}: training diverged; lower the learning "
        f"rate (--lr {lr:g} now, try {lr / 10:g})"
    )


def train_classifier(job: TrainJob) -> dict[str, Any]:
    with numerics(job.device, job.config.precision):
        return _train(job)


def _train(job: TrainJob) -> dict[str, Any]:
    import torch

    from zoo_core.datasets import batches, num_batches
    from zoo_train.checkpoint import load_checkpoint, save_checkpoint
    from zoo_train.evaluation import top1

    cfg, device, reporter = job.config, job.device, job.reporter
    optimizer = make_optimizer(cfg, job.params)
    step_fn = TrainStep(job.model, optimizer, job.train_pipeline, device, cfg.precision)
    start, history = 1, []
    if job.resume and job.checkpoint_path.is_file():
        state = load_checkpoint(job.checkpoint_path, job.model, optimizer)
        start, history = state["epoch"] + 1, state["history"]
        reporter.info(f"continuing after epoch {state['epoch']} (checkpoint {job.checkpoint_path})")
    elif job.resume:
        reporter.info("no checkpoint yet: starting from epoch 1")
    steps = num_batches(job.train, cfg.batch_size, train=True)
    for epoch in job.epochs(start):
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        job.train_mode()
        reporter.epoch_start(epoch, cfg.epochs, steps)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen, step = 0, 0
        began = time.perf_counter()
        for step, (images, labels) in enumerate(batches(job.train, cfg.batch_size, shuffle=True,
                                                        generator=generator), 1):  # fmt: skip
            if cfg.schedule != "constant":
                for group in optimizer.param_groups:
                    group["lr"] = scheduled_lr(cfg, epoch, step, steps)
            loss, hits = step_fn(images, labels, generator)
            loss_sum += loss
            correct += hits
            seen += int(labels.shape[0])
            if step % LOG_EVERY == 0 or step == steps:
                value = float(loss)
                if not math.isfinite(value):
                    raise _diverged(value, epoch, step, cfg.lr)
                rate = seen / max(time.perf_counter() - began, 1e-9)
                reporter.progress(step, float(loss_sum) / step, 100.0 * float(correct) / seen, rate)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - began
        mean_loss = float(loss_sum) / max(step, 1)
        if not math.isfinite(mean_loss):
            raise _diverged(mean_loss, epoch, step, cfg.lr)
        val = top1(job.model, job.val, job.eval_pipeline, batch_size=max(cfg.batch_size, 256),
                   precision=cfg.precision)  # fmt: skip
        history.append({
            "epoch": epoch, "loss": round(mean_loss, 4), "train_top1": round(100.0 * float(correct) / seen, 2),
            "val_top1": val, "images_per_s": round(seen / seconds, 1), "train_s": round(seconds, 2),
        })  # fmt: skip
        save_checkpoint(job.checkpoint_path, job.model, optimizer, {"epoch": epoch, "history": history})
        reporter.epoch_end(history[-1])
    images = sum(h["images_per_s"] * h["train_s"] for h in history)
    seconds = sum(h["train_s"] for h in history)
    return {
        "epochs": len(history),
        "history": history,
        "best_val_top1": max((h["val_top1"] for h in history), default=None),
        "val_top1": history[-1]["val_top1"] if history else None,
        "train_images_per_s": round(images / seconds, 1) if seconds else None,
        "train_time_s": round(seconds, 1),
        "loss": "cross_entropy",
    }
