"""The ``classifier`` trainer's loop, and ``TrainStep``, the one optimisation step it repeats (the
throughput benchmark times the same object)."""

from __future__ import annotations

import math
import time
from typing import Any

from zoo_core.plugin_api import TrainingError, TrainJob, UsageError, autocast, numerics

LOG_EVERY = 10  # steps between progress reports (each one reads the loss, which syncs a GPU)
WARMUP = 0.2  # the linear schedule's warm-up: this share of the run, from a fifth of --lr up to it
SCHEDULES = ("constant", "cosine", "linear", "decay")  # the learning-rate schedules scheduled_lr knows


class TrainStep:
    """uint8 batch -> pipeline -> forward under autocast -> cross-entropy -> backward -> optimizer step."""

    def __init__(self, model: Any, optimizer: Any, pipeline: Any, device: Any, precision: str = "fp32",
                 label_smoothing: float = 0.0) -> None:  # fmt: skip
        import torch

        self.model, self.optimizer, self.pipeline, self.device = model, optimizer, pipeline, device
        self.precision = precision
        self.loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=label_smoothing)
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

    if config.optimizer in ("sgd", "nesterov"):
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay,
                               nesterov=config.optimizer == "nesterov")  # fmt: skip
    try:
        # The fused kernel does Adam's update in one pass over each tensor instead of about six:
        # the same arithmetic, several times less optimizer time on a CPU.
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a device or torch without the fused kernel
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def scheduled_lr(config: Any, epoch: int, step: int, steps: int) -> float:
    """The learning rate at a step; a pure function of the position, so a resumed run needs no state.

    ``cosine`` decays to 0 over the run; ``linear`` warms up from a fifth of the rate over the first ``WARMUP``
    of the run, then falls in a straight line to 0 at its end; ``decay`` falls in a straight line from the
    first step, with no warm-up."""
    if config.schedule not in SCHEDULES[1:]:  # constant
        return config.lr
    progress = ((epoch - 1) * steps + step - 1) / max(config.epochs * steps, 1)
    if config.schedule == "decay":
        return config.lr * (1.0 - progress)
    if config.schedule == "linear":
        if progress < WARMUP:
            return config.lr * (0.2 + 0.8 * progress / WARMUP)
        return config.lr * (1.0 - progress) / (1.0 - WARMUP)
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * progress))


def _diverged(value: float, epoch: int, step: int, lr: float, job: TrainJob) -> TrainingError:
    from zoo_train.distributed import shared

    return shared(TrainingError(  # the loss is reduced over the ranks, so every rank stops here alike
        f"the loss became {value} at epoch {epoch}, step {step}: training diverged; lower the learning "
        f"rate (--lr {lr:g} now, try {lr / 10:g})"
    ), job.distributed)  # fmt: skip


FAST_ONLY = {"--optimizer muon": lambda cfg: cfg.optimizer == "muon",
             "--early-crop": lambda cfg: bool(cfg.early_crop and cfg.early_crop_epochs)}  # fmt: skip


def train_classifier(job: TrainJob) -> dict[str, Any]:
    given = [option for option, used in FAST_ONLY.items() if used(job.config)]
    if given:
        raise UsageError(f"{' and '.join(given)}: the fast trainer's (--trainer fast), not this one's")
    with numerics(job.device, job.config.precision):
        return _train(job)


def _train(job: TrainJob) -> dict[str, Any]:
    import torch

    from zoo_core.plugin_api import batches, num_batches
    from zoo_train.checkpoint import save_checkpoint
    from zoo_train.distributed import average_norm_stats, evaluate_sharded, restore_checkpoint
    from zoo_train.evaluation import eval_batch_size

    cfg, device, reporter, dist = job.config, job.device, job.reporter, job.distributed
    optimizer = make_optimizer(cfg, job.params)
    start, history = 1, []
    if job.resume:
        state = restore_checkpoint(job.checkpoint_path, job.model, optimizer, dist)
        if state is not None:
            start, history = state["epoch"] + 1, state["history"]
            reporter.info(f"continuing after epoch {state['epoch']} (checkpoint {job.checkpoint_path})")
        else:
            reporter.info("no checkpoint yet: starting from epoch 1")
    # Gradients are averaged over the ranks inside backward(); job.model itself is what is saved and evaluated.
    step_fn = TrainStep(dist.wrap(job.model), optimizer, job.train_pipeline, device, cfg.precision,
                        getattr(cfg, "label_smoothing", 0.0))  # fmt: skip
    steps = num_batches(job.train, cfg.batch_size, train=True, world_size=dist.world_size)
    for epoch in job.epochs(start):
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        # Every rank deals the epoch from the same permutation; each augments its share with its own draws.
        augment = generator if not dist.enabled else \
            torch.Generator().manual_seed((cfg.seed * 1_000_003 + epoch) * 1_009 + dist.rank)  # fmt: skip
        job.train_mode()
        reporter.epoch_start(epoch, cfg.epochs, steps)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen, step = 0, 0
        began = time.perf_counter()
        for step, (images, labels) in enumerate(batches(job.train, cfg.batch_size, shuffle=True, generator=generator,
                                                        rank=dist.rank, world_size=dist.world_size), 1):  # fmt: skip
            if cfg.schedule != "constant":
                for group in optimizer.param_groups:
                    group["lr"] = scheduled_lr(cfg, epoch, step, steps)
            loss, hits = step_fn(images, labels, augment)
            loss_sum += loss
            correct += hits
            seen += int(labels.shape[0])
            if step % LOG_EVERY == 0 or step == steps:
                # One small reduction every LOG_EVERY steps: the same loss check and progress on every rank.
                now = _totals(dist, float(loss), float(loss_sum), float(correct), seen)
                if not math.isfinite(now[0]):
                    raise _diverged(now[0], epoch, step, cfg.lr, job)
                rate = now[3] / max(time.perf_counter() - began, 1e-9)
                reporter.progress(step, now[1] / (step * dist.world_size), 100.0 * now[2] / now[3], rate)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - began
        # The epoch over all ranks: mean loss, accuracy and images of every share, timed by the slowest rank.
        _, total_loss, total_correct, total_seen = _totals(dist, 0.0, float(loss_sum), float(correct), seen)
        seconds = dist.all_reduce(seconds, "max")
        mean_loss = total_loss / max(step * dist.world_size, 1)
        if not math.isfinite(mean_loss):
            raise _diverged(mean_loss, epoch, step, cfg.lr, job)
        average_norm_stats(job.model, dist)
        val = evaluate_sharded(job.model, job.val, job.eval_pipeline, job.labels, dist, precision=cfg.precision,
                               batch_size=eval_batch_size(device, cfg.batch_size))["top1"]  # fmt: skip
        history.append({
            "epoch": epoch, "loss": round(mean_loss, 4), "train_top1": round(100.0 * total_correct / total_seen, 2),
            "val_top1": val, "images_per_s": round(total_seen / seconds, 1), "train_s": round(seconds, 2),
        })  # fmt: skip
        if job.is_main:
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


def _totals(dist: Any, loss: float, loss_sum: float, correct: float, seen: int) -> list[float]:
    """(current loss, summed loss, correct, seen) over every rank, in one reduction; the current loss is
    NaN or inf when it is on any rank, else this rank's."""
    if not dist.enabled:
        return [loss, loss_sum, correct, float(seen)]
    import torch

    flags = [float(math.isnan(loss)), float(math.isinf(loss))]
    total = dist.all_reduce(torch.tensor([loss_sum, correct, float(seen), *flags], dtype=torch.float64)).tolist()
    current = math.nan if total[3] else math.inf if total[4] else loss
    return [current, *total[:3]]
