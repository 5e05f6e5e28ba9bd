"""Feature maps of any catalogue model: which layers have a spatial output (found by running the model once),
and ``features_only`` extractors for models whose library has none (timm's own is used where it exists;
torchvision's ``create_feature_extractor`` elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SpatialLayer:
    """A module whose output is a feature map: its channels, its stride against the input, its layout."""

    name: str
    channels: int
    reduction: int
    layout: str  # "NCHW" or "NHWC"
    size: tuple[int, int]


def _stride(out: int, inp: int) -> int | None:
    """The integer stride that takes ``inp`` pixels to ``out`` (ceil or floor rounding), or None."""
    if out < 1 or out > inp:
        return None
    stride = round(inp / out)
    return stride if stride >= 1 and (inp // stride == out or -(-inp // stride) == out) else None


def _layout(shape: tuple[int, ...], size: tuple[int, int]) -> tuple[str, int, tuple[int, int], int] | None:
    """(layout, channels, (h, w), stride) of a 4-D output for an input of ``size``, or None if it is not a map."""
    candidates = (("NCHW", shape[1], (shape[2], shape[3])), ("NHWC", shape[3], (shape[1], shape[2])))
    for layout, channels, (h, w) in candidates:
        sh, sw = _stride(h, size[0]), _stride(w, size[1])
        if sh is not None and sh == sw and h * w > 1:
            return layout, int(channels), (int(h), int(w)), sh
    return None


def spatial_layers(model: Any, input_size: tuple[int, int, int]) -> list[SpatialLayer]:
    """Every named module whose output is a feature map (N x C x H x W, or N x H x W x C), in the order their
    forward passes finish, found by running the model once on zeros of ``input_size`` (no gradients)."""
    import torch

    seen: list[SpatialLayer] = []
    hooks = []

    def record(name: str) -> Any:
        def hook(module: Any, args: Any, output: Any) -> None:
            if isinstance(output, torch.Tensor) and output.dim() == 4:
                found = _layout(tuple(output.shape), input_size[1:])
                if found is not None:
                    layout, channels, size, stride = found
                    seen.append(SpatialLayer(name, channels, stride, layout, size))

        return hook

    for name, module in model.named_modules():
        if name:
            hooks.append(module.register_forward_hook(record(name)))
    was_training = model.training
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return seen


def stage_outputs(layers: list[SpatialLayer]) -> list[SpatialLayer]:
    """The last layer to finish at each resolution, largest first: a CNN's stages (timm's ``feature_info``)."""
    last: dict[tuple[int, int], SpatialLayer] = {}
    for layer in layers:
        last[layer.size] = layer
    return sorted(last.values(), key=lambda layer: (layer.reduction, layer.name))


def features_only(model: Any, input_size: tuple[int, int, int], out_indices: list[int] | None = None) -> Any:
    """A module returning the list of stage feature maps of ``model`` (torchvision's ``create_feature_extractor``
    on the stage modules found by ``stage_outputs``); ``feature_info`` lists each one's channels and stride."""
    import torch.nn as nn
    from torchvision.models.feature_extraction import create_feature_extractor

    from zoo_core.errors import UsageError, first_line

    stages = stage_outputs(spatial_layers(model, input_size))
    if out_indices is not None:
        stages = [stages[i] for i in out_indices]
    if not stages:
        raise UsageError(f"{type(model).__name__} has no layer with a spatial output: no features to extract")
    try:
        extractor = create_feature_extractor(model, return_nodes={s.name: s.name for s in stages})
    except Exception as e:  # noqa: BLE001 - a model torch.fx cannot trace
        raise UsageError(f"cannot extract features from {type(model).__name__}: {first_line(e, typed=True)}") from None

    class Features(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = extractor
            self.feature_info = [{"module": s.name, "num_chs": s.channels, "reduction": s.reduction} for s in stages]

        def forward(self, x: Any) -> list[Any]:
            return list(self.body(x).values())

    return Features()
