"""``zoo train`` as a library: build a catalogue model for a catalogue dataset, hand both to a trainer
plugin, evaluate the result on the test split and publish it to the local registry.

The trainer is a plugin (``zoo_register_trainers``): ``factory(job)`` gets a ``TrainJob`` -- the model
already on its device, the uint8 splits, the batched on-device pipelines, the settings and a run folder
for checkpoints -- and returns its metrics (``epochs``, ``history``, ``best_val_top1``, ...). Everything
around it (model building, preprocessing, resume bookkeeping, publishing) is the same for every trainer.

Runs live in ``$ZOO_HOME/runs/<run-id>/``: ``run.json`` (settings and status, written before training
starts) and the trainer's checkpoints, so ``--resume`` can continue a run killed at any point.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import shutil
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zoo_core.datasets import AUGMENTS
from zoo_core.devices import autocast, check_precision, resolve_device
from zoo_core.errors import UsageError, ZooError

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")
PRECISIONS = ("fp32", "bf16")
DEFAULT_TRAINER = "classifier"
# What may differ when a run is resumed: where it runs and how long, not what it learns from.
RESUME_OVERRIDES = {"epochs", "device"}


class TrainingError(ZooError):
    """Training went wrong in a way the user can act on (a diverging loss, a broken trainer)."""


@dataclass
class TrainConfig:
    """Every setting of a training run; recorded with the run and with the published weights."""

    model: str
    dataset: str
    data_dir: str | None = None
    data_options: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    augment: str = "none"
    device: str = "auto"
    precision: str = "fp32"
    channels_last: bool = True
    pretrained: str | None = None
    freeze_backbone: bool = False
    img_size: int | None = None
    val_fraction: float = 0.1
    seed: int = 0
    tag: str | None = None
    trainer: str = DEFAULT_TRAINER
    overwrite: bool = False

    def check(self) -> None:
        """Raise UsageError for settings that cannot work, before anything is loaded."""
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError("--epochs and --batch-size must be at least 1")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise UsageError(f"--lr must be a positive number, got {self.lr}")
        for name, value, allowed in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("precision", self.precision, PRECISIONS),
                                     ("schedule", self.schedule, SCHEDULES),
                                     ("augment", self.augment, AUGMENTS)):  # fmt: skip
            if value not in allowed:
                raise UsageError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.freeze_backbone and not self.pretrained:
            raise UsageError("--freeze-backbone needs --pretrained TAG (a random backbone would stay random)")
        if self.img_size is not None and self.img_size < 1:
            raise UsageError(f"--img-size must be positive, got {self.img_size}")
        if self.tag is not None:
            from zoo_core.catalogue import TAG_RE

            if not TAG_RE.match(self.tag):
                raise UsageError(f"invalid tag {self.tag!r}: use letters, digits, '_' and '-' (not first)")


# -- what a trainer sees -----------------------------------------------------------------------------


class Reporter:
    """Progress callbacks a trainer calls; the CLI draws them, the library stays silent."""

    def info(self, text: str) -> None:
        pass

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def progress(self, step: int, loss: float, acc: float, images_per_s: float) -> None:
        pass

    def epoch_end(self, stats: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class TrainJob:
    """Everything a trainer needs. ``params`` are the parameters to optimise (only the head with
    --freeze-backbone); call ``train_mode()`` instead of ``model.train()`` so frozen norms stay frozen."""

    model: Any
    train: Any  # zoo_core.datasets.Split (uint8), on the device when it fits
    val: Any
    train_pipeline: Any  # zoo_core.datasets.BatchPipeline with the augmentation
    eval_pipeline: Any
    config: TrainConfig
    device: Any
    run_dir: Path
    resume: bool
    params: list[Any]
    labels: list[str]
    reporter: Reporter = field(default_factory=Reporter)
    frozen_modules: list[Any] = field(default_factory=list)

    def train_mode(self) -> None:
        self.model.train()
        for module in self.frozen_modules:
            module.eval()

    def autocast(self) -> Any:
        return autocast(self.device, self.config.precision)

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.safetensors"


@dataclass
class TrainOutcome:
    """What ``train`` returns: the published entry, the test metrics and the trainer's own results."""

    run_id: str
    run_dir: Path
    entry: Any  # zoo_registry.store.PublishedEntry
    metrics: dict[str, Any]
    training: dict[str, Any]


# -- runs --------------------------------------------------------------------------------------------


def runs_root() -> Path:
    from zoo_core.paths import zoo_home

    return zoo_home() / "runs"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _write_run(run_dir: Path, record: dict[str, Any]) -> None:
    from zoo_core.atomic_io import atomic_write_json

    atomic_write_json(run_dir / "run.json", record)


def list_runs() -> list[dict[str, Any]]:
    """Every run's record (newest first)."""
    root = runs_root()
    records = [r for p in sorted(root.iterdir()) if (r := _read_json(p / "run.json"))] if root.is_dir() else []
    return sorted(records, key=lambda r: r.get("created", ""), reverse=True)


def _published(model: str, tag: str) -> bool:
    from zoo_registry.store import get

    from zoo_core.errors import UnknownNameError

    try:
        get(model, tag)
        return True
    except UnknownNameError:
        return False


def _choose_tag(config: TrainConfig, model: str, plugin: str, name: str) -> str:
    """--tag, else ``<dataset>-<date>`` (``-2``, ``-3``... when taken by a published entry or a run)."""
    if config.tag:
        return config.tag
    base = f"{config.dataset.split(':')[-1]}-{datetime.now().strftime('%Y%m%d')}"
    for i in range(1, 1000):
        tag = base if i == 1 else f"{base}-{i}"
        if not _published(model, tag) and not (runs_root() / run_id_for(plugin, name, tag)).exists():
            return tag
    raise UsageError(f"too many runs tagged {base}-*; pass --tag")


def run_id_for(plugin: str, name: str, tag: str) -> str:
    return f"{plugin}-{name}-{tag}"


def _find_resumable(config: TrainConfig, qualified: str) -> Path:
    if config.tag:
        plugin, _, name = qualified.partition(":")
        run_dir = runs_root() / run_id_for(plugin, name, config.tag)
        if not (run_dir / "run.json").is_file():
            raise UsageError(f"no run {run_dir.name} to resume (looked in {runs_root()})")
        return run_dir
    dataset = config.dataset.split(":")[-1]
    for record in list_runs():
        cfg = record.get("config", {})
        if (record.get("model") == qualified and cfg.get("dataset", "").split(":")[-1] == dataset
                and record.get("status") != "finished"):  # fmt: skip
            return runs_root() / record["run_id"]
    raise UsageError(f"no unfinished run of {qualified} on {dataset} to resume; start one without --resume")


# -- building the model for the dataset --------------------------------------------------------------


def build_model(config: TrainConfig, dataset: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The model for the dataset's classes, channels and size, or preprocessing that adapts the data to
    it -> (model, model_kwargs that rebuild it, preprocessing)."""
    from zoo_core.datasets import channel_stats
    from zoo_core.models import create_model, resolve

    entry, tag = resolve(config.model, config.pretrained or False)
    classes = dataset.num_classes
    size = (config.img_size, config.img_size) if config.img_size else dataset.image_size
    kwargs: dict[str, Any] = {}
    tag_meta = entry.pretrained.get(tag, {}) if tag else {}
    if tag:
        # Pretrained weights fix the architecture: the data adapts to them, never the other way.
        tag_kwargs = dict(tag_meta.get("model_kwargs") or {})
        if "input_size" in tag_kwargs:
            fixed = _pair(tag_kwargs["input_size"])
            if config.img_size and (config.img_size, config.img_size) != fixed:
                raise UsageError(f"--img-size {config.img_size}: the weights {entry.name}.{tag} were built for "
                                 f"{fixed[0]}x{fixed[1]} inputs; leave --img-size out")  # fmt: skip
            size = fixed
        model = create_model(entry.qualified, pretrained=tag, num_classes=classes)
        old_labels = [str(x) for x in tag_meta.get("labels") or []]
        if old_labels and old_labels != list(dataset.classes) and len(old_labels) == classes:
            from zoo_core.adapt import reset_classifier

            reset_classifier(model, classes, classes)  # same number of classes, different task: a new head
        model_kwargs = {**tag_kwargs, "num_classes": classes}
        channels = int(tag_kwargs.get("in_chans", entry.input_size[0]))
        pre = tag_meta.get("preprocessing") or {}
        mean, std = pre.get("mean", entry.metadata.get("mean")), pre.get("std", entry.metadata.get("std"))
        if len(mean) != channels:  # weights trained on grayscale data with 3-channel stats, or the reverse
            mean, std = channel_stats(dataset.split("train"), channels)
    else:
        if entry.family == "cnn":  # zoo's own CNNs size their classifier to the input
            kwargs["input_size"] = list(size)
        channels = dataset.channels
        try:
            model = create_model(entry.qualified, num_classes=classes,
                                 in_chans=channels if channels != entry.input_size[0] else None, **kwargs)  # fmt: skip
        except TypeError as e:
            if "in_chans" not in str(e):
                raise
            # The builder cannot change its input channels: feed it the channels it has instead.
            channels = entry.input_size[0]
            model = create_model(entry.qualified, num_classes=classes, **kwargs)
        model_kwargs = {"num_classes": classes, **kwargs}
        if channels != entry.input_size[0]:
            model_kwargs["in_chans"] = channels
        min_size = entry.metadata.get("min_input_size")
        if min_size and (size[0] < min_size[1] or size[1] < min_size[2]):
            size = (max(size[0], min_size[1]), max(size[1], min_size[2]))
        mean, std = None, None  # from the training split, once it is known (see prepare)
    preprocessing = {
        "input_size": [channels, int(size[0]), int(size[1])],
        "mean": list(mean) if mean is not None else None,
        "std": list(std) if std is not None else None,
        "interpolation": "bilinear",
        "grayscale_to_rgb": dataset.channels == 1 and channels == 3,
        "rgb_to_grayscale": dataset.channels == 3 and channels == 1,
        "resized_from": list(dataset.image_size) if tuple(size) != tuple(dataset.image_size) else None,
        "value_range": [0, 1],
    }
    return model, model_kwargs, preprocessing


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def head_modules(model: Any, num_classes: int) -> list[Any]:
    """The classifier a new task trains: timm's ``get_classifier()``, else every Linear producing
    ``num_classes`` outputs (as ``reset_classifier`` picks them)."""
    import torch.nn as nn

    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return [head]
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not heads:
        raise UsageError(f"cannot find the classifier of {type(model).__name__} to train with --freeze-backbone")
    return heads


def freeze_backbone(model: Any, num_classes: int) -> tuple[list[Any], list[Any]]:
    """Freeze everything but the classifier -> (trainable parameters, frozen norm layers to keep in eval)."""
    import torch.nn as nn

    heads = head_modules(model, num_classes)
    trainable = {id(p) for h in heads for p in h.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    in_head = {id(m) for h in heads for m in h.modules()}
    norms = [m for m in model.modules() if id(m) not in in_head
             and isinstance(m, nn.modules.batchnorm._NormBase)]  # fmt: skip
    return [p for p in model.parameters() if p.requires_grad], norms


def split_validation(dataset: Any, fraction: float) -> tuple[Any, Any, str]:
    """(train, val, description): the dataset's own val split when it also has a test split; else a
    held-out ``fraction`` of train (fixed seed, the same for every run); with 0, the test split."""
    import torch

    train = dataset.split("train")
    if "val" in dataset.splits and "test" in dataset.splits:
        return train, dataset.splits["val"], "the dataset's val split"
    if fraction == 0:
        return train, dataset.split(dataset.eval_split), f"the {dataset.eval_split} split (--val-fraction 0)"
    n_val = max(1, int(round(len(train) * fraction)))
    if n_val >= len(train):
        raise UsageError(f"the train split has {len(train)} images: too few to hold out {fraction:.0%}")
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
    return train.subset(order[n_val:]), train.subset(order[:n_val]), f"{n_val} images held out of train (seed 0)"


# -- the whole run -----------------------------------------------------------------------------------


def train(
    model: str, dataset: str, *, resume: bool = False, reporter: Reporter | None = None,
    command: str | None = None, **options: Any,
) -> TrainOutcome:  # fmt: skip
    """Train ``model`` on ``dataset`` with ``options`` (TrainConfig fields), then evaluate and publish.

    With ``resume``, continue the unfinished run (``tag`` picks it; else the newest of this model and
    dataset) with its recorded settings; only ``epochs`` and ``device`` may change.
    """
    import torch

    from zoo_core.environment import environment
    from zoo_core.plugins import get_catalogue

    reporter = reporter or Reporter()
    known = {f.name for f in fields(TrainConfig)} - {"model", "dataset"}
    unknown = set(options) - known
    if unknown:
        raise UsageError(f"unknown training option(s) {', '.join(sorted(unknown))}")
    options = {k: v for k, v in options.items() if v is not None}
    if options.get("data_dir"):  # recorded with the run: --resume may run from another directory
        options["data_dir"] = str(Path(options["data_dir"]).expanduser().resolve())
    catalogue = get_catalogue()
    base, _, spec_tag = model.partition(".")
    entry = catalogue.get("model", base)
    if spec_tag:
        options.setdefault("pretrained", spec_tag)
    config = TrainConfig(model=entry.qualified, dataset=dataset, **options)
    config.check()
    command = command or shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])

    if resume:
        run_dir = _find_resumable(config, entry.qualified)
        record = _read_json(run_dir / "run.json") or {}
        if record.get("status") == "finished":
            raise UsageError(f"run {run_dir.name} already finished and was published as {record.get('published')}")
        try:
            saved = TrainConfig(**record["config"])
        except (KeyError, TypeError):  # run.json unreadable, or written by another version of zoo
            raise UsageError(f"run {run_dir.name} has no settings zoo can read ({run_dir / 'run.json'}); start it "
                             "again without --resume, with --overwrite") from None  # fmt: skip
        changed = {k for k in options if k not in RESUME_OVERRIDES and k != "tag" and getattr(saved, k) != options[k]}
        if saved.dataset.split(":")[-1] != dataset.split(":")[-1]:
            changed.add("dataset")
        if changed:
            names = ", ".join(f"--{k.replace('_', '-')}" for k in sorted(changed))
            raise UsageError(f"{names} cannot change when resuming run {run_dir.name}; only --epochs and --device")
        config = saved
        for key in RESUME_OVERRIDES & set(options):
            setattr(config, key, options[key])
        config.check()
        record["resumes"] = [*record.get("resumes", []), command]
        reporter.info(f"resuming run {run_dir.name}")
    else:
        plugin, _, name = entry.qualified.partition(":")
        tag = _choose_tag(config, entry.qualified, plugin, name)
        config.tag = tag
        if _published(entry.qualified, tag) and not config.overwrite:
            raise UsageError(f"{entry.qualified}.{tag} is already published; pass another --tag or --overwrite")
        run_dir = runs_root() / run_id_for(plugin, name, tag)
        old = _read_json(run_dir / "run.json")
        if old and old.get("status") == "failed" and not config.overwrite:
            raise UsageError(f"run {run_dir.name} failed before; start it again with --overwrite or pick another --tag")
        if old and old.get("status") != "finished" and not config.overwrite:
            raise UsageError(f"run {run_dir.name} exists and did not finish; continue it with --resume, "
                             "or start again with --overwrite")  # fmt: skip
        record = {"run_id": run_dir.name, "model": entry.qualified, "tag": tag, "config": asdict(config),
                  "command": command, "created": _now(), "status": "created"}  # fmt: skip
    assert config.tag is not None
    trainer = catalogue.get("trainer", config.trainer)  # unknown trainers fail before any data is loaded
    device = resolve_device(config.device)
    check_precision(device, config.precision)
    if not resume:
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
    record["status"] = "running"
    _write_run(run_dir, record)

    try:
        job, data, model_kwargs, preprocessing, val_desc = prepare(config, device, run_dir, resume, reporter)
    except ZooError:
        if not resume:  # nothing was trained: leave no run behind to resume or to take the tag
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    try:
        result = trainer.builder(job)
        if not isinstance(result, dict):
            raise TrainingError(f"trainer {trainer.qualified} returned {type(result).__name__}, not a dict of metrics")
        for p in job.model.parameters():
            if not torch.isfinite(p.detach()).all():
                raise TrainingError(f"trainer {trainer.qualified} left non-finite weights: training diverged")
        from zoo_core.evaluation import evaluate

        report = evaluate(job.model, data.split(data.eval_split), job.eval_pipeline, job.labels,
                          batch_size=max(config.batch_size, 256), precision=config.precision)  # fmt: skip
    except (ZooError, torch.cuda.OutOfMemoryError) as e:
        record["status"] = "failed"
        _write_run(run_dir, record)
        if isinstance(e, ZooError):
            raise
        raise TrainingError(
            f"out of memory on {device} at batch size {config.batch_size}; start again with a smaller "
            "--batch-size and --overwrite (a resumed run keeps its batch size)"
        ) from None

    metrics = {
        "dataset": data.name,
        "split": data.eval_split,
        "top1": report["top1"],
        "top5": report["top5"],
        "per_class_top1": report["per_class_top1"],
        "num_samples": report["num_samples"],
        "epochs": result.get("epochs", config.epochs),
        "best_val_top1": result.get("best_val_top1"),
        "val_top1": result.get("val_top1"),
        "train_images_per_s": result.get("train_images_per_s"),
        "train_time_s": result.get("train_time_s"),
    }
    training = {
        **asdict(config),
        "trainer": trainer.qualified,
        "loss": result.get("loss", "cross_entropy"),
        "validation": val_desc,
        "pipeline": job.train_pipeline.describe(),
        "history": result.get("history", []),
        "run_id": run_dir.name,
        "command": command,
        "resumed_with": record.get("resumes", []),
        "environment": environment(str(device)),
    }
    from zoo_registry.store import publish

    job.model.to("cpu", memory_format=torch.contiguous_format)
    published = publish(job.model, model_name=config.model, tag=config.tag, model_kwargs=model_kwargs,
                        labels=job.labels, preprocessing=preprocessing, metrics=metrics, training=training,
                        overwrite=config.overwrite)  # fmt: skip
    record.update(status="finished", published=published.ref, finished=_now(), metrics={
        k: metrics[k] for k in ("top1", "top5", "epochs", "best_val_top1")})  # fmt: skip
    job.checkpoint_path.unlink(missing_ok=True)  # the weights live in the registry now
    _write_run(run_dir, record)
    return TrainOutcome(run_dir.name, run_dir, published, metrics, training)


def prepare(
    config: TrainConfig, device: Any, run_dir: Path, resume: bool, reporter: Reporter
) -> tuple[TrainJob, Any, dict[str, Any], dict[str, Any], str]:
    """Load the data, build the model and the pipelines -> (job, dataset, model_kwargs, preprocessing,
    how validation is done)."""
    import torch

    from zoo_core.datasets import BatchPipeline, channel_stats, load_dataset

    data = load_dataset(config.dataset, config.data_dir, **config.data_options)
    splits = ", ".join(f"{name} {len(split):,}" for name, split in data.splits.items())
    reporter.info(f"dataset {data.name}: {splits} images of {'x'.join(map(str, data.input_size))}, "
                  f"{data.num_classes} classes")  # fmt: skip
    torch.manual_seed(config.seed)
    model, model_kwargs, preprocessing = build_model(config, data)
    train_split, val_split, val_desc = split_validation(data, config.val_fraction)
    channels = preprocessing["input_size"][0]
    if preprocessing["mean"] is None:
        preprocessing["mean"], preprocessing["std"] = channel_stats(train_split, channels)
    params: list[Any] = list(model.parameters())
    frozen: list[Any] = []
    if config.freeze_backbone:
        params, frozen = freeze_backbone(model, data.num_classes)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    if device.type == "cuda":  # the whole uint8 dataset is small next to a GPU's memory: keep it there
        train_split, val_split = train_split.to(device), val_split.to(device)
    common = dict(mean=preprocessing["mean"], std=preprocessing["std"], size=preprocessing["input_size"][1:],
                  channels=channels, device=device, channels_last=config.channels_last)  # fmt: skip
    job = TrainJob(
        model=model, train=train_split, val=val_split,
        train_pipeline=BatchPipeline(augment=config.augment, **common), eval_pipeline=BatchPipeline(**common),
        config=config, device=device, run_dir=run_dir, resume=resume, params=params, labels=list(data.classes),
        reporter=reporter, frozen_modules=frozen,
    )  # fmt: skip
    n_train = sum(p.numel() for p in params)
    reporter.info(f"model {config.model} {model_kwargs}, {n_train:,} trainable parameters; validation: {val_desc}")
    return job, data, model_kwargs, preprocessing, val_desc


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def epochs_iter(job: TrainJob, start: int) -> Iterator[int]:
    """Epoch numbers from ``start`` to ``config.epochs`` with the per-epoch seeding that makes a resumed
    run draw the same batches, augmentations and dropout masks as an uninterrupted one."""
    import torch

    for epoch in range(start, job.config.epochs + 1):
        torch.manual_seed(job.config.seed * 1_000_003 + epoch)
        yield epoch
