"""Benchmarking a list of models: name checks, one process per model, progress, registry records."""

from __future__ import annotations

import time
from typing import Any

from zoo_bench.settings import BenchSettings
from zoo_core import UsageError, parse, resolve

WILDCARDS = "*?["


def expand_models(patterns: list[str]) -> list[str]:
    """Wildcards -> matching catalogue names; exact names are checked (UnknownNameError suggests)."""
    from zoo_core.plugin_api import get_catalogue

    catalogue = get_catalogue()
    found: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in WILDCARDS):
            entries = catalogue.find("model", [pattern])
            if not entries:
                raise UsageError(f"no model matches '{pattern}'; see `zoo list`")
            found += [catalogue.display_name("model", e) for e in entries]
        else:  # any name form; an hf-hub: name is fetched once here, and the workers get its catalogue name
            resolved = resolve(pattern)
            found.append(resolved.display if parse(pattern).is_source else pattern)
    return list(dict.fromkeys(found))


def check_run(jobs: list[tuple[str, BenchSettings]]) -> None:
    """Fail before anything runs on a device, precision or dataset request that cannot work."""
    from zoo_core.plugin_api import check_precision, resolve_device

    for spec, settings in jobs:
        device = resolve_device(settings.device)
        check_precision(device, settings.precision)
        if settings.dataset and resolve(spec, settings.weights or False).tag is None:
            raise UsageError(f"--dataset measures the accuracy of trained weights: name them as {spec}.TAG")
        if settings.dataset:
            from zoo_core.plugin_api import get_catalogue

            get_catalogue().get("dataset", settings.dataset)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run: carries the records of the models that finished and how many did not."""

    def __init__(self, records: list[dict[str, Any]], left: int) -> None:
        super().__init__(f"interrupted with {len(records)} models finished and {left} not")
        self.records, self.left = records, left


def run_benchmarks(
    jobs: list[tuple[str, BenchSettings]], isolate: bool | None = None, progress: bool | None = None,
    checked: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """Benchmark each (model, settings) and return one record per model.

    ``isolate`` (default: when there is more than one model) runs each in its own process. Records
    with an accuracy of weights in the local registry are also written into that entry's metrics.
    Ctrl-C raises RunInterrupted with the records so far; ``checked`` skips check_run, done already.
    """
    from zoo_bench.estimate import remember
    from zoo_bench.progress import ProgressDisplay

    if not checked:
        check_run(jobs)
    isolate = len(jobs) > 1 if isolate is None else isolate
    records: list[dict[str, Any]] = []
    try:
        with ProgressDisplay(len(jobs), progress) as display:
            for spec, settings in jobs:
                started = time.perf_counter()
                if isolate:
                    from zoo_bench.worker import run_in_subprocess

                    record = run_in_subprocess(spec, settings, display.update)
                else:
                    from zoo_bench.measure import measure

                    record = measure(spec, settings, display.update)
                if record.get("accuracy") and record.get("tag"):
                    record["registry"] = record_in_registry(record)
                records.append(record)
                seconds = time.perf_counter() - started
                remember(record, seconds, isolate)
                display.model_done(record, seconds)
    except KeyboardInterrupt:
        raise RunInterrupted(records, len(jobs) - len(records)) from None
    return records


def registry_metrics(record: dict[str, Any]) -> dict[str, Any]:
    """What a benchmark adds to a registry entry's metrics: accuracy and speed, keyed by device and
    precision so that runs on other devices are kept beside it."""
    env = record["environment"]
    infer = record.get("infer") or {}
    summary = {
        **record["accuracy"],
        "infer_samples_per_sec": infer.get("samples_per_sec"),
        "infer_step_time_ms": infer.get("step_time_ms"),
        "infer_batch_size": infer.get("batch_size"),
        "img_size": env.get("img_size"),
        "gmacs": record.get("gmacs"),
        "environment": {k: env.get(k) for k in (
            "device_name", "precision", "tf32", "channels_last", "compile", "torch", "cuda", "cudnn", "date",
            "command",
        )},
    }  # fmt: skip
    return {"benchmark": {f"{env['device_name']} {env['precision']}": summary}}


def record_in_registry(record: dict[str, Any]) -> str:
    """Merge the record's accuracy and speed into its local registry entry; say what happened."""
    from zoo_core.plugin_api import UnknownNameError

    try:
        from zoo_registry.store import update_metrics
    except ImportError:
        return "not recorded: the registry is not installed"
    try:
        update_metrics(record["qualified"], record["tag"], registry_metrics(record))
    except UnknownNameError:
        return "not recorded: not an entry of the local registry"
    except OSError as e:  # the measurement stands; say why the entry did not get it
        return f"not recorded: {e}"
    return "recorded"
