"""The ``fast`` trainer, behind the ``cifar10-fast`` recipe: few epochs, every step cheap.

What it adds to a plain loop, each a published idea in our own code:
- the network's whitening layer (``FastCNN.set_whitening``) is set from the training images and frozen; its
  bias learns for the first ``WHITEN_BIAS_EPOCHS`` epochs only, after which the first conv's input needs no
  gradient (6% of a step);
- ``--optimizer muon`` (``zoo_train.muon``): Muon for the conv filters, whose updates are orthogonalised, and
  Nesterov SGD for the classifier and the biases (8 epochs of CIFAR-10: 90.68% top-1 against SGD's 90.15%,
  one seed each, benchmarks/results/speedrun_exploration.json). Or SGD (Nesterov
  where ``--optimizer nesterov``) with biases and norm shifts at ``BIAS_LR`` times the rate and lookahead: every
  few steps an exponential moving average of the weights takes a step towards them and they are set to it.
  Weight decay is divided by each group's rate multiple, so every parameter decays by the same share per step;
- the ``linear`` schedule (``zoo_train.loop.scheduled_lr``: a short warm-up, then a straight line to zero);
- label smoothing (``--label-smoothing``);
- augmentation on whole uint8 batches (``--augment flip-translate``: the pipeline's one gather), channels_last
  and bf16 autocast as the run's precision says; no per-image Python anywhere in the step;
- alternating flip: each training image is flipped or not at random in the first epoch and the other way in
  every next epoch, so two epochs in a row show it both ways (random flips repeat a view half the time);
- early windows (``--early-crop 24 --early-crop-epochs 5``): the first epochs train on a random 24 x 24 window
  of each batch, at 0.55 of the cost of whole images (progressive resizing, by cropping: objects keep their
  size in pixels, so what is learnt on windows holds on whole images).

It stays eager: compiled steps are no faster on a CPU and the first compile costs about a minute
(``benchmarks/compile_step.py``).

Validation runs once, after the last epoch, with the run's test-time augmentation (``--tta``): when the
validation split is the test split (``--val-fraction 0``) the final test reuses it. The model is checkpointed
after every epoch (with SGD, when the weights and their average agree), so ``--resume`` works as it does for
``classifier``.
"""
from __future__ import annotations

import math
import time
from typing import Any

from zoo_core.plugin_api import Split, TrainingError, TrainJob, UsageError, numerics

LOOKAHEAD_EVERY = 5  # steps between lookahead syncs
LOOKAHEAD_DECAY = 0.95  # per step; the average's decay is this ** LOOKAHEAD_EVERY times progress cubed
WHITENING_IMAGES = 5000  # images whose 2x2 patches set the whitening filters
LOG_EVERY = 10
OPTIMIZERS = ("sgd", "nesterov", "muon")
BIAS_LR = 64.0  # biases and norm shifts: few values, each moving the output of a whole channel
# With --optimizer muon, --lr is Muon's for the conv filters; the classifier and the biases take SGD at these
# multiples of it, and --momentum is theirs (Muon's own is MUON_MOMENTUM).
MUON_HEAD_LR, MUON_BIAS_LR, MUON_MOMENTUM = 6.9, 440.0, 0.6
WHITEN_BIAS_EPOCHS = 3  # epochs in which the whitening layer's bias learns


class Lookahead:
    """Weights pulled to their moving average every ``every`` steps (floating buffers too: batch-norm
    statistics are averaged alike)."""

    def __init__(self, model: Any, every: int = LOOKAHEAD_EVERY, decay: float = LOOKAHEAD_DECAY) -> None:
        import torch

        self.every, self.decay = every, decay
        self.live = [t for t in model.state_dict().values() if t.dtype.is_floating_point]
        self.average = [t.detach().clone() for t in self.live]
        self._foreach = torch._foreach_lerp_  # one kernel launch per step for all the tensors

    def step(self, step: int, progress: float) -> None:
        if step % self.every == 0:
            self.sync(self.decay**self.every * progress**3)

    def sync(self, decay: float = 0.0) -> None:
        """average <- average + (1 - decay) * (weights - average); weights <- average."""
        import torch

        with torch.no_grad():
            self._foreach(self.average, self.live, 1.0 - decay)
            torch._foreach_copy_(self.live, self.average)


def param_groups(job: TrainJob) -> list[dict[str, Any]]:
    """The weights at ``--lr``; biases and norm parameters at ``BIAS_LR`` times it. ``lr_scale`` is what the
    schedule multiplies; weight decay is set so that every parameter decays by ``lr * weight_decay`` a step.
    With Muon the conv filters are its group (their norm is fixed: no decay) and the classifier has its own."""
    cfg = job.config
    trainable = [p for p in job.params if p.requires_grad]
    biases = [p for p in trainable if p.ndim <= 1]
    if cfg.optimizer != "muon":
        weights = [p for p in trainable if p.ndim > 1]
        return [{"params": weights, "lr_scale": 1.0, "weight_decay": cfg.weight_decay},
                {"params": biases, "lr_scale": BIAS_LR, "weight_decay": cfg.weight_decay / BIAS_LR}]  # fmt: skip
    filters = [p for p in trainable if p.ndim == 4]
    others = [p for p in trainable if p.ndim in (2, 3)]
    return [{"params": filters, "lr_scale": 1.0, "muon": True, "momentum": MUON_MOMENTUM},
            {"params": others, "lr_scale": MUON_HEAD_LR, "weight_decay": cfg.weight_decay / MUON_HEAD_LR},
            {"params": biases, "lr_scale": MUON_BIAS_LR, "weight_decay": cfg.weight_decay / MUON_BIAS_LR}]  # fmt: skip


def fast_optimizer(job: TrainJob) -> Any:
    """MuonSGD for --optimizer muon, else torch SGD, over ``param_groups``."""
    import torch

    cfg = job.config
    if cfg.optimizer == "muon":
        from zoo_train.muon import MuonSGD

        return MuonSGD(param_groups(job), lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.SGD(param_groups(job), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.optimizer == "nesterov")


def alternating_flips(split: Split, seed: int) -> tuple[Split, Split]:
    """``split`` with a random half of its images mirrored (odd epochs), and with the other half mirrored (even
    epochs)."""
    import torch

    mirror = torch.rand(len(split), generator=torch.Generator().manual_seed(seed)) < 0.5
    odd = torch.where(mirror.view(-1, 1, 1, 1), split.pixels.flip(2), split.pixels)
    return Split(odd, split.labels), Split(odd.flip(2).contiguous(), split.labels)


def early_window(x: Any, side: int, generator: Any) -> Any:
    """A random ``side`` x ``side`` window of the batch ``x``, the same for all its images (each is already
    shifted on its own): the network is convolutional up to a global pooling, so it trains on windows and
    predicts on whole images, and a 24 px window costs 0.55 of a 32 px image."""
    import torch

    h, w = x.shape[2:]
    if side >= min(h, w):
        return x
    top, left = (int(v) for v in torch.randint(0, min(h, w) - side + 1, (2,), generator=generator))
    window = x[:, :, top : top + side, left : left + side]
    return window.contiguous(memory_format=torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
                             else torch.contiguous_format)  # fmt: skip


def train_fast(job: TrainJob) -> dict[str, Any]:
    """Train ``job.model`` in place (see the module's docstring); return its metrics."""
    cfg = job.config
    if cfg.optimizer not in OPTIMIZERS:
        raise UsageError(f"the fast trainer takes --optimizer sgd, nesterov or muon, not {cfg.optimizer}")
    with numerics(job.device, cfg.precision):
        return _train(job)


def _train(job: TrainJob) -> dict[str, Any]:
    import torch

    from zoo_core.plugin_api import batches
    from zoo_train.checkpoint import save_checkpoint
    from zoo_train.distributed import evaluate_sharded, restore_checkpoint
    from zoo_train.evaluation import eval_batch_size
    from zoo_train.loop import scheduled_lr

    cfg, model, device, reporter = job.config, job.model, job.device, job.reporter
    if hasattr(model, "set_whitening") and not job.resume:
        sample = job.train.subset(torch.randperm(len(job.train), generator=torch.Generator().manual_seed(cfg.seed))
                                  [:WHITENING_IMAGES])  # fmt: skip
        model.set_whitening(job.eval_pipeline(sample.images))
        reporter.info(f"whitening filters set from the 2x2 patches of {len(sample):,} training images")
    if hasattr(model, "whiten"):
        model.whiten.weight.requires_grad_(False)
    optimizer = fast_optimizer(job)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    start, history = 1, []
    if job.resume:
        state = restore_checkpoint(job.checkpoint_path, model, optimizer, job.distributed)
        if state is not None:
            start, history = state["epoch"] + 1, state["history"]
            reporter.info(f"continuing after epoch {state['epoch']} (checkpoint {job.checkpoint_path})")
    lookahead = Lookahead(model) if cfg.optimizer != "muon" else None  # Muon's runs need no averaging
    alternate = cfg.augment != "none"  # the trainer flips; the pipeline only shifts
    flipped = alternating_flips(job.train, cfg.seed) if alternate else (job.train, job.train)
    steps = max(len(job.train) // cfg.batch_size, 1)  # full batches only (one short batch when there is no full one)
    total = cfg.epochs * steps
    for epoch in job.epochs(start):
        generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        if hasattr(model, "whiten_bias"):
            model.whiten_bias.requires_grad_(epoch <= WHITEN_BIAS_EPOCHS)
        job.train_mode()
        reporter.epoch_start(epoch, cfg.epochs, steps)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        seen, step = 0, 0
        began = time.perf_counter()
        # Full batches only: a small last batch gives batch norm noisy statistics and the step a wrong size.
        epoch_split = flipped[epoch % 2 == 0]
        for step, (images, labels) in enumerate(batches(epoch_split, cfg.batch_size, shuffle=True, generator=generator,
                                                        drop_last=len(job.train) >= cfg.batch_size), 1):  # fmt: skip
            lr = scheduled_lr(cfg, epoch, step, steps)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            x = job.train_pipeline(images, generator, train=True, flip=not alternate)
            if epoch <= cfg.early_crop_epochs and cfg.early_crop:
                x = early_window(x, cfg.early_crop, generator)
            labels = labels.to(device, non_blocking=True)
            with job.autocast():
                logits = model(x)
                loss = loss_fn(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if lookahead is not None:
                lookahead.step((epoch - 1) * steps + step, ((epoch - 1) * steps + step) / total)
            loss_sum += loss.detach()
            correct += (logits.detach().argmax(1) == labels).sum()
            seen += int(labels.shape[0])
            if step % LOG_EVERY == 0 or step == steps:
                value = float(loss_sum) / step
                if not math.isfinite(value):
                    raise TrainingError(f"the loss became {value} at epoch {epoch}, step {step}: training "
                                        f"diverged; lower the learning rate (--lr {cfg.lr:g} now, try "
                                        f"{cfg.lr / 2:g})")  # fmt: skip
                reporter.progress(step, value, 100.0 * float(correct) / seen,
                                  seen / max(time.perf_counter() - began, 1e-9))  # fmt: skip
        if lookahead is not None:
            lookahead.sync()  # the weights are their average at each epoch's end: what is saved is what is used
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - began
        stats = {"epoch": epoch, "loss": round(float(loss_sum) / max(step, 1), 4),
                 "train_top1": round(100.0 * float(correct) / max(seen, 1), 2),
                 "images_per_s": round(seen / seconds, 1), "train_s": round(seconds, 2)}  # fmt: skip
        if epoch == cfg.epochs:  # validated once: the same call as the final test, which then costs nothing
            stats["val_top1"] = evaluate_sharded(model, job.val, job.eval_pipeline, job.labels, job.distributed,
                                                 batch_size=eval_batch_size(device, cfg.batch_size),
                                                 precision=cfg.precision, tta=cfg.tta)["top1"]  # fmt: skip
        history.append(stats)
        if job.is_main:
            save_checkpoint(job.checkpoint_path, model, optimizer, {"epoch": epoch, "history": history})
        if "val_top1" in stats:
            reporter.epoch_end(stats)
        else:
            reporter.info(f"epoch {epoch:>3}  loss {stats['loss']:.4f}  train {stats['train_top1']:5.1f}%  "
                          f"{stats['images_per_s']:>7,.0f} img/s  {seconds:.1f}s")  # fmt: skip
    images = sum(h["images_per_s"] * h["train_s"] for h in history)
    seconds = sum(h["train_s"] for h in history)
    last = history[-1] if history else {}
    return {
        "epochs": len(history),
        "history": history,
        "best_val_top1": last.get("val_top1"),
        "val_top1": last.get("val_top1"),
        "train_images_per_s": round(images / seconds, 1) if seconds else None,
        "train_time_s": round(seconds, 1),
        "loss": f"cross_entropy, label smoothing {cfg.label_smoothing:g}",
        "lookahead": {"every": LOOKAHEAD_EVERY, "decay": LOOKAHEAD_DECAY},
    }
