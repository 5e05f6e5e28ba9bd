"""Grad-CAM: which parts of a picture raise a class's score, through captum's ``LayerGradCam`` (the method is
captum's; zoo finds the layer, feeds the picture as the weights expect and maps the result back onto it).

The default layer: the one the model's plugin declares (``gradcam_layer``), else the last of timm's
``feature_info``, else the last module whose output is a feature map; NHWC outputs are turned to NCHW for
captum through a probe module. Every hook is removed, and the model's mode restored, however the call ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoo_core.plugin_api import UsageError
from zoo_vision.image_model import ImageModel, as_image, load_model

INSTALL_HINT = 'pip install "zoo[vision]"'


def require_captum() -> Any:
    """captum's LayerGradCam, or a one-line error saying how to install it."""
    try:
        from captum.attr import LayerGradCam
    except ImportError:
        raise UsageError(f"Grad-CAM needs the captum package: {INSTALL_HINT}") from None
    return LayerGradCam


@dataclass
class GradCAM:
    """A Grad-CAM map over a picture, with the class it explains."""

    map: Any  # H x W tensor over the picture, in [0, 1]; 0 where the model sees nothing
    layer_map: Any  # h x w tensor at the layer's resolution, over the model input, before scaling
    seen: Any  # H x W bool tensor: the part of the picture the model's input covers
    index: int
    label: str
    probability: float
    predicted: int
    predicted_label: str
    predicted_probability: float
    layer: str
    layer_source: str  # why this layer: "--layer", "plugin", "timm feature_info" or "last feature map"
    peak: tuple[int, int] | None  # (x, y) of the map's maximum in picture pixels; None when the map is all zero
    image: Any  # the PIL picture

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": self.label, "index": self.index, "probability": round(self.probability, 6), "layer": self.layer,
            "peak": list(self.peak) if self.peak is not None else None, "layer_source": self.layer_source,
            "predicted": {"class": self.predicted_label, "index": self.predicted,
                          "probability": round(self.predicted_probability, 6)},
            "image_size": list(self.image.size),
        }  # fmt: skip

    def figure(self, alpha: float = 0.5) -> Any:
        """The heat map over the picture, at the picture's own size (a matplotlib Figure)."""
        from zoo_vision.pictures import overlay_pixels, pixel_figure

        return pixel_figure(overlay_pixels(self.image, self.map.cpu().numpy(), self.seen.cpu().numpy(), alpha))


def default_layer(model: ImageModel) -> tuple[Any, str]:
    """(the layer Grad-CAM explains by default, why it was chosen)."""
    layers = model.spatial_layers()
    if not layers:
        raise UsageError(f"{model.name} has no layer with a feature-map output (N x C x H x W or N x H x W x C): "
                         "Grad-CAM needs a CNN")  # fmt: skip
    by_name = {layer.name: layer for layer in layers}
    if model.gradcam_layer in by_name:
        return by_name[model.gradcam_layer], "plugin"
    info = getattr(model.model, "feature_info", None)
    if isinstance(info, list) and info and isinstance(info[-1], dict) and info[-1].get("module") in by_name:
        return by_name[info[-1]["module"]], "timm feature_info"
    return layers[-1], "last feature map"


def gradcam_maps(model: Any, inputs: Any, targets: Any, layer: str, layout: str = "NCHW") -> Any:
    """Grad-CAM of ``targets`` (class indices, one per input) at the module ``layer`` of ``model``: an
    N x h x w tensor at the layer's resolution, ReLU'd, not scaled. ``layout`` is that layer's output layout."""
    import torch

    LayerGradCam = require_captum()
    module = dict(model.named_modules())[layer]
    hooked, probe_handle = module, None
    if layout == "NHWC":
        # captum averages gradients over dimensions 2 and 3: give it the NCHW view through a probe module.
        probe = torch.nn.Identity()

        def to_nchw(_module: Any, _args: Any, output: Any) -> Any:
            return probe(output.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

        probe_handle, hooked = module.register_forward_hook(to_nchw), probe
    was_training = model.training
    model.eval()
    try:
        # A copy of the input that asks for gradients: with every parameter frozen, the graph still reaches
        # the layer. The model's own requires_grad flags and .grad fields are left as they were.
        with torch.inference_mode(False), torch.enable_grad():
            x = inputs.detach().clone().requires_grad_(True)
            maps = LayerGradCam(model, hooked).attribute(x, target=targets, relu_attributions=True)
    finally:
        if probe_handle is not None:
            probe_handle.remove()
        model.train(was_training)
    return maps.detach()[:, 0]


def gradcam(
    model: str | Any, image: Any, *, target: str | int | None = None, layer: str | None = None,
    device: str | Any | None = None, img_size: int | None = None,
) -> GradCAM:  # fmt: skip
    """Grad-CAM of ``image`` (a path or PIL image) for ``target`` (a label or index; default: the predicted
    class) at ``layer`` (default: ``default_layer``). ``model`` is a name, an ``ImageModel`` or a module."""
    import torch

    require_captum()
    picture = as_image(image)  # a picture that cannot be read fails before the model loads
    loaded = load_model(model, device=device, img_size=img_size)
    inputs = loaded.batch([picture])
    with torch.no_grad():
        logits = loaded.forward(inputs).float()
    if not torch.isfinite(logits).all():
        raise UsageError(f"{loaded.name} gives non-finite scores for this image")
    probs = torch.softmax(logits[0], dim=0)
    predicted = int(probs.argmax())
    index = predicted if target is None else loaded.class_index(target)
    chosen, source = (loaded.layer(layer), "--layer") if layer else default_layer(loaded)
    raw = gradcam_maps(loaded.model, inputs, torch.tensor([index], device=inputs.device), chosen.name,
                       chosen.layout)[0].float()  # fmt: skip
    if not torch.isfinite(raw).all():
        raise UsageError(f"Grad-CAM of {loaded.name} at {chosen.name} is not finite for this image")
    from zoo_vision.geometry import input_window

    over_image, seen = input_window(loaded.preprocessing, picture.size).project(raw[None])
    over_image = over_image[0].cpu()
    top = float(over_image.max())
    peak = None
    if top > 0:
        over_image = over_image / top
        y, x = divmod(int(over_image.argmax()), over_image.shape[1])
        peak = (x, y)
    return GradCAM(
        map=over_image, layer_map=raw.cpu(), seen=seen.cpu(), index=index, label=loaded.label(index),
        probability=float(probs[index]), predicted=predicted, predicted_label=loaded.label(predicted),
        predicted_probability=float(probs[predicted]), layer=chosen.name, layer_source=source, peak=peak,
        image=picture,
    )  # fmt: skip
