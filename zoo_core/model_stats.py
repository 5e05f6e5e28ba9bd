"""Counting a model: parameters and multiply-accumulates (GMACs) at a given input size."""

from __future__ import annotations

from typing import Any


def count_params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: Any, input_size: tuple[int, ...], batch_size: int = 1) -> int:
    """FLOPs of one forward pass, counted by ``torch.utils.flop_counter`` (2 FLOPs per MAC)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    x = torch.zeros(batch_size, *input_size, device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def count_gmacs(model: Any, input_size: tuple[int, ...]) -> float:
    """Multiply-accumulates of one image, in billions (the unit timm's tables use)."""
    return count_flops(model, input_size) / 2 / 1e9
