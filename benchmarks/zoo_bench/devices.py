"""Which device and precision a benchmark runs on: checks that it can, and sets the numerics explicitly."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from zoo_core.errors import DeviceError, UsageError

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def resolve_device(spec: str) -> str:
    """``auto|cpu|cuda|cuda:N`` -> ``cpu`` or ``cuda:N``; a device that is not here raises DeviceError."""
    import torch

    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not match:
        raise UsageError(f"unknown device '{spec}'; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        built = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA"
        raise DeviceError(
            f"--device {spec}: no CUDA device is available here (torch {torch.__version__}, built with "
            f"{built}); use --device cpu or auto"
        )
    index = int(match.group(1) or torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        raise DeviceError(f"--device {spec}: there are only {torch.cuda.device_count()} CUDA device(s) here")
    return f"cuda:{index}"


def check_precision(device: str, precision: str) -> None:
    """Raise DeviceError for a precision this device cannot run natively."""
    import torch

    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision '{precision}'; use one of {', '.join(PRECISIONS)}")
    if device == "cpu":
        if precision == "tf32":
            raise DeviceError("precision tf32 needs an NVIDIA GPU (compute capability 8.0+); on CPU use fp32")
        native = {"bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported,
                  "fp16": torch.ops.mkldnn._is_mkldnn_fp16_supported}.get(precision)  # fmt: skip
        # Without AVX512-BF16/-FP16 or AMX torch emulates these types about 10x slower than fp32,
        # so a figure measured that way would mislead.
        if native is not None and not native():
            raise DeviceError(
                f"precision {precision} is not supported natively by this CPU (it needs AVX512-"
                f"{precision.upper()} or AMX); use --precision fp32"
            )
        return
    major, minor = torch.cuda.get_device_capability(device)
    name = torch.cuda.get_device_name(device)
    if precision in ("tf32", "bf16") and major < 8:
        raise DeviceError(
            f"precision {precision} needs compute capability 8.0+ (Ampere or newer); {name} has "
            f"{major}.{minor}; use fp16 or fp32"
        )


def set_numerics(device: str, precision: str) -> dict[str, Any]:
    """Set TF32 and cuDNN autotuning explicitly (never rely on torch's defaults) and return what was set."""
    import torch

    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32  # torch's default is True for convolutions: say it
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    if device != "cpu":
        torch.backends.cudnn.benchmark = True  # as timm does: fixed shapes, so autotune once
    return {
        "tf32": bool(torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark) if device != "cpu" else None,
    }


def autocast(device: str, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for bf16/fp16 (weights stay fp32, as in training); nothing for fp32/tf32."""
    import torch

    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=device.split(":")[0], dtype=dtype)
    return contextlib.nullcontext()


def synchronize(device: str) -> None:
    if device != "cpu":
        import torch

        torch.cuda.synchronize(device)


def empty_cache(device: str) -> None:
    """Free what a failed attempt left: its compiled graphs first (CUDA graphs keep their memory in a private
    pool that ``torch.cuda.empty_cache`` cannot release while they live), then its tensors and the cache."""
    import gc
    import sys

    import torch

    if "torch._dynamo" in sys.modules:  # something may have been compiled; don't import it just to reset it
        torch.compiler.reset()
    gc.collect()
    if device != "cpu":
        torch.cuda.empty_cache()


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the allocation failures that a smaller batch can cure (CUDA and CPU allocators)."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):  # torch.OutOfMemoryError only from torch 2.5; the same class
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
