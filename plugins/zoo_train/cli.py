"""``zoo train``, ``zoo eval`` and ``zoo datasets``: parse, call zoo_train.training / evaluation, print."""

from __future__ import annotations

import shlex
from typing import Any

import click

from zoo_core.console import command_line, echo_json
from zoo_core.devices import PRECISIONS
from zoo_core.trainers import Reporter
from zoo_train.pipeline import AUGMENTS
from zoo_train.training import OPTIMIZERS, SCHEDULES


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


def _display_ref(model: str, tag: str) -> str:
    from zoo_core.plugins import get_catalogue

    return get_catalogue().display_ref(model, tag)


@click.command("train")
@click.argument("model")
@click.option("--dataset", "-d", required=True, help="A dataset from `zoo datasets`.")
@click.option("--data-dir", help="The dataset's folder (ImageFolder layout: train/<class>/*, test/<class>/*).")
@click.option("--data-opt", "data_opts", multiple=True, metavar="KEY=VALUE",
              help="A dataset option, e.g. image_size=28 or channels=3 (repeatable).")  # fmt: skip
@click.option("--epochs", type=int, help="Epochs to train (default 10).")
@click.option("--batch-size", type=int, help="Images per step (default 64).")
@click.option("--lr", type=float, help="Learning rate (default 1e-3).")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="adam (default) or sgd (momentum 0.9).")
@click.option("--weight-decay", type=float, help="Weight decay (default 0).")
@click.option("--schedule", type=click.Choice(SCHEDULES),
              help="Learning rate: constant (default, the tutorial's) or cosine decay to 0 over the run.")
@click.option("--augment", type=click.Choice(AUGMENTS),
              help="none (default); standard: random crop padded 4 px (at 32x32) + flip; strong: + rotation 15 deg, "
              "colour jitter 0.2.")  # fmt: skip
@click.option("--device", help="auto (default), cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(PRECISIONS), help="fp32 (default) or bf16 autocast.")
@click.option("--channels-last/--no-channels-last", default=None, help="Memory format (default: channels_last).")
@click.option("--pretrained", metavar="TAG", help="Start from these weights; the classifier is replaced.")
@click.option("--freeze-backbone", is_flag=True, default=None, help="Train only the new classifier.")
@click.option("--img-size", type=int, help="Resize images to this size on the device (default: the data's).")
@click.option("--val-fraction", type=float,
              help="Share of train held out for validation (default 0.1; 0 validates on the test split).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--tag", help="Publish as MODEL.TAG (default: <dataset>-<date>); also names the run.")
@click.option("--trainer", help="A trainer plugin (default: classifier).")
@click.option("--resume", is_flag=True, help="Continue the unfinished run (this --tag, else the newest).")
@click.option("--overwrite", is_flag=True, default=None, help="Replace a published tag or an unfinished run.")
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
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def train_cmd(ctx: click.Context, model: str, dataset: str, data_opts: tuple[str, ...], resume: bool, as_json: bool,
              nproc_per_node: int | None, nnodes: int | None, node_rank: int | None, rdzv_endpoint: str | None,
              dist_timeout: float | None, **options: Any) -> int | None:  # fmt: skip
    """Train MODEL on a dataset, then evaluate it and publish the weights as MODEL.TAG."""
    import os

    from zoo_core.datasets import parse_options
    from zoo_core.distributed import joined
    from zoo_train.launch import COMMAND_ENV, LAUNCH_OPTIONS, Launch
    from zoo_train.training import train

    if data_opts:
        options["data_options"] = parse_options(data_opts)
    launch = Launch(nproc_per_node, nnodes, node_rank, rdzv_endpoint)
    if launch.requested:
        return _launch(ctx, launch, model, dataset, options, LAUNCH_OPTIONS)
    command = os.environ.get(COMMAND_ENV) or command_line(ctx)
    with joined(dist_timeout) as dist:
        reporter = ConsoleReporter() if dist.is_main else Reporter()
        try:
            outcome = train(model, dataset, resume=resume, reporter=reporter, command=command, distributed=dist,
                            **options)  # fmt: skip
        finally:
            reporter.close()
    if not dist.is_main:
        return None  # rank 0 prints the result
    m = outcome.metrics
    ref = _display_ref(outcome.entry.model_name, outcome.entry.tag)
    if as_json:
        echo_json({"run_id": outcome.run_id, "published": outcome.entry.ref, "path": str(outcome.entry.path),
                   "metrics": m, "training": outcome.training})  # fmt: skip
        return
    click.echo(f"published {ref}  top-1 {m['top1']}%  top-5 {m['top5']}%  "
               f"({m['dataset']} {m['split']}, {m['num_samples']} images)")  # fmt: skip
    click.echo(f"  weights {outcome.entry.path}")
    data_dir = f" --data-dir {shlex.quote(options['data_dir'])}" if options.get("data_dir") else ""
    click.echo(f"  evaluate: zoo eval {ref} --dataset {dataset}{data_dir}")


def _launch(ctx: click.Context, launch: Any, model: str, dataset: str, options: dict[str, Any],
            launch_options: tuple[str, ...]) -> int:  # fmt: skip
    """Check what can be checked here, then run this very command under torchrun."""
    from zoo_core.console import command_args
    from zoo_core.distributed import Distributed
    from zoo_core.plugins import get_catalogue
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
@click.argument("model")
@click.option("--dataset", "-d", required=True, help="A dataset from `zoo datasets`.")
@click.option("--data-dir", help="The dataset's folder.")
@click.option("--data-opt", "data_opts", multiple=True, metavar="KEY=VALUE", help="A dataset option (repeatable).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="fp32", show_default=True)
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the confusion matrix picture here (.png).")
def eval_cmd(model: str, dataset: str, data_dir: str | None, data_opts: tuple[str, ...], device: str,
             precision: str, batch_size: int, as_json: bool, plot: str | None) -> None:  # fmt: skip
    """Top-1, top-5 and per-class accuracy of MODEL[.TAG] on a dataset's test split."""
    from zoo_core.datasets import parse_options
    from zoo_core.errors import UsageError
    from zoo_train.evaluation import evaluate_published, plot_confusion

    if batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if plot:  # a bad --plot fails now, not after the evaluation
        from zoo_core.output import check_plot

        check_plot(plot)
    report = evaluate_published(model, dataset, data_dir, device=device, batch_size=batch_size,
                                precision=precision, data_options=parse_options(data_opts))  # fmt: skip
    if plot:
        report["plot"] = str(plot_confusion(report, plot))
    if as_json:
        echo_json(report)
        return
    from zoo_core.table import format_table

    ref = _display_ref(report["model"], report["tag"])
    click.echo(f"{ref} on {report['dataset']} {report['split']} ({report['num_samples']} images, "
               f"{report['environment']['device']})")  # fmt: skip
    click.echo(f"  top-1 {report['top1']}%   top-{report['topk']} {report['top5']}%")
    rows = [(name, f"{acc:.2f}") for name, acc in report["per_class_top1"].items()]
    click.echo(format_table(["class", "top-1 %"], rows))
    if plot:
        click.echo(f"confusion matrix: {report['plot']}")


@click.command("datasets")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def datasets_cmd(as_json: bool) -> None:
    """List the datasets the plugins provide."""
    from zoo_core.datasets import list_datasets

    rows = list_datasets()
    if as_json:
        echo_json(rows)
        return
    from zoo_core.table import format_table

    click.echo(format_table(
        ["name", "plugin", "classes", "input", "needs --data-dir", "description"],
        [(r["name"] if r["default"] else r["qualified"], r["plugin"], r.get("num_classes", ""),
          "x".join(map(str, r["input_size"])) if r.get("input_size") else "any",
          "yes" if r.get("needs_data_dir") else "", r.get("description", "")) for r in rows],
    ))  # fmt: skip
