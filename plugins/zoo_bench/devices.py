"""The benchmark's side of devices (by name: ``cpu``, ``cuda:N``): synchronisation and out-of-memory recovery.
The device and precision checks and the numerics are zoo_core.devices', shared with `zoo train` and `zoo eval`."""

from __future__ import annotations


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
