"""``zoo train`` as a library: build a catalogue model for a catalogue dataset, hand both to a trainer
plugin, evaluate the result on the test split and publish it to the local registry.

The trainer is a plugin (``zoo_register_trainers``): ``factory(job)`` gets a ``zoo_core.plugin_api.TrainJob``
and returns its metrics. Everything around it (model building, preprocessing, resume bookkeeping,
publishing) is the same for every trainer. Runs are kept by ``zoo_train.runs``.

Under torchrun every rank calls ``train`` alike; rank 0 alone keeps the run and publishes, and hands the
others what they need (``zoo_train.distributed``).
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import sys
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import (
    PRECISIONS,
    Distributed,
    Reporter,
    TrainingError,
    TrainJob,
    UsageError,
    ZooError,
    check_precision,
    first_line,
    keep_freed_cpu_memory,
    remove_torn_writes,
    runs_dir,
    utc_now,
)
from zoo_train.evaluation import TTAS  # test-time augmentation of the final test
from zoo_train.loop import SCHEDULES
from zoo_train.pipeline import AUGMENTS
from zoo_train.runs import (
    choose_tag,
    find_resumable,
    read_json,
    resume_command,
    run_id_for,
    run_lock,
    write_record,
)

OPTIMIZERS = ("adam", "sgd", "nesterov", "muon")  # muon: the fast trainer's
DEFAULT_TRAINER = "classifier"
# What may differ when a run is resumed: where it runs and how long, not what it learns from.
RESUME_OVERRIDES = {"epochs", "device"}


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
    sync_bn: bool = False
    label_smoothing: float = 0.0
    tta: str = "none"
    early_crop: int | None = None  # the fast trainer: the first early_crop_epochs train on crops of this side
    early_crop_epochs: int = 0
    recipe: str | None = None  # the recipe (plugin:name) the settings came from
    recipe_overrides: dict[str, Any] = field(default_factory=dict)  # option -> the recipe's value it replaced
    world_size: int = 1  # processes of the run, each with batch_size images a step (set by zoo, not an option)

    def check(self) -> None:
        """Raise UsageError for settings that cannot work, before anything is loaded."""
        if self.epochs < 1 or self.batch_size < 1:
            raise UsageError("--epochs and --batch-size must be at least 1")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise UsageError(f"--lr must be a positive number, got {self.lr}")
        for name, value, allowed in (("optimizer", self.optimizer, OPTIMIZERS),
                                     ("precision", self.precision, PRECISIONS),
                                     ("schedule", self.schedule, SCHEDULES),
                                     ("augment", self.augment, AUGMENTS),
                                     ("tta", self.tta, TTAS)):  # fmt: skip
            if value not in allowed:
                raise UsageError(f"--{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not 0 <= self.label_smoothing < 1:
            raise UsageError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if (self.early_crop is not None and self.early_crop < 1) or self.early_crop_epochs < 0:
            raise UsageError("--early-crop must be a positive side in pixels and --early-crop-epochs at least 0")
        if self.early_crop_epochs and not self.early_crop:
            raise UsageError("--early-crop-epochs needs --early-crop PX (the side of the windows)")
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")
        if self.freeze_backbone and not self.pretrained:
            raise UsageError("--freeze-backbone needs --pretrained TAG (a random backbone would stay random)")
        if self.img_size is not None and self.img_size < 1:
            raise UsageError(f"--img-size must be positive, got {self.img_size}")
        if self.tag is not None:
            from zoo_core.plugin_api import check_tag

            check_tag(self.tag)


@dataclass
class TrainOutcome:
    """What ``train`` returns: the published entry, the test metrics and the trainer's own results."""

    run_id: str
    run_dir: Path
    entry: Any  # zoo_registry.store.PublishedEntry
    metrics: dict[str, Any]
    training: dict[str, Any]


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


def _resume_config(config: TrainConfig, options: dict[str, Any], run_dir: Path, command: str,
                   dataset: str, world_size: int = 1) -> tuple[TrainConfig, dict[str, Any]]:  # fmt: skip
    """The recorded settings of the run to resume, with the options that may change applied."""
    record = read_json(run_dir / "run.json") or {}
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
    for key in RESUME_OVERRIDES & set(options):
        setattr(saved, key, options[key])
    saved.check()
    if saved.world_size != world_size:
        raise UsageError(f"run {run_dir.name} was trained by {saved.world_size} process(es) of batch "
                         f"{saved.batch_size}; resume it with {saved.world_size} (now {world_size}): the effective "
                         "batch cannot change")  # fmt: skip
    record["resumes"] = [*record.get("resumes", []), command]
    return saved, record


def configure(model: str, dataset: str, options: dict[str, Any]) -> tuple[TrainConfig, Any, dict[str, Any]]:
    """(settings, model entry, the options given) for ``train``, checked before any work. ``model`` is any name
    form; one with weights (``MODEL.TAG``, ``hf-hub:OWNER/REPO``) is the start of a fine-tune from them."""
    from zoo_core import resolve

    known = {f.name for f in fields(TrainConfig)} - {"model", "dataset", "world_size"}
    unknown = set(options) - known
    if unknown:
        raise UsageError(f"unknown training option(s) {', '.join(sorted(unknown))}")
    options = {k: v for k, v in options.items() if v is not None}
    if options.get("data_dir"):  # recorded with the run: --resume may run from another directory
        options["data_dir"] = str(Path(options["data_dir"]).expanduser().resolve())
    found = resolve(model, options.get("pretrained") or False)
    entry = found.entry
    if found.tag:
        options["pretrained"] = found.tag
    config = TrainConfig(model=entry.qualified, dataset=dataset, **options)
    config.check()
    return config, entry, options


def train(
    model: str, dataset: str, *, resume: bool = False, reporter: Reporter | None = None,
    command: str | None = None, distributed: Distributed | None = None, **options: Any,
) -> TrainOutcome:  # fmt: skip
    """Train ``model`` on ``dataset`` with ``options`` (TrainConfig fields), then evaluate and publish.

    With ``resume``, continue the unfinished run (``tag`` picks it; else the newest of this model and
    dataset) with its recorded settings; only ``epochs`` and ``device`` may change.

    Under torchrun every process calls this alike; it joins the process group from the environment
    unless given ``distributed``. Rank 0 returns the outcome with the published entry; the other ranks get
    the same metrics and ``entry`` None.
    """
    from zoo_core.plugin_api import joined

    if distributed is not None:
        return _train_ranked(model, dataset, resume, reporter, command, distributed, options)
    with joined() as dist:
        return _train_ranked(model, dataset, resume, reporter, command, dist, options)


def _train_ranked(model: str, dataset: str, resume: bool, reporter: Reporter | None, command: str | None,
                  dist: Distributed, options: dict[str, Any]) -> TrainOutcome:  # fmt: skip
    """The run, with the failures of a distributed run made one line that names the rank."""
    from zoo_core.plugin_api import CommunicationError, peer_failure

    try:
        with ExitStack() as held:  # rank 0 holds the run's lock from its plan to its end
            return _train_locked(model, dataset, resume, reporter, command, dist, options, held)
    except Exception as e:
        reason = peer_failure(e) if dist.enabled else None
        if reason is not None:
            if not reason.startswith("rank "):
                reason = f"rank {dist.rank}: lost contact with the other processes of this run ({reason})"
            raise CommunicationError(f"{' '.join(reason.split())}; continue the run with --resume") from None
        if dist.enabled and not dist.is_main and isinstance(e, ZooError) and e.report:
            e.args = (f"rank {dist.rank}: {e}",)  # an error of this rank alone: say whose
        raise


def _train_locked(model: str, dataset: str, resume: bool, reporter: Reporter | None, command: str | None,
                  dist: Distributed, options: dict[str, Any], held: ExitStack) -> TrainOutcome:  # fmt: skip
    """Plan (rank 0), train and test (every rank), publish (rank 0)."""
    from zoo_core.plugin_api import get_catalogue
    from zoo_train.distributed import check_world, on_main

    reporter = (reporter or Reporter()) if dist.is_main else Reporter()  # one process reports progress
    config, entry, options = configure(model, dataset, options)
    config.world_size = dist.world_size
    command = command or shlex.join([os.path.basename(sys.argv[0]), *sys.argv[1:]])
    trainer = get_catalogue().get("trainer", config.trainer)  # unknown trainers fail before any data is loaded
    check_world(trainer, dist, config, config.device)

    planned = on_main(dist, lambda: plan_run(config, options, resume=resume, command=command, dist=dist,
                                             reporter=reporter, held=held), share=RunPlan.to_json)  # fmt: skip
    plan = planned if isinstance(planned, RunPlan) else RunPlan.from_json(planned)
    assert plan.config.tag is not None
    if plan.published:  # killed after its publish, before it could say so: finish the record only
        return _outcome_on_main(dist, lambda: _finish_published(plan), plan.run_dir)
    from zoo_train.tracking import began, ended

    began(reporter, plan.run_dir, plan.config, plan.run_dir.name)  # --log: the trackers open their run (rank 0)
    trained = run_training(plan, trainer, reporter, dist)
    outcome = _outcome_on_main(dist, lambda: publish(plan, trained), plan.run_dir)
    ended(reporter, outcome)
    return outcome


@dataclass
class RunPlan:
    """Rank 0's decisions about a run, which every rank follows: its settings, its record and its folder."""

    config: TrainConfig
    record: dict[str, Any]  # run.json as rank 0 wrote it
    run_dir: Path
    command: str  # this process's command line, recorded with the weights
    resume: bool = False
    published: bool = False  # this very run published its weights and was killed before it could say so

    def to_json(self) -> dict[str, Any]:
        """What rank 0 sends the other ranks (the folder by name: their ``ZOO_HOME`` may differ)."""
        return {**asdict(self), "run_dir": self.run_dir.name}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunPlan:
        return cls(**{**data, "config": TrainConfig(**data["config"]), "run_dir": runs_dir() / data["run_dir"]})


def plan_run(config: TrainConfig, options: dict[str, Any], *, resume: bool, command: str, dist: Distributed,
             reporter: Reporter, held: ExitStack) -> RunPlan:  # fmt: skip
    """Rank 0: the run to start or to resume (``config`` and ``options`` as ``configure`` gives them), its
    lock held by ``held``, its folder made and its record written."""
    if resume:
        run_dir = find_resumable(config.tag, config.dataset, config.model)
        config, record = _resume_config(config, options, run_dir, command, config.dataset, dist.world_size)
        reporter.info(f"resuming run {run_dir.name}")
    else:
        config, record, run_dir = _new_run(config, command, dist)
    check_precision(dist.device(config.device), config.precision)
    held.enter_context(run_lock(run_dir))
    remove_torn_writes(run_dir)  # a checkpoint write that a kill cut short: the last whole one stays
    plan = RunPlan(config, record, run_dir, command, resume=resume)
    if resume and _published_by(config.model, config.tag, record):
        plan.published = True
        return plan
    try:
        if not resume:
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
        record.update(status="running", pid=os.getpid())
        write_record(run_dir, record)
    except OSError as e:
        raise TrainingError(f"cannot write the run folder {run_dir} ({e.strerror or e}); set ZOO_HOME to a "
                            "folder zoo can write") from None  # fmt: skip
    return plan


def _new_run(config: TrainConfig, command: str, dist: Distributed) -> tuple[TrainConfig, dict[str, Any], Path]:
    """(settings with their tag, record, folder) of a run to start; refused where it would replace an unfinished
    run without --overwrite (a published tag is no obstacle: the weights become its next version)."""
    config = replace(config, tag=choose_tag(config.tag, config.dataset, config.model))
    run_dir = runs_dir() / run_id_for(config.model, config.tag)
    old = read_json(run_dir / "run.json")
    if old and old.get("status") == "failed" and not config.overwrite:
        raise UsageError(f"run {run_dir.name} failed before; start it again with --overwrite or pick "
                         "another --tag")  # fmt: skip
    if old and old.get("status") != "finished" and not config.overwrite:
        raise UsageError(f"run {run_dir.name} exists and did not finish; continue it with --resume, "
                         "or start again with --overwrite")  # fmt: skip
    # the nonce tells this run from an earlier one of the same tag, which had the same run id (see _published_by)
    record = {"run_id": run_dir.name, "model": config.model, "tag": config.tag, "config": asdict(config),
              "command": command, "created": utc_now(), "status": "created", "nonce": os.urandom(8).hex()}  # fmt: skip
    if dist.enabled:
        record["distributed"] = dist.describe()
    return config, record, run_dir


@dataclass
class Trained:
    """A trained and tested model with what publishing it records (every rank has one)."""

    job: TrainJob
    data: Any  # zoo_core.plugin_api.Dataset
    trainer: str  # the trainer plugin's qualified name
    result: dict[str, Any]  # what the trainer returned
    report: dict[str, Any]  # the evaluation of the test split
    model_kwargs: dict[str, Any]
    preprocessing: dict[str, Any]
    validation: str  # how the run was validated


def run_training(plan: RunPlan, trainer: Any, reporter: Reporter, dist: Distributed) -> Trained:
    """Build the model, data and pipelines, call the trainer plugin and test the result (every rank); a
    failure leaves the run marked (rank 0), or removed when nothing was trained yet."""
    import torch

    from zoo_core.plugin_api import get_catalogue
    from zoo_train.distributed import check_world

    config, run_dir = plan.config, plan.run_dir
    if config.trainer != trainer.name:  # a resumed run trains on with the trainer it was started with
        trainer = get_catalogue().get("trainer", config.trainer)
        check_world(trainer, dist, config, config.device)
    device = dist.device(config.device)
    check_precision(device, config.precision)
    if device.type == "cpu":
        keep_freed_cpu_memory()
    try:
        job, data, model_kwargs, preprocessing, validation = prepare(config, device, run_dir, plan.resume, reporter,
                                                                     dist)  # fmt: skip
    except (ZooError, KeyboardInterrupt):
        if not plan.resume and dist.is_main:  # nothing was trained: leave no run behind to resume or to take the tag
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    try:
        result, report = _fit_and_test(job, data, trainer, dist)
    except KeyboardInterrupt:
        if dist.is_main:
            _mark(run_dir, plan.record, "interrupted")
        raise
    except (ZooError, torch.cuda.OutOfMemoryError) as e:
        if dist.is_main:
            _mark(run_dir, plan.record, "failed")
        if isinstance(e, ZooError):
            raise
        raise TrainingError(
            f"out of memory on {device} at batch size {config.batch_size}; start again with a smaller "
            "--batch-size and --overwrite (a resumed run keeps its batch size)"
        ) from None
    return Trained(job, data, trainer.qualified, result, report, model_kwargs, preprocessing, validation)


def _fit_and_test(job: TrainJob, data: Any, trainer: Any, dist: Distributed) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the trainer's results, the test report): train ``job`` with ``trainer``, check the weights are finite
    and the same on every rank, evaluate on the dataset's test split."""
    import torch

    from zoo_train.distributed import average_norm_stats, check_same_weights, evaluate_sharded, shared
    from zoo_train.evaluation import eval_batch_size

    result = trainer.build(job, passthrough=(torch.cuda.OutOfMemoryError,))
    if not isinstance(result, dict):
        raise shared(TrainingError(f"trainer {trainer.qualified} returned {type(result).__name__}, not a dict of "
                                   "metrics"), dist)  # fmt: skip
    average_norm_stats(job.model, dist)
    check_same_weights(job.model, dist, trainer.qualified)
    for p in job.model.parameters():
        if not torch.isfinite(p.detach()).all():
            raise shared(TrainingError(f"trainer {trainer.qualified} left non-finite weights: training "
                                       "diverged"), dist)  # fmt: skip
    report = evaluate_sharded(job.model, data.split(data.eval_split), job.eval_pipeline, job.labels, dist,
                              batch_size=eval_batch_size(job.device, job.config.batch_size),
                              precision=job.config.precision, tta=job.config.tta)  # fmt: skip
    return result, report


def publish(plan: RunPlan, trained: Trained) -> TrainOutcome:
    """Publish the trained weights to the local registry and mark the run finished (rank 0)."""
    import torch
    from zoo_registry import store

    from zoo_core.plugin_api import environment

    config, record, run_dir, job = plan.config, plan.record, plan.run_dir, trained.job
    result, report, dist = trained.result, trained.report, job.distributed
    metrics = {
        "dataset": trained.data.name,
        "split": trained.data.eval_split,
        "top1": report["top1"],
        "top5": report["top5"],
        "topk": report["topk"],
        "tta": config.tta,
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
        "trainer": trained.trainer,
        "loss": result.get("loss", "cross_entropy"),
        "validation": trained.validation,
        "pipeline": job.train_pipeline.describe(),
        "history": result.get("history", []),
        "run_id": run_dir.name,
        "run_nonce": record.get("nonce"),
        "command": plan.command,
        "resumed_with": record.get("resumes", []),
        "effective_batch_size": config.batch_size * config.world_size,
        "distributed": dist.describe() if dist.enabled else None,
        "environment": environment(str(job.device)),
    }
    job.model.to("cpu", memory_format=torch.contiguous_format)
    try:
        entry = store.publish(job.model, model_name=config.model, tag=config.tag, model_kwargs=trained.model_kwargs,
                              labels=job.labels, preprocessing=trained.preprocessing, metrics=metrics,
                              training=training, lineage=_lineage(plan, trained))  # fmt: skip
    except OSError as e:  # an unwritable registry: the trained weights stay in the run's checkpoint
        _mark(run_dir, record, "trained")
        raise TrainingError(f"trained, but the weights could not be published to the registry ({e.strerror or e}: "
                            f"{e.filename or ''}); make it writable, then publish them with: "
                            f"{resume_command(record)}") from None  # fmt: skip
    record.update(status="finished", published=entry.ref, finished=utc_now(), metrics={
        k: metrics[k] for k in ("top1", "top5", "epochs", "best_val_top1")})  # fmt: skip
    job.checkpoint_path.unlink(missing_ok=True)  # the weights live in the registry now
    write_record(run_dir, record)
    return TrainOutcome(run_dir.name, run_dir, entry, metrics, training)


def _lineage(plan: RunPlan, trained: Trained) -> dict[str, Any]:
    """What the published version came from: its parent weights, data, recipe and run."""
    from zoo_registry.ancestry import training_lineage

    run = {"id": plan.run_dir.name, "created": plan.record.get("created"), "command": plan.command}
    return training_lineage(plan.config.model, asdict(plan.config), trained.data, run)


def _outcome_on_main(dist: Distributed, fn: Callable[[], TrainOutcome], run_dir: Path) -> TrainOutcome:
    """``fn()`` on rank 0; the other ranks get the same outcome, less the registry entry only rank 0 holds."""
    from zoo_train.distributed import on_main

    outcome = on_main(dist, fn, share=lambda o: {"run_id": o.run_id, "metrics": o.metrics, "training": o.training})
    if isinstance(outcome, TrainOutcome):
        return outcome
    return TrainOutcome(outcome["run_id"], run_dir, None, outcome["metrics"], outcome["training"])


def _mark(run_dir: Path, record: dict[str, Any], status: str) -> None:
    """Record how the run ended; a record that cannot be written is not worth a second error."""
    record["status"] = status
    try:
        write_record(run_dir, record)
    except OSError:
        pass


def _published_by(model: str, tag: str, record: dict[str, Any]) -> bool:
    """Whether this very run already published ``model.tag`` (it was killed before it could say so); weights an
    earlier run of the tag published (the same run id: --overwrite) do not count."""
    from zoo_registry.store import get

    try:
        training = get(model, tag).config.get("training") or {}
    except ZooError:
        return False
    return training.get("run_id") == record["run_id"] and training.get("run_nonce") == record.get("nonce")


def _finish_published(plan: RunPlan) -> TrainOutcome:
    """Mark a run finished whose weights reached the registry before it was killed."""
    from zoo_registry.store import get

    entry = get(plan.config.model, plan.config.tag)
    plan.record.update(status="finished", published=entry.ref, finished=utc_now())
    (plan.run_dir / "checkpoint.safetensors").unlink(missing_ok=True)
    write_record(plan.run_dir, plan.record)
    training = entry.config.get("training") or {}
    return TrainOutcome(plan.run_dir.name, plan.run_dir, entry, entry.metrics, training)


def _check_forward(job: TrainJob, config: TrainConfig) -> None:
    """One forward pass on two images, before any training: a size the model cannot take is a usage error
    now, not a traceback after the run has taken its tag."""
    import torch

    x = job.eval_pipeline(job.train.images[:2])
    job.model.eval()
    try:
        with torch.no_grad():
            job.model(x)
    except (RuntimeError, ValueError, AssertionError) as e:  # timm's ViTs assert their input size
        size = "x".join(str(v) for v in x.shape[2:])
        reason = first_line(e)
        option = "--img-size" if config.img_size else "--img-size (the data's size does not fit it)"
        raise UsageError(f"{config.model} cannot run on {size} inputs ({reason}); choose another {option}") from None


def prepare(
    config: TrainConfig, device: Any, run_dir: Path, resume: bool, reporter: Reporter,
    distributed: Distributed | None = None,
) -> tuple[TrainJob, Any, dict[str, Any], dict[str, Any], str]:  # fmt: skip
    """Load the data, build the model and the pipelines -> (job, dataset, model_kwargs, preprocessing,
    how validation is done)."""
    import torch

    from zoo_core.plugin_api import load_dataset
    from zoo_train.build import build_model, freeze_backbone
    from zoo_train.distributed import sync_batchnorm
    from zoo_train.pipeline import BatchPipeline, channel_stats

    dist = distributed or Distributed()
    with dist.local_main_first():  # one process per machine decodes into the dataset cache; the others read it
        data = load_dataset(config.dataset, config.data_dir, **config.data_options)
    splits = ", ".join(f"{name} {len(split):,}" for name, split in data.splits.items())
    reporter.info(f"dataset {data.name}: {splits} images of {'x'.join(map(str, data.input_size))}, "
                  f"{data.num_classes} classes")  # fmt: skip
    torch.manual_seed(config.seed)
    model, model_kwargs, preprocessing = build_model(config, data, reporter)
    train_split, val_split, val_desc = split_validation(data, config.val_fraction)
    channels = preprocessing["input_size"][0]
    if preprocessing["mean"] is None:
        preprocessing["mean"], preprocessing["std"] = channel_stats(train_split, channels)
    model = sync_batchnorm(model, dist, device, config.sync_bn)  # before freezing: it replaces the norm layers
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
        reporter=reporter, frozen_modules=frozen, distributed=dist,
    )  # fmt: skip
    _check_forward(job, config)
    n_train = sum(p.numel() for p in params)
    reporter.info(f"model {config.model} {model_kwargs}, {n_train:,} trainable parameters; validation: {val_desc}")
    if dist.enabled:
        reporter.info(f"{dist.world_size} processes on {dist.nodes} machine(s) ({dist.backend}), batch "
                      f"{config.batch_size} each: {config.batch_size * dist.world_size} images a step")  # fmt: skip
    return job, data, model_kwargs, preprocessing, val_desc
