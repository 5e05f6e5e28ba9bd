"""Which device and precision a command runs on, checked before any work: `zoo train`, `zoo eval` and
`zoo benchmark` share these rules."""

from __future__ import annotations

import contextlib
import functools
import re
import sys
from typing import Any

from zoo_core.errors import DeviceError, UsageError

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")


def resolve_device(spec: str) -> Any:
    """``auto|cpu|cuda|cuda:N`` -> torch.device (``cuda:N`` with its index); a device that is not here is a
    DeviceError."""
    import torch

    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if not re.fullmatch(r"cuda(:\d+)?", spec):
        raise UsageError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(f"--device {spec}: no CUDA device is available here; use --device cpu or auto")
    device = torch.device(spec)
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"--device {spec}: there are only {torch.cuda.device_count()} CUDA device(s) here")
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


def check_precision(device: Any, precision: str) -> None:
    """Raise DeviceError for a precision this device (torch.device or its name) cannot run natively."""
    import torch

    if precision not in PRECISIONS:
        raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = torch.device(device)
    if device.type == "cpu":
        if precision == "tf32":
            raise DeviceError("precision tf32 needs an NVIDIA GPU (compute capability 8.0+); on CPU use fp32")
        native = {"bf16": torch.ops.mkldnn._is_mkldnn_bf16_supported,
                  "fp16": torch.ops.mkldnn._is_mkldnn_fp16_supported}.get(precision)  # fmt: skip
        # Without AVX512-BF16/-FP16 or AMX torch emulates these types several times slower than fp32:
        # refuse rather than mislead.
        if native is not None and not native():
            raise DeviceError(
                f"precision {precision} is not supported natively by this CPU (it needs AVX512-"
                f"{precision.upper()} or AMX); use --precision fp32"
            )
        return
    # Not torch.cuda.is_bf16_supported(): it asks about the current device, not this one, and says yes to
    # the emulated bf16 of pre-Ampere GPUs, which is slower than fp32.
    major, minor = torch.cuda.get_device_capability(device)
    if precision in ("tf32", "bf16") and major < 8:
        raise DeviceError(
            f"{torch.cuda.get_device_name(device)} has no native {precision} (it needs compute capability 8.0+, "
            f"Ampere or newer; it has {major}.{minor}); use --precision fp16 or fp32"
        )


def autocast(device: Any, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for bf16/fp16 (weights stay fp32); nothing for fp32/tf32."""
    import torch

    if precision in ("bf16", "fp16"):
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(device_type=torch.device(device).type, dtype=dtype)
    return contextlib.nullcontext()


def set_numerics(device: Any, precision: str) -> dict[str, Any]:
    """Set TF32 and cuDNN autotuning explicitly (never rely on torch's defaults) and return what was set."""
    import torch

    on_gpu = torch.device(device).type == "cuda"
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32  # torch's default is True for convolutions: say it
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    if on_gpu:
        torch.backends.cudnn.benchmark = True  # as timm does: fixed shapes, so autotune once
    return {
        "tf32": bool(torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark) if on_gpu else None,
    }


@contextlib.contextmanager
def numerics(device: Any, precision: str) -> Any:
    """``set_numerics`` for the ``with`` block, then the previous settings back."""
    import torch

    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark)  # fmt: skip
    set_numerics(device, precision)
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, precision_setting,
         torch.backends.cudnn.benchmark) = saved  # fmt: skip
        torch.set_float32_matmul_precision(precision_setting)


# glibc's mallopt parameters, and the values zoo sets: no mmap'd blocks, up to 1 GB of free heap kept.
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_MMAP_MAX, _TRIM_THRESHOLD = 0, 1 << 30


@functools.cache
def keep_freed_cpu_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse; whether it could (False off glibc).

    A CPU training or evaluation step frees and allocates the same activation buffers every time. By default
    glibc gives buffers over a few MB back to the kernel when they are freed and faults in fresh zeroed pages
    at the next allocation: 3,000-4,000 page faults a step for SimpleCNN at batch 64, 10-20% of the step on
    two vCPUs. FastCNN's buffers at batch 1024 reach 120 MB, over the largest mmap threshold glibc accepts
    (32 MB), so here every buffer comes from the heap (glibc maps no block of its own) and up to 1 GB of free
    heap is kept, the effect of the jemalloc/tcmalloc preload PyTorch's CPU tuning guide recommends. The
    process then holds on to its peak memory until it exits, as torch's CUDA allocator does on a GPU."""
    import platform

    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
        return bool(mallopt(_M_MMAP_MAX, _MMAP_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False
