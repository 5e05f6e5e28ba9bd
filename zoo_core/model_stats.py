"""Counting a model: parameters and multiply-accumulates (GMACs) at a given input size, on a real model or
one built on the meta device (shapes only). Lazy modules (``nn.LazyLinear`` and kin) learn their shapes
from one dry run at the model's input size (``materialize``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zoo_core.errors import ZooError


class UninitialisedError(ZooError):
    """A model whose lazy modules have not seen an input yet, so that their parameters have no shape."""


def count_params(model: Any) -> int:
    """Parameters of ``model``; an UninitialisedError when lazy modules have not run yet (see ``materialize``)."""
    if has_uninitialised(model):
        raise UninitialisedError(f"{type(model).__name__} has lazy modules that have not seen an input yet, so their "
                                 "parameters have no size: run one forward pass first (zoo_core.model_stats."
                                 "materialize does it at an input size)")  # fmt: skip
    return sum(p.numel() for p in model.parameters())


def has_uninitialised(model: Any) -> bool:
    """Whether any parameter or buffer of ``model`` is a lazy module's, still without a shape."""
    from torch.nn.parameter import is_lazy

    return any(is_lazy(t) for t in (*model.parameters(), *model.buffers()))


def materialize(model: Any, input_size: tuple[int, ...]) -> None:
    """Give lazy modules their shapes: one forward pass of zeros of ``input_size`` (batch 1, eval mode, no
    gradients) on the device the model's tensors are on (the meta device costs nothing). Raises what the
    forward pass raises."""
    import torch

    tensor = next((t for t in (*model.parameters(), *model.buffers())), None)
    device = tensor.device if tensor is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    finally:
        model.train(was_training)
    if has_uninitialised(model):  # a lazy module the forward pass never reached
        raise UninitialisedError(f"{type(model).__name__}: a forward pass at {tuple(input_size)} left lazy "
                                 "modules without a shape")  # fmt: skip


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
    Lazy modules stay uninitialised; built the second way, a model with them keeps its buffers where they
    were made (moving an uninitialised parameter would give it a wrong, empty shape).
    """
    import torch
    from torch import nn
    from torch.nn.parameter import is_lazy

    try:
        with torch.device("meta"):
            return build()
    except Exception:  # noqa: BLE001 - whatever failed is tried the other way; its error is the one raised
        pass
    original = nn.Module.register_parameter

    def register_on_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None and not is_lazy(param) and param.device.type != "meta":
            param = type(param)(param.to("meta"), requires_grad=param.requires_grad)
        original(module, name, param)

    nn.Module.register_parameter = register_on_meta  # type: ignore[method-assign]
    try:
        model = build()
    finally:
        nn.Module.register_parameter = original  # type: ignore[method-assign]
    return model if has_uninitialised(model) else model.to(torch.device("meta"))
