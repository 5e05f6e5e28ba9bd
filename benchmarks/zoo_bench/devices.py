"""The benchmark's side of devices: devices by name, explicit numerics, synchronisation and out-of-memory
recovery. The device and precision checks are zoo_core.devices', shared with `zoo train` and `zoo eval`."""

from __future__ import annotations

from typing import Any

from zoo_core.devices import resolve_device as resolve


def resolve_device(spec: str) -> str:
    """``auto|cpu|cuda|cuda:N`` -> ``cpu`` or ``cuda:N`` (the runner keys devices by name)."""
    import torch

    device = resolve(spec)
    if device.type == "cpu":
        return "cpu"
    return f"cuda:{torch.cuda.current_device() if device.index is None else device.index}"


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
