"""Counting a model: parameters and multiply-accumulates (GMACs) at a given input size, on a real model or
one built on the meta device (shapes only)."""

from __future__ import annotations

from collections.abc import Callable
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
        # On the meta device autograd costs nothing, and some models' hooks need it (timm's PiT).
        with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(device.type == "meta"):
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def count_gmacs(model: Any, input_size: tuple[int, ...]) -> float:
    """Multiply-accumulates of one image, in billions (the unit timm's tables use)."""
    return count_flops(model, input_size) / 2 / 1e9


def build_on_meta(build: Callable[[], Any]) -> Any:
    """``build()`` with every parameter and buffer on the meta device: shapes without memory or weights.

    First with the meta device as the default; a constructor that reads back a tensor it computed (RegNet's
    widths, ``.tolist()``) cannot run so, and is built again with only its parameters moved to the meta
    device as they are registered (no weight is ever initialised in memory) and its buffers once it is built.
    """
    import torch
    from torch import nn

    try:
        with torch.device("meta"):
            return build()
    except Exception:  # noqa: BLE001 - whatever failed is tried the other way; its error is the one raised
        pass
    original = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and param.device.type != "meta":
            param = type(param)(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
    try:
        model = build()
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]
    return model.to(torch.device("meta"))
