"""``zoo benchmark``: throughput, latency, memory, compute and accuracy of catalogue models."""

from __future__ import annotations

import fnmatch
from typing import Any

import click

from zoo_bench.settings import COMPILE_MODES, MODES, PRESETS, BenchSettings
from zoo_core.console import command_line, echo_json, given
from zoo_core.devices import PRECISIONS
from zoo_core.errors import UsageError

# command-line parameter -> BenchSettings field
SETTINGS_PARAMS = {
    "device": "device", "mode": "mode", "batch_size": "batch_size", "img_size": "img_size",
    "precision": "precision", "channels_last": "channels_last", "compile_": "compile",
    "compile_mode": "compile_mode", "warmup": "warmup", "iters": "iters", "weights": "weights",
    "dataset": "dataset", "data_dir": "data_dir",
}  # fmt: skip


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
@click.option("--mode", type=click.Choice(MODES), default="infer", show_default=True)
@click.option("-b", "--batch-size", type=int, help="Batch size  [default: 256 on a GPU, 16 on a CPU]")
@click.option("--img-size", type=int, help="Image side  [default: the model's (or its weights') input size]")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="fp32",
    show_default=True,
    help="fp32 (TF32 off), tf32, or bf16/fp16 autocast.",
)
@click.option("--channels-last", is_flag=True, help="NHWC memory layout for the model and its input.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model.")
@click.option(
    "--compile-mode",
    type=click.Choice(COMPILE_MODES),
    default="default",
    show_default=True,
    help="torch.compile mode; reduce-overhead and max-autotune use CUDA graphs.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    help="best: bf16 + channels_last + torch.compile with CUDA graphs; options override it.",
)
@click.option("--warmup", type=int, help="Warm-up steps  [default: 10 on a GPU, 3 on a CPU]")
@click.option("--iters", type=int, help="Timed steps  [default: enough for ~2 s on a GPU (50+), ~10 s on a CPU (8+)]")
@click.option("--weights", metavar="TAG", help="Pretrained tag to load (needed for --dataset).")
@click.option("--dataset", metavar="NAME", help="Also measure top-1/top-5 on this dataset's test split.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the dataset lives, if it needs one.")
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
@click.pass_context
def benchmark(ctx: click.Context, more_models: tuple[str, ...], models: tuple[str, ...], suite: str | None,
              preset: str | None, as_json: bool, csv_path: str | None, plot_path: str | None,
              isolate: bool | None, **_: Any) -> None:  # fmt: skip
    """Measure samples/s, step time (median, p90), peak memory, GMACs, TFLOP/s and accuracy.

    \b
    zoo benchmark --model densenet121 --device cpu
    zoo benchmark -m 'resnet*' --device cuda --preset best --csv results.csv
    zoo benchmark --suite core --mode both --json > core.json
    zoo benchmark simplecnn --weights mytag --dataset digits
    """
    from zoo_bench import writers
    from zoo_bench.runner import run_benchmarks
    from zoo_core.output import check_output, check_plot, write_output

    patterns = [p for item in (*models, *more_models) for p in item.split(",") if p]
    jobs = _jobs(ctx, patterns, suite, preset)
    if csv_path:
        check_output(csv_path, "--csv")
    if plot_path:
        check_plot(plot_path)
    records = run_benchmarks(jobs, isolate=isolate)
    if as_json:
        echo_json(records)
    else:
        click.echo(writers.table(records))
    if csv_path:
        write_output(csv_path, writers.to_csv(records), "--csv")
    if plot_path:
        from zoo_bench.plot import plot

        axis = plot(records, plot_path)
        click.echo(f"plot ({axis}) written to {plot_path}", err=True)
    if any(r.get("error") for r in records):
        ctx.exit(1)
