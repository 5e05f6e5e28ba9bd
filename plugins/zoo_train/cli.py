"""``zoo train``, ``zoo eval`` and ``zoo datasets``: parse, call zoo_train.training / evaluation, print."""

from __future__ import annotations

import shlex
from typing import Any

import click

from zoo_core.plugin_api import (
    PRECISIONS,
    Choice,
    Interrupted,
    Reporter,
    command_line,
    data_options,
    deprecated,
    device_option,
    echo_json,
    img_size_option,
    json_option,
    model_argument,
    precision_option,
    the_model,
)
from zoo_train.evaluation import TTAS, UNSURE_BELOW
from zoo_train.loop import SCHEDULES
from zoo_train.pipeline import AUGMENTS
from zoo_train.training import OPTIMIZERS

# The test-time augmentations beyond none, for the --tta help of train and eval.
TTA_MODES = ("flip (each image and its mirror image, logits summed), flip-translate (also shifted 1 px diagonally "
             "each way), or unsure (flip-translate only for the images whose plain prediction has a top probability "
             f"under {UNSURE_BELOW:g})")


class ConsoleReporter(Reporter):
    """A rich progress bar (loss, accuracy, images/s) on a terminal; one line per epoch either way."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False)
        self.live = self.console.is_terminal
        self.bar: Any = None
        self.task: Any = None

    def info(self, text: str) -> None:
        self.console.print(text, markup=False, soft_wrap=True)

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        if self.bar is None:
            self.bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[rate]} img/s"),
                TimeElapsedColumn(), console=self.console, transient=True,
            )  # fmt: skip
            self.bar.start()
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(f"epoch {epoch}/{epochs}", total=steps, loss="-", acc="-", rate="-")

    def progress(self, step: int, loss: float, acc: float, images_per_s: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, loss=f"{loss:.4f}", acc=f"{acc:.1f}%",
                            rate=f"{images_per_s:,.0f}")  # fmt: skip

    def epoch_end(self, stats: dict[str, Any]) -> None:
        self.console.print(
            f"epoch {stats['epoch']:>3}  loss {stats['loss']:.4f}  train {stats['train_top1']:5.1f}%  "
            f"val {stats['val_top1']:5.1f}%  {stats['images_per_s']:>7,.0f} img/s  {stats['train_s']:.1f}s",
            markup=False, soft_wrap=True,
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _interrupted(model: str, dataset: str, options: dict[str, Any]) -> Interrupted:
    """Ctrl-C: the run was marked interrupted (when it had started); say how to continue it."""
    from zoo_core import ZooError, resolve
    from zoo_core.plugin_api import runs_dir
    from zoo_train.runs import list_runs, resume_command

    try:
        qualified = resolve(model).entry.qualified  # resolved before training began: no Hub call now
    except ZooError:
        qualified = None
    for record in list_runs():  # the run this command was training: the newest interrupted one of this model
        if record.get("status") == "interrupted" and record.get("model") == qualified:
            return Interrupted(f"run {record['run_id']} stopped; continue it with: {resume_command(record)}")
    return Interrupted(f"stopped before training began (nothing to resume in {runs_dir()})")


def _display_ref(model: str, tag: str) -> str:
    from zoo_core.plugin_api import get_catalogue

    return get_catalogue().display_ref(model, tag)


@click.command("train")
@model_argument
@data_options(required_dataset=False)
@click.option("--recipe", metavar="NAME",
              help="Train a recipe from `zoo recipes`: its model, dataset and settings; the options given here "
              "override it (and are recorded in the run).")  # fmt: skip
@click.option("--epochs", type=int, help="Epochs to train (default 10).")
@click.option("--batch-size", type=int, help="Images per step (default 64).")
@click.option("--lr", type=float, help="Learning rate (default 1e-3).")
@click.option("--optimizer", type=Choice(OPTIMIZERS),
              help="adam (default), sgd (momentum 0.9), nesterov (SGD with Nesterov momentum) or muon (the fast "
              "trainer's: Muon for conv filters, Nesterov SGD for the rest).")  # fmt: skip
@click.option("--weight-decay", type=float, help="Weight decay (default 0).")
@click.option("--schedule", type=Choice(SCHEDULES),
              help="Learning rate: constant (default, the tutorial's), cosine decay to 0 over the run, linear: "
              "a warm-up over the first 20% of the run, then a straight line to 0, or decay: a straight line to 0 "
              "from the first step.")  # fmt: skip
@click.option("--augment", type=Choice(AUGMENTS),
              help="none (default); standard: random crop padded 4 px (at 32x32) + flip; strong: + rotation 15 deg, "
              "colour jitter 0.2; flip-translate: flip + shifts of up to 2 px, the border mirrored.")  # fmt: skip
@click.option("--label-smoothing", type=float, help="Share of the target spread over all classes (default 0).")
@click.option("--early-crop", type=int, metavar="PX",
              help="The fast trainer: train the first --early-crop-epochs epochs on a random PX x PX window of each "
              "batch (cheaper early epochs; the network sees whole images from then on).")  # fmt: skip
@click.option("--early-crop-epochs", type=int, help="Epochs trained on --early-crop windows (default 0).")
@click.option("--tta", type=Choice(TTAS),
              help=f"The final test: none (default), {TTA_MODES}.")
@click.option("--device", help="auto (default), cpu, cuda or cuda:N.")
@click.option("--precision", type=Choice(PRECISIONS), help="fp32 (default), tf32 (GPU), or bf16/fp16 autocast.")
@click.option("--channels-last/--no-channels-last", default=None, help="Memory format (default: channels_last).")
@click.option("--pretrained", metavar="TAG", help="Deprecated: name the weights as MODEL.TAG instead.")
@click.option("--freeze-backbone", is_flag=True, default=None,
              help="Train only the new classifier (needs weights: MODEL.TAG).")  # fmt: skip
@click.option("--img-size", type=int,
              help="Train at this image side (default: the weights', else the data's, capped at a size-adaptive "
              "model's design size).")  # fmt: skip
@click.option("--val-fraction", type=float,
              help="Share of train held out for validation (default 0.1; 0 validates on the test split).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--tag", help="Publish as MODEL.TAG (default: <dataset>-<date>); also names the run.")
@click.option("--trainer", help="A trainer plugin (default: classifier).")
@click.option("--resume", is_flag=True, help="Continue the unfinished run (this --tag, else the newest).")
@click.option("--overwrite", is_flag=True, default=None, help="Start an unfinished or failed run of the tag again.")
@click.option("--sync-bn", is_flag=True, default=None,
              help="With several CUDA processes: BatchNorm over the global batch (SyncBatchNorm).")
@click.option("--nproc-per-node", type=int,
              help="Run under torchrun with N processes on this machine (DistributedDataParallel; "
              "--batch-size is per process).")  # fmt: skip
@click.option("--nnodes", type=int, help="Machines in the run (torchrun; needs --rdzv-endpoint).")
@click.option("--node-rank", type=int, help="This machine's number, 0..nnodes-1 (torchrun).")
@click.option("--rdzv-endpoint", metavar="HOST:PORT",
              help="Where the machines meet (torchrun's c10d rendezvous): one machine's address, the same on all.")
@click.option("--dist-timeout", type=float, metavar="SECONDS",
              help="A process that waits this long for the others ends the run (default 600, or $ZOO_DIST_TIMEOUT).")
@click.option("--log", "log", multiple=True, type=Choice(("tensorboard", "mlflow")),
              help="Also log the run to TensorBoard (event files in the run folder) or MLflow ($MLFLOW_TRACKING_URI, "
              "else a local store); repeatable. Needs zoo[track].")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def train_cmd(ctx: click.Context, model: str | None, model_option: str | None, dataset: str,
              data_opts: tuple[str, ...], resume: bool, as_json: bool, nproc_per_node: int | None,
              nnodes: int | None, node_rank: int | None, rdzv_endpoint: str | None, dist_timeout: float | None,
              **options: Any) -> int | None:  # fmt: skip
    """Train MODEL on a dataset, then evaluate it and publish the weights as MODEL.TAG.

    \b
    zoo train simplecnn --dataset cifar10 --epochs 10
    zoo train resnet18.imagenet1k_v1 --dataset imagefolder --data-dir DIR --freeze-backbone
    zoo train resnet18 --dataset cifar10 --nproc-per-node 4
    zoo train --recipe cifar10-fast --data-dir DIR --tag fast
    """
    import os

    from zoo_core.plugin_api import UsageError, joined, parse_options
    from zoo_train.launch import COMMAND_ENV, LAUNCH_OPTIONS, Launch
    from zoo_train.training import train

    if data_opts:
        options["data_options"] = parse_options(data_opts)
    recipe, recipe_line = options.pop("recipe", None), None
    if recipe:  # the recipe's settings under the options given
        from zoo_train.recipes import apply_recipe

        given = the_model(model, model_option) if model or model_option else None
        model, dataset, options, recipe_line = apply_recipe(recipe, given, dataset, options)
    else:
        model = the_model(model, model_option)
        if not dataset:
            raise UsageError("give --dataset (see `zoo datasets`), or train a recipe: --recipe NAME (`zoo recipes`)")
    log = options.pop("log", None) or ()
    if log:
        from zoo_train.tracking import check_trackers

        check_trackers(log)  # a missing package fails now, not after the data is loaded
    if options.get("pretrained"):
        from zoo_core import parse

        ref = parse(model)
        deprecated(f"--pretrained {options['pretrained']}",
                   model if ref.is_source else str(ref.with_tag(options["pretrained"])))  # fmt: skip
    launch = Launch(nproc_per_node, nnodes, node_rank, rdzv_endpoint)
    if launch.requested:
        from zoo_core.plugin_api import timeout_from_environment

        timeout_from_environment(dist_timeout)  # a bad timeout fails once, here, not once per process
        return _launch(ctx, launch, model, dataset, options, LAUNCH_OPTIONS)
    command = os.environ.get(COMMAND_ENV) or command_line(ctx)
    with joined(dist_timeout) as dist:
        reporter = ConsoleReporter() if dist.is_main else Reporter()
        if log and dist.is_main:  # rank 0 alone logs the run
            from zoo_train.tracking import Tracking

            reporter = Tracking(reporter, log)
        if recipe_line:
            reporter.info(recipe_line)
        try:
            outcome = train(model, dataset, resume=resume, reporter=reporter, command=command, distributed=dist,
                            **options)  # fmt: skip
        except KeyboardInterrupt:
            reporter.close()
            if not dist.is_main:  # rank 0 says how to carry on, once
                quiet = Interrupted(f"rank {dist.rank} stopped")
                quiet.report = False
                raise quiet from None
            raise _interrupted(model, dataset, options) from None
        finally:
            reporter.close()
    if not dist.is_main:
        return None  # rank 0 prints the result
    m = outcome.metrics
    ref = _display_ref(outcome.entry.model_name, outcome.entry.tag)
    if as_json:
        echo_json({"run_id": outcome.run_id, "published": outcome.entry.ref, "path": str(outcome.entry.path),
                   "version": outcome.entry.version, "metrics": m, "training": outcome.training})  # fmt: skip
        return
    click.echo(f"published {ref}  top-1 {m['top1']}%  top-{m.get('topk', 5)} {m['top5']}%  "
               f"({m['dataset']} {m['split']}, {m['num_samples']} images)")  # fmt: skip
    click.echo(f"  weights {outcome.entry.path} (version {outcome.entry.version}: {ref}@{outcome.entry.version})")
    data_dir = f" --data-dir {shlex.quote(options['data_dir'])}" if options.get("data_dir") else ""
    click.echo(f"  evaluate: zoo eval {ref} --dataset {dataset}{data_dir}")


def _launch(ctx: click.Context, launch: Any, model: str, dataset: str, options: dict[str, Any],
            launch_options: tuple[str, ...]) -> int:  # fmt: skip
    """Check what can be checked here, then run this very command under torchrun."""
    from zoo_core.plugin_api import Distributed, command_args, get_catalogue
    from zoo_train.distributed import check_world
    from zoo_train.launch import launch as run_torchrun
    from zoo_train.training import configure

    launch.check()
    config, _, _ = configure(model, dataset, options)  # bad options fail once, here, not once per process
    world = Distributed(world_size=launch.processes * launch.machines)
    check_world(get_catalogue().get("trainer", config.trainer), world, config, config.device)
    reporter = ConsoleReporter()
    return run_torchrun(launch, command_args(ctx, exclude=launch_options), command_line(ctx), info=reporter.info)


@click.command("eval")
@model_argument
@data_options()
@device_option
@precision_option
@click.option("--batch-size", type=int, help="Images per batch (default: 128 on a CPU, 256 on a GPU).")
@img_size_option("Evaluate at this image side (default: the weights'); the crop share is kept.")
@click.option("--crop-pct", type=float, help="Share of the resized image the centre crop keeps (default: weights').")
@click.option("--limit", type=int, metavar="N", help="Only N images, spread over the split (a quick check).")
@click.option("--workers", type=int, default=2, show_default=True, help="Processes reading image files.")
@json_option
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the confusion matrix picture here (.png).")
@click.option("--runtime", type=Choice(("torch", "onnxruntime")), default="torch", show_default=True,
              help="Run the weights eagerly, or their verified ONNX export in onnxruntime (made if none is stored).")
@click.option("--int8", is_flag=True, help="With --runtime onnxruntime: the int8 export (calibrated on --dataset "
              "if none is stored).")
@click.option("--tta", type=Choice(TTAS),
              help=f"Test-time augmentation: none, {TTA_MODES}; default: the protocol of the weights' own test.")
def eval_cmd(model: str | None, model_option: str | None, dataset: str, data_dir: str | None,
             data_opts: tuple[str, ...], device: str, precision: str, batch_size: int | None, img_size: int | None,
             crop_pct: float | None, limit: int | None, workers: int, as_json: bool,
             plot: str | None, runtime: str = "torch", int8: bool = False, tta: str | None = None) -> None:  # fmt: skip
    """Top-1, top-5 and per-class accuracy of MODEL[.TAG] on a dataset's test (else val) split.

    \b
    zoo eval simplecnn.run1 --dataset cifar10
    zoo eval resnet50.imagenet1k_v2 --dataset imagefolder --data-dir ~/imagenet/val --limit 2000
    """
    from zoo_core.plugin_api import UsageError, parse_options
    from zoo_train.evaluation import evaluate_published, plot_confusion

    model = the_model(model, model_option)
    if (batch_size is not None and batch_size < 1) or workers < 0:
        raise UsageError("--batch-size must be at least 1 and --workers 0 or more")
    if plot:  # a bad --plot fails now, not after the evaluation
        from zoo_core.plugin_api import check_plot

        check_plot(plot)
    module = None
    if runtime != "torch" or int8:
        from zoo_export.runtime import check_runtime
        from zoo_export.verified import runtime_model

        check_runtime(runtime, int8, img_size)
        device = "cpu" if device == "auto" else device
        module = runtime_model(model, int8=int8, default_calib=dataset, data_dir=data_dir, device=device,
                               log=lambda text: click.echo(f"zoo: {text}", err=True))  # fmt: skip
    report = evaluate_published(model, dataset, data_dir, device=device, batch_size=batch_size,
                                precision=precision, data_options=parse_options(data_opts), img_size=img_size,
                                crop_pct=crop_pct, limit=limit, workers=workers, module=module, tta=tta)  # fmt: skip
    if plot:
        report["plot"] = str(plot_confusion(report, plot))
    if as_json:
        echo_json(report)
        return
    from zoo_core.plugin_api import Preprocessing, describe, format_table

    ref = _display_ref(report["model"], report["tag"])
    pre = report["preprocessing"]
    click.echo(f"{ref} on {report['dataset']} {report['split']} ({report['num_samples']} images, "
               f"{report['environment']['device']}, read from {report['read_from']})")  # fmt: skip
    click.echo(f"  preprocessing: {describe(Preprocessing(**{**pre, 'input_size': tuple(pre['input_size'])}))}")
    if report["runtime"]["runtime"] != "torch":
        rt = report["runtime"]
        click.echo(f"  runtime: {rt['runtime']} ({rt.get('provider')}), export {rt.get('export')} ({rt.get('file')})")
    if report["label_matching"] != "by name":
        click.echo(f"  note: the dataset's classes were matched to the weights' {report['label_matching']}")
    tested = "" if report["tta"] == "none" else f"   (test-time augmentation: {report['tta']})"
    click.echo(f"  top-1 {report['top1']}%   top-{report['topk']} {report['top5']}%{tested}")
    rows = [(name, f"{acc:.2f}") for name, acc in report["per_class_top1"].items()]
    click.echo(format_table(["class", "top-1 %"], rows))
    if plot:
        click.echo(f"confusion matrix: {report['plot']}")


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def datasets_cmd(as_json: bool) -> None:
    """List the datasets the plugins provide."""
    from zoo_core.plugin_api import list_datasets

    rows = list_datasets()
    if as_json:
        echo_json(rows)
        return
    from zoo_core.plugin_api import format_table

    click.echo(format_table(
        ["name", "plugin", "classes", "input", "needs --data-dir", "description"],
        [(r["name"] if r["default"] else r["qualified"], r["plugin"], r.get("num_classes", ""),
          "x".join(map(str, r["input_size"])) if r.get("input_size") else "any",
          "yes" if r.get("needs_data_dir") else "", r.get("description", "")) for r in rows],
    ))  # fmt: skip


@click.group("runs", invoke_without_command=True)
@click.option("--model", "-m", "model", metavar="MODEL[.TAG]", help="Only the runs of this model (or of this tag).")
@json_option
@click.pass_context
def runs_cmd(ctx: click.Context, model: str | None, as_json: bool) -> None:
    """Training runs: status, epochs done, and the command that resumes or removes each."""
    if ctx.invoked_subcommand is not None:
        return
    from zoo_core import parse, resolve
    from zoo_core.plugin_api import format_table, runs_dir
    from zoo_train.runs import checkpoint_epoch, list_runs, resume_command

    qualified, tag = None, None
    if model:  # a run's tag need not be published yet (running, failed): resolve the model, keep the tag
        ref = parse(model)
        found = resolve(ref if ref.is_source else ref.with_tag(None))
        qualified, tag = found.entry.qualified, ref.tag if not ref.is_source else found.tag
    rows, records = [], []
    for record in list_runs():
        if qualified is not None and (record.get("model") != qualified or tag not in (None, record.get("tag"))):
            continue
        run_id, status = record["run_id"], record.get("status", "?")
        cfg = record.get("config") or {}
        done = checkpoint_epoch(runs_dir() / run_id)
        if status == "finished":
            done = (record.get("metrics") or {}).get("epochs", cfg.get("epochs"))
        if status == "running" and record.get("pid") and not _alive(record["pid"]):
            status = "killed"  # its process is gone: it was killed without a chance to say so
        if status == "finished":
            nxt = f"zoo eval {_display_ref(record['model'], record['tag'])} --dataset {cfg.get('dataset', '?')}"
        elif status in ("broken", "failed"):
            nxt = f"zoo runs remove {run_id}"
        else:
            nxt = resume_command(record)
        records.append({**record, "status": status, "epochs_done": done, "next": nxt})
        top1 = (record.get("metrics") or {}).get("top1")
        rows.append((run_id, status, f"{done or 0}/{cfg.get('epochs', '?')}", cfg.get("dataset", ""),
                     f"{top1}%" if top1 is not None else "", nxt))  # fmt: skip
    if as_json:
        echo_json(records)
        return
    if not rows:
        click.echo(f"no runs yet in {runs_dir()}; start one: zoo train simplecnn --dataset digits")
        return
    click.echo(format_table(["run", "status", "epochs", "dataset", "top-1", "next"], rows))


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


@runs_cmd.command("remove")
@click.argument("run_id")
@click.option("--yes", "-y", is_flag=True, help="Confirm the deletion (required).")
def runs_remove(run_id: str, yes: bool) -> None:
    """Delete a run's folder and checkpoint (its published weights stay in the registry)."""
    from zoo_core.plugin_api import UsageError, runs_dir
    from zoo_train.runs import remove_run

    if not (runs_dir() / run_id).exists():
        remove_run(run_id)  # unknown: the error names the runs there are
    if not yes:
        raise UsageError(f"`zoo runs remove {run_id}` deletes {runs_dir() / run_id}; add --yes to confirm")
    click.echo(f"removed run {run_id} ({remove_run(run_id)})")
