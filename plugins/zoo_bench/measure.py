"""Measuring one model: build it, count it, time inference and training steps, evaluate accuracy.

One record per model. Inference runs under ``torch.inference_mode``; bf16/fp16 are autocast (weights
stay fp32, as in mixed-precision training); TF32 is set explicitly. Each phase warms up, then times
many steps and reports the median (``samples_per_sec`` = batch / median step) beside timm's
definition (``samples_per_sec_mean`` = samples / elapsed). A phase that runs out of memory is retried
with a smaller batch, stepping down with timm's ``decay_batch_step``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from zoo_bench.devices import empty_cache, is_out_of_memory, synchronize
from zoo_bench.memory import PeakMemory, tensor_mb
from zoo_bench.peaks import SOURCE as PEAKS_SOURCE
from zoo_bench.peaks import peak_tflops
from zoo_bench.settings import BenchSettings
from zoo_bench.timing import auto_iters, time_steps
from zoo_core.plugin_api import (
    UsageError,
    ZooError,
    autocast,
    check_precision,
    count_flops,
    count_params,
    environment,
    first_line,
    resolve_device,
    set_numerics,
)

ProgressFn = Callable[[dict[str, Any]], None]
TRAIN_LR = 1e-4  # timm's benchmark.py: SGD, lr 1e-4, momentum 0.9, cross-entropy


def significant(value: float, digits: int = 6) -> float:
    return float(f"{value:.{digits}g}")


@dataclass
class Built:
    """A model ready to measure, with what was resolved to build it."""

    model: Any
    qualified: str
    tag: str | None
    input_shape: tuple[int, int, int]
    num_classes: int
    flops: int  # of one sample's forward pass at input_shape
    params: int | None = None  # of the eager model, where ``model`` is an export that has no parameters


def build(spec: str, settings: BenchSettings, device: str) -> Built:
    """Build ``[plugin:]name[.tag]`` (``settings.weights`` picks the tag) for ``settings.img_size``."""
    from zoo_core import create_model, resolve

    found = resolve(spec, settings.weights or False)
    entry, tag = found.entry, found.tag
    # weights record the input they were trained for; the architecture's default otherwise
    default_shape = tuple(found.weights.preprocessing.input_size if found.weights else entry.input_size)
    shape = (
        int(default_shape[0]),
        settings.img_size or int(default_shape[1]),
        settings.img_size or int(default_shape[2]),
    )
    model = create_model(entry.qualified, pretrained=tag or False)
    try:
        flops = _probe(model, shape, device, settings.channels_last)
    except (RuntimeError, ValueError) as first:
        if shape == default_shape or not entry.takes_input_size:
            raise
        try:  # a model whose classifier follows its input size (its plugin says so) is built for this one
            model = create_model(entry.qualified, pretrained=tag or False, input_size=shape[1:])
            flops = _probe(model, shape, device, settings.channels_last)
        except (RuntimeError, ValueError, TypeError):
            reason = first_line(first)
            raise UsageError(f"{entry.qualified} does not run at --img-size {shape[1]}: {reason}") from None
    classes = int(model.zoo_spec["num_classes"])
    params = count_params(model)
    if settings.runtime != "torch":
        model = _exported(found, model, settings, shape, device)
    return Built(model, entry.qualified, tag, shape, classes, flops, params)


def _exported(found: Any, model: Any, settings: BenchSettings, shape: tuple[int, ...], device: str) -> Any:
    """The verified ONNX export of the weights (zoo_export), made if none is stored, as a module."""
    from zoo_export.runtime import check_runtime
    from zoo_export.verified import runtime_model

    check_runtime(settings.runtime, settings.int8)
    if found.weights is None:
        raise UsageError(f"--runtime onnxruntime runs a verified export of trained weights: name them as "
                         f"{found.display}.TAG")  # fmt: skip
    if tuple(found.weights.preprocessing.input_size) != tuple(shape):
        raise UsageError("--runtime onnxruntime runs the export at the weights' own input size; drop --img-size")
    return runtime_model(found.ref, int8=settings.int8, default_calib=settings.dataset, device=device, model=model)


def _probe(model: Any, shape: tuple[int, int, int], device: str, channels_last: bool) -> int:
    """Move the model to the device and count one sample's forward FLOPs (this also checks it runs)."""
    import torch

    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return count_flops(model, shape)


def train_flops(model: Any, shape: tuple[int, int, int], device: str) -> int:
    """FLOPs of one sample's training step (forward + backward), counted on a batch of two."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    x = torch.zeros(2, *shape, device=device)
    with FlopCounterMode(display=False) as counter:
        logits(model(x)).float().logsumexp(dim=1).sum().backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops()) // 2


def logits(output: Any) -> Any:
    """The class scores of a model's output (inception's training output is a tuple with aux logits)."""
    if isinstance(output, (tuple, list)):
        return output[0]
    return getattr(output, "logits", output)


class _Reporter:
    """Progress events for one phase, at most five a second so that reporting costs nothing."""

    def __init__(self, progress: ProgressFn | None, model: str, phase: str) -> None:
        self.progress, self.model, self.phase = progress, model, phase
        self.last = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        if done < total and now - self.last < 0.2:
            return
        self.last = now
        self.progress({"model": self.model, "phase": self.phase, "stage": stage, "done": done, "total": total})


def _compiled(model: Any, settings: BenchSettings) -> Any:
    if not settings.compile:
        return model
    import torch

    torch.compiler.reset()  # a fresh cache per phase and per retried batch size
    return torch.compile(model, mode=None if settings.compile_mode == "default" else settings.compile_mode)


def _uses_cudagraphs(settings: BenchSettings) -> bool:
    return settings.compile and settings.compile_mode in ("reduce-overhead", "max-autotune")


def _loop(
    step: Callable[[], Any], settings: BenchSettings, batch: int, report: _Reporter, meter: PeakMemory
) -> dict[str, Any]:
    """Warm up, then time ``settings.iters`` steps (or as many as fill the device's time budget)."""
    device = settings.device
    warm: list[float] = []
    for i in range(settings.warmup or 0):
        t0 = time.perf_counter()
        step()
        synchronize(device)
        warm.append(time.perf_counter() - t0)
        report("warmup", i + 1, settings.warmup or 0)
    iters = settings.iters or auto_iters(min(warm[-2:]) if warm else math.inf, device)
    meter.start()
    timing = time_steps(step, iters, device, lambda i: report("timed", i + 1, iters))
    result = timing.summary(batch)
    result["peak_mem_mb"] = meter.peak_mb()
    result["peak_mem_method"] = meter.method
    result["warmup"] = len(warm)
    return result


def _infer_phase(built: Built, settings: BenchSettings, batch: int, report: _Reporter, meter: PeakMemory) -> dict:
    import torch

    meter.begin()
    x = torch.randn(batch, *built.input_shape, device=settings.device)
    if settings.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    built.model.eval()
    fn = _compiled(built.model, settings)
    with torch.inference_mode(), autocast(settings.device, settings.precision):
        return _loop(lambda: fn(x), settings, batch, report, meter)


def _train_phase(built: Built, settings: BenchSettings, batch: int, report: _Reporter, meter: PeakMemory) -> dict:
    import torch

    model = built.model
    meter.begin()
    x = torch.randn(batch, *built.input_shape, device=settings.device)
    if settings.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, built.num_classes, (batch,), device=settings.device)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=TRAIN_LR, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    fn = _compiled(model, settings)
    mark_step = torch.compiler.cudagraph_mark_step_begin if _uses_cudagraphs(settings) else None
    precision, device = settings.precision, settings.device

    def step() -> None:
        if mark_step is not None:
            mark_step()
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = loss_fn(logits(fn(x)), y)
        loss.backward()
        optimizer.step()

    try:
        return _loop(step, settings, batch, report, meter)
    finally:
        model.zero_grad(set_to_none=True)


def run_with_batch_decay(run: Callable[[int], dict], batch_size: int, device: str) -> dict[str, Any]:
    """``run(batch)``, retried with smaller batches while it runs out of memory (timm's policy)."""
    from timm.utils import decay_batch_step

    batch, retries, last = batch_size, 0, ""
    while batch >= 1:
        try:
            result = run(batch)
        except Exception as e:  # noqa: BLE001 - only out-of-memory errors are retried
            if not is_out_of_memory(e):
                raise
            last = first_line(e, limit=200, whole=True)
        else:
            result.update(batch_size=batch, batch_size_requested=batch_size, oom_retries=retries)
            return result
        empty_cache(device)  # after the except block, so the failed attempt's tensors are freed
        batch, retries = decay_batch_step(batch), retries + 1
    raise MemoryError(f"out of memory at every batch size from {batch_size} down to 1 ({last})")


def achieved(
    flops_per_sample: float, samples_per_sec: float, device: str, device_name: str, precision: str
) -> tuple[float, float | None, float | None]:
    """(achieved TFLOP/s, the device's datasheet peak for the precision or None, their ratio or None)."""
    tflops = flops_per_sample * samples_per_sec / 1e12
    peak = peak_tflops(device_name, precision) if device != "cpu" else None
    return tflops, peak, (tflops / peak if peak else None)


def _finish(phase: dict[str, Any], flops_per_sample: int, env: dict[str, Any], precision: str) -> dict[str, Any]:
    """Add achieved TFLOP/s and the share of the device's peak; round floats to 6 significant digits."""
    phase["flops_per_sample"] = flops_per_sample
    phase["tflops"], phase["peak_tflops"], phase["peak_share"] = achieved(
        flops_per_sample, phase["samples_per_sec"], env["device"], env["device_name"], precision
    )
    return {k: significant(v) if isinstance(v, float) else v for k, v in phase.items()}


def measure(spec: str, settings: BenchSettings, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Benchmark one catalogue model (``[plugin:]name[.tag]``) and return its record.

    Errors a user caused (unknown model, device, precision) raise ZooError; a model that fails while
    running leaves its message in ``record["error"]`` and keeps the phases that finished.
    """
    device = str(resolve_device(settings.device))  # the runner keys devices by name: cpu, cuda:N
    check_precision(device, settings.precision)
    settings = settings.for_device(device)
    env = environment(device)
    env.update(set_numerics(device, settings.precision))
    env.update(
        precision=settings.precision, autocast=settings.precision in ("bf16", "fp16"),
        channels_last=settings.channels_last, compile=settings.compile,
        compile_mode=settings.compile_mode if settings.compile else None, batch_size=settings.batch_size,
        mode=settings.mode, command=settings.command, peak_tflops_source=PEAKS_SOURCE,
    )  # fmt: skip
    record: dict[str, Any] = {"model": spec, "environment": env, "error": None}
    current = "build"
    try:
        if progress is not None:
            progress({"model": spec, "phase": "build", "stage": "build", "done": 0, "total": 1})
        built = build(spec, settings, device)
        env["img_size"] = built.input_shape[-1]
        runtime = getattr(built.model, "zoo_runtime", None) or {"runtime": "torch", "provider": None}
        env.update(runtime=runtime["runtime"], provider=runtime.get("provider"), export=runtime.get("export"))
        record.update(
            qualified=built.qualified,
            tag=built.tag,
            param_count=built.params if built.params is not None else count_params(built.model),
            input_size=list(built.input_shape),
            gmacs=significant(built.flops / 2 / 1e9),
        )
        meter = PeakMemory(device, tensor_mb(built.model), cuda_graphs=_uses_cudagraphs(settings))
        if "infer" in settings.modes:
            current = "infer"
            report = _Reporter(progress, spec, "infer")
            phase = run_with_batch_decay(
                lambda b: _infer_phase(built, settings, b, report, meter), settings.batch_size, device
            )
            record["infer"] = _finish(phase, built.flops, env, settings.precision)
        if settings.dataset:
            current = "accuracy"
            from zoo_bench.accuracy import evaluate

            record["accuracy"] = evaluate(built, settings, _Reporter(progress, spec, "accuracy"))
        if "train" in settings.modes:
            current = "train"
            flops = train_flops(built.model, built.input_shape, device)
            report = _Reporter(progress, spec, "train")
            phase = run_with_batch_decay(
                lambda b: _train_phase(built, settings, b, report, meter), settings.batch_size, device
            )
            record["train"] = _finish(phase, flops, env, settings.precision)
    except ZooError:
        raise
    except Exception as e:  # noqa: BLE001 - a model that fails is reported, not fatal to the run
        record["error"] = f"{current}: {first_line(e, typed=True, limit=300, whole=True)}"
    record["unstable"] = any((record.get(phase) or {}).get("unstable") for phase in ("infer", "train"))
    return record
