"""How long a run will take, said before it starts: from earlier runs on this machine where there are any,
else from rough figures.

Every finished model leaves its costs in ``$ZOO_CACHE/benchmark/timings.json``, keyed by device (and CPU
threads), model, precision, image size, memory layout and compile mode: the seconds spent outside the
timed steps (process start, imports, build, FLOP count, compilation; only from runs in a process of their
own, as a multi-model run is) and each phase's median step with its batch. An estimate scales that step
to the batch asked for (throughput roughly holds), multiplies it by the warm-up and timed steps
(``auto_iters`` when --iters is not given: ~10 s on a CPU) and adds the overhead.

A model not measured here gets rough figures: ``ROUGH_OVERHEAD_S`` for start-up and build (CPU: 4.5-5 s
measured for simplecnn and resnet18 in their own process on a quiet 2-core CPU; models that import timm take
longer), ``ROUGH_STEP_S`` for an inference step at the device's default batch (CPU: resnet18 at batch 16
took 0.3 s on those 2 cores, densenet121 0.8 s; a training step is taken as 3x), and ``COMPILE_S`` per phase
with --compile. The CUDA figures and COMPILE_S are guesses, not measurements (no GPU was at hand): CUDA
start-up costs seconds, and a batch-256 step of a mid-size CNN tens of milliseconds. Accuracy on a dataset
(--dataset) is not counted. After one run, the history replaces all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_bench.settings import DEFAULTS, BenchSettings
from zoo_bench.timing import auto_iters
from zoo_core.plugin_api import records

ROUGH_OVERHEAD_S = {"cpu": 5.0, "cuda": 10.0}
ROUGH_STEP_S = {"cpu": 0.5, "cuda": 0.05}
TRAIN_STEP_FACTOR = 3.0
COMPILE_S = 40.0
HISTORY_LIMIT = 5000  # entries kept; the oldest go first


@dataclass
class Estimate:
    """Seconds a run should take, and how many of its models were timed here before."""

    seconds: float
    models: int
    measured: int

    def describe(self) -> str:
        """One line: the count, the time, and how the time was made."""
        n = f"{self.models} model{'s' if self.models != 1 else ''}"
        if self.measured == self.models:
            how = "from earlier runs of these models here"
        elif self.measured:
            how = f"{self.measured} from earlier runs here, {self.models - self.measured} at rough figures"
        else:
            how = "at rough figures; later runs estimate from this one"
        return f"{n} to benchmark, about {duration(self.seconds)} ({how})"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def history_path() -> Path:
    from zoo_core.plugin_api import cache_dir

    return cache_dir() / "benchmark" / "timings.json"


_PHASE = records.obj({"step_s": records.number(0, required=True), "batch": records.integer(1, required=True)})
COSTS_SPEC = records.obj({"overhead_s": records.number(0), "infer": _PHASE, "train": _PHASE})


def load_history() -> dict[str, Any]:
    """The recorded costs; a missing or unreadable file is an empty history, and a malformed entry is left out
    (it is only a cache: the next run records it again)."""
    try:
        data = records.load(history_path(), records.obj(max_len=2 * HISTORY_LIMIT), missing={})
    except (OSError, records.RecordError):
        return {}
    history = {}
    for key, costs in data.items():
        try:
            history[key] = records.check(costs, COSTS_SPEC, history_path())
        except records.RecordError:
            continue
    return history


def history_key(
    device: str, threads: int | None, qualified: str, precision: str, img_size: int | None,
    channels_last: bool, compile_mode: str | None,
) -> str:  # fmt: skip
    where = f"{device}x{threads}" if device == "cpu" else device
    return "|".join([where, qualified, precision, str(img_size), "nhwc" if channels_last else "nchw",
                     compile_mode or "eager"])  # fmt: skip


def record_key(record: dict[str, Any]) -> str | None:
    """The history key of a finished record (None for one that never built)."""
    env = record.get("environment") or {}
    if not record.get("qualified") or "device" not in env:
        return None
    return history_key(
        env["device"], env.get("cpu_threads"), record["qualified"], env.get("precision", "fp32"),
        env.get("img_size"), bool(env.get("channels_last")), env.get("compile_mode") if env.get("compile") else None,
    )  # fmt: skip


def remember(record: dict[str, Any], wall_seconds: float, isolated: bool) -> None:
    """Keep a finished model's costs for later estimates; never fails the run."""
    from zoo_core.plugin_api import atomic_write_json

    key = record_key(record)
    if key is None or record.get("error"):
        return
    history = load_history()
    costs: dict[str, Any] = dict(history.pop(key, None) or {})
    timed = 0.0
    for phase in ("infer", "train"):
        result = record.get(phase)
        if result:
            step = result["step_time_ms"] / 1e3
            costs[phase] = {"step_s": step, "batch": result["batch_size"]}
            timed += (result.get("warmup", 0) + result["iters"]) * step
    if isolated:  # in-process runs skip start-up and imports, so they say nothing about a multi-model run
        costs["overhead_s"] = round(max(0.0, wall_seconds - timed), 3)
    history[key] = costs
    for old in list(history)[: max(0, len(history) - HISTORY_LIMIT)]:
        del history[old]
    try:
        atomic_write_json(history_path(), history)
    except OSError:
        pass


def estimate(jobs: list[tuple[str, BenchSettings]]) -> Estimate:
    """The time ``jobs`` should take; names and devices must have been checked (runner.check_run)."""
    import torch

    from zoo_core import resolve
    from zoo_core.plugin_api import resolve_device

    history = load_history()
    total, measured = 0.0, 0
    for spec, asked in jobs:
        device = str(resolve_device(asked.device))
        kind = "cpu" if device == "cpu" else "cuda"
        settings = asked.for_device(device)
        found = resolve(spec, settings.weights or False)
        entry = found.entry
        side = settings.img_size or int((found.weights.preprocessing.input_size if found.weights
                                         else entry.input_size)[-1])  # fmt: skip
        seen = history.get(history_key(
            device, torch.get_num_threads(), entry.qualified, settings.precision, side, settings.channels_last,
            settings.compile_mode if settings.compile else None,
        )) or {}  # fmt: skip
        rough = "overhead_s" not in seen
        seconds = seen.get("overhead_s", ROUGH_OVERHEAD_S[kind])
        batch, warmup = settings.batch_size or 1, settings.warmup or 0  # for_device filled both in
        for phase in settings.modes:
            if phase in seen:
                step = seen[phase]["step_s"] * batch / max(1, seen[phase]["batch"])
            else:
                rough = True
                factor = TRAIN_STEP_FACTOR if phase == "train" else 1.0
                step = ROUGH_STEP_S[kind] * factor * batch / DEFAULTS[kind]["batch_size"]
                seconds += COMPILE_S if settings.compile else 0.0
            seconds += (warmup + (settings.iters or auto_iters(step, device))) * step
        total += seconds
        measured += not rough
    return Estimate(total, len(jobs), measured)
