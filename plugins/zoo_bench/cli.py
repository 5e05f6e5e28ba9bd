"""``zoo benchmark``: throughput, latency, memory, compute and accuracy of catalogue models.

A wildcard, a suite or several models first print how many models will run and how long that should
take (``estimate``); more than CONFIRM_ABOVE models ask before starting (--yes skips; without a terminal
to ask on, the run is refused). Ctrl-C stops the run and prints what finished (table, JSON, --csv, --plot),
exit 130.
"""

from __future__ import annotations

import fnmatch
import sys
from typing import Any

import click

from zoo_bench.settings import COMPILE_MODES, MODES, PRESETS, BenchSettings
from zoo_core.plugin_api import PRECISIONS, Choice, UsageError, command_line, deprecated, echo_json, given

# command-line parameter -> BenchSettings field
SETTINGS_PARAMS = {
    "device": "device", "mode": "mode", "batch_size": "batch_size", "img_size": "img_size",
    "precision": "precision", "channels_last": "channels_last", "compile_": "compile",
    "compile_mode": "compile_mode", "warmup": "warmup", "iters": "iters", "weights": "weights",
    "dataset": "dataset", "data_dir": "data_dir", "runtime": "runtime", "int8": "int8",
}  # fmt: skip
CONFIRM_ABOVE = 20
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report Ctrl-C


def _jobs(ctx: click.Context, patterns: list[str], suite: str | None, preset: str | None) -> list[tuple[str, Any]]:
    """(model, settings) pairs: device defaults < suite < the suite's model entry < preset < options."""
    from zoo_bench.runner import expand_models

    options = {field: ctx.params[param] for param, field in SETTINGS_PARAMS.items() if given(ctx, param)}
    preset_values = PRESETS[preset] if preset else {}
    base = {field: ctx.params[param] for param, field in SETTINGS_PARAMS.items()}
    command = command_line(ctx)
    if suite:
        from zoo_bench.suites import load_suite

        suite_settings, models = load_suite(suite)
        if patterns:
            models = [(m, own) for m, own in models if any(fnmatch.fnmatchcase(m, p) for p in patterns)]
            if not models:
                raise UsageError(f"no model of suite '{suite}' matches {' '.join(patterns)}")
        jobs = []
        for model, own in models:
            values = {**base, **suite_settings, **own, **preset_values, **options, "command": command}
            jobs.append((model, BenchSettings.from_dict(values)))
        expand_models([m for m, _ in jobs])  # unknown names fail before anything runs
        return jobs
    if not patterns:
        from zoo_bench.suites import available

        raise UsageError(f"give --model NAME (wildcards allowed) or --suite NAME (one of: {', '.join(available())})")
    settings = BenchSettings.from_dict({**base, **preset_values, **options, "command": command})
    return [(model, settings) for model in expand_models(patterns)]


@click.command("benchmark")
@click.argument("more_models", nargs=-1, metavar="[MODEL]...")
@click.option(
    "-m",
    "--model",
    "models",
    multiple=True,
    metavar="PATTERN",
    help="Model name or wildcard ('resnet*', 'timm:efficientnet_b?'); repeat it or list several.",
)
@click.option("--suite", metavar="NAME|FILE", help="Run a suite from benchmarks/suites (with --model: only those).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--mode", type=Choice(MODES), default="infer", show_default=True)
@click.option("-b", "--batch-size", type=int, help="Batch size  [default: 256 on a GPU, 16 on a CPU]")
@click.option("--img-size", type=int, help="Image side  [default: the model's (or its weights') input size]")
@click.option(
    "--precision",
    type=Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp32 (TF32 off), tf32, or bf16/fp16 autocast.",
)
@click.option("--channels-last", is_flag=True, help="NHWC memory layout for the model and its input.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option(
    "--compile-mode",
    type=Choice(COMPILE_MODES),
    default="default",
    show_default=True,
    help="torch.compile mode; reduce-overhead and max-autotune use CUDA graphs.",
)
@click.option(
    "--preset",
    type=Choice(sorted(PRESETS)),
    help="best: bf16 + channels_last + torch.compile with CUDA graphs; options override it.",
)
@click.option("--warmup", type=int, help="Warm-up steps  [default: 10 on a GPU, 3 on a CPU]")
@click.option("--iters", type=int, help="Timed steps  [default: enough for ~2 s on a GPU (50+), ~10 s on a CPU (8+)]")
@click.option("--weights", metavar="TAG", help="Deprecated: name the weights as MODEL.TAG.")
@click.option("--dataset", metavar="NAME", help="Also measure top-1/top-5 on this dataset's test split.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the dataset lives, if it needs one.")
@click.option("--runtime", type=Choice(("torch", "onnxruntime")), default="torch", show_default=True,
              help="Eager torch, or the weights' verified ONNX export in onnxruntime (made if none is stored).")
@click.option("--int8", is_flag=True, help="With --runtime onnxruntime: the int8 export.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON instead of a table.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write timm-compatible CSV here.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Draw samples/s against top-1 (or GMACs) into this picture file.",
)
@click.option(
    "--isolate/--no-isolate", default=None, help="One process per model  [default: when there are several models]"
)
@click.option("-y", "--yes", is_flag=True, help=f"Run more than {CONFIRM_ABOVE} models without asking.")
@click.pass_context
def benchmark(ctx: click.Context, more_models: tuple[str, ...], models: tuple[str, ...], suite: str | None,
              preset: str | None, as_json: bool, csv_path: str | None, plot_path: str | None,
              isolate: bool | None, yes: bool, **_: Any) -> None:  # fmt: skip
    """Measure samples/s, step time (median, p90), peak memory, GMACs, TFLOP/s and accuracy.

    \b
    zoo benchmark --model densenet121 --device cpu
    zoo benchmark -m 'resnet*' --device cuda --preset best --csv results.csv
    zoo benchmark --suite core --mode both --json > core.json
    zoo benchmark simplecnn.mytag --dataset digits
    """
    from zoo_bench.runner import WILDCARDS, RunInterrupted, check_run, run_benchmarks
    from zoo_core.plugin_api import check_output, check_plot

    patterns = [p for item in (*models, *more_models) for p in item.split(",") if p]
    if ctx.params["weights"]:
        example = patterns[0] if len(patterns) == 1 and not any(c in patterns[0] for c in WILDCARDS) else "MODEL"
        deprecated(f"--weights {ctx.params['weights']}", f"{example}.{ctx.params['weights']}")
    jobs = _jobs(ctx, patterns, suite, preset)
    if csv_path:
        check_output(csv_path, "--csv")
    if plot_path:
        check_plot(plot_path)
    check_run(jobs)
    if suite or len(jobs) > 1 or any(c in p for p in patterns for c in WILDCARDS):
        _announce(jobs, yes)
    try:
        records = run_benchmarks(jobs, isolate=isolate, checked=True)
    except RunInterrupted as stop:
        _report(stop.records, as_json, csv_path, plot_path, partial=True)
        done = len(stop.records)
        click.echo(f"zoo: interrupted: {done} of {len(jobs)} models finished, {stop.left} not run"
                   + (" (shown above)" if done else ""), err=True)  # fmt: skip
        ctx.exit(INTERRUPTED_EXIT)
    _report(records, as_json, csv_path, plot_path)
    if any(r.get("error") for r in records):
        ctx.exit(1)


def stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdin
        return False


def _announce(jobs: list[tuple[str, Any]], yes: bool) -> None:
    """Say how many models will run and for how long; ask first when there are more than CONFIRM_ABOVE."""
    from zoo_bench.estimate import estimate

    plan = estimate(jobs).describe()
    ask = len(jobs) > CONFIRM_ABOVE and not yes
    if ask and not stdin_is_terminal():
        raise UsageError(f"{plan}; more than {CONFIRM_ABOVE} models run only with --yes (no terminal to ask on)")
    click.echo(f"zoo: {plan}", err=True)
    if ask and not click.confirm(f"Run all {len(jobs)}?", default=False, err=True):
        raise UsageError("nothing run; narrow the pattern, or pass --yes to run them all")


def _report(
    records: list[dict[str, Any]], as_json: bool, csv_path: str | None, plot_path: str | None, partial: bool = False
) -> None:
    """Print the records (table or JSON) and write the files asked for; ``partial``: what an interrupted run
    finished, where nothing to draw is no error."""
    from zoo_bench import writers
    from zoo_core.plugin_api import write_output

    if as_json:
        echo_json(records)
    elif records:
        click.echo(writers.table(records))
    if csv_path and records:
        write_output(csv_path, writers.to_csv(records), "--csv")
    measured = any((r.get("infer") or r.get("train")) and not r.get("error") for r in records)
    if plot_path and (measured or not partial):
        from zoo_bench.plot import plot

        axis = plot(records, plot_path)
        click.echo(f"plot ({axis}) written to {plot_path}", err=True)
