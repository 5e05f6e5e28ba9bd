"""Feature maps: what one layer of a model computes from a picture, read with a forward hook (removed after)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoo_vision.image_model import ImageModel, as_image, load_model

MAX_MAPS = 64


@dataclass
class Activations:
    """One layer's feature maps for one picture."""

    maps: Any  # C x h x w tensor (NHWC layers transposed), as the layer computed it
    layer: str
    module_type: str
    reduction: int  # the layer's stride against the model input
    layout: str  # the layer's own layout: NCHW or NHWC

    def to_dict(self, shown: int | None = None) -> dict[str, Any]:
        maps = self.maps.float()
        return {
            "layer": self.layer, "type": self.module_type, "channels": int(maps.shape[0]),
            "size": list(maps.shape[1:]), "stride": self.reduction, "layout": self.layout,
            "shown": min(shown or MAX_MAPS, int(maps.shape[0])),
            "min": float(maps.min()), "max": float(maps.max()), "mean": float(maps.mean()),
        }  # fmt: skip

    def figure(self, max_maps: int = MAX_MAPS) -> Any:
        """The first ``max_maps`` maps in a grid, each on its own colour scale (a matplotlib Figure)."""
        from zoo_vision.pictures import grid_pixels, pixel_figure

        return pixel_figure(grid_pixels(self.maps[:max_maps].float().cpu().numpy()))


def first_conv_layer(model: ImageModel) -> Any:
    """The first convolution with a feature-map output, else the first layer with one."""
    import torch

    from zoo_core.plugin_api import UsageError

    layers = model.layers()
    if not layers:
        raise UsageError(f"{model.name} has no layer with a feature-map output (N x C x H x W or N x H x W x C)")
    for layer in layers:
        if isinstance(model.module(layer.name), torch.nn.Conv2d):
            return layer
    return layers[0]


def activations(
    model: str | Any, image: Any, *, layer: str | None = None, device: str | Any | None = None,
    img_size: int | None = None,
) -> Activations:  # fmt: skip
    """The feature maps of ``layer`` (default: the first convolution) for ``image`` (a path or PIL image).
    ``model`` is a name, an ``ImageModel`` or a module."""
    import torch

    picture = as_image(image)  # a picture that cannot be read fails before the model loads
    loaded = load_model(model, device=device, img_size=img_size)
    chosen = loaded.layer(layer) if layer else first_conv_layer(loaded)
    inputs = loaded.batch([picture])
    captured: list[Any] = []

    def keep(_module: Any, _args: Any, output: Any) -> None:
        # A copy: an in-place op after the layer (ReLU(inplace=True)) would otherwise change what we keep.
        captured[:] = [output.detach().clone()]

    handle = loaded.module(chosen.name).register_forward_hook(keep)
    try:
        with torch.no_grad():
            loaded.forward(inputs)
    finally:
        handle.remove()
    maps = captured[0][0]
    if chosen.layout == "NHWC":
        maps = maps.permute(2, 0, 1)
    return Activations(maps=maps.cpu(), layer=chosen.name, module_type=type(loaded.module(chosen.name)).__name__,
                       reduction=chosen.reduction, layout=chosen.layout)  # fmt: skip


def list_layers(model: str | Any, *, device: str | Any | None = None,
                img_size: int | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Every layer with a feature-map output: name, module type, channels, size, stride, layout."""
    loaded = load_model(model, device=device, img_size=img_size)
    return [
        {"name": layer.name, "type": type(loaded.module(layer.name)).__name__, "channels": layer.channels,
         "size": list(layer.size), "stride": layer.reduction, "layout": layer.layout}
        for layer in loaded.layers()
    ]  # fmt: skip
