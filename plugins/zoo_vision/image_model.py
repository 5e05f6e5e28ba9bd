"""A model ready for pictures: its weights, the preprocessing and labels those weights came with, on a device,
with its feature-map layers found once."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any

from zoo_core.plugin_api import Preprocessing, UnknownNameError, UsageError, check_preprocessing, first_line


@dataclass
class ImageModel:
    """A classifier with everything needed to read a picture as its weights expect; ``load_model`` makes one."""

    model: Any  # torch.nn.Module, in eval mode on ``device``
    preprocessing: Preprocessing
    labels: list[str]  # one per output; the output's index where the weights name none
    name: str  # what to call it in messages: ``simplecnn.run1``
    device: Any
    gradcam_layer: str | None = None  # declared by the model's plugin
    qualified: str | None = None  # ``plugin:name`` when it comes from the catalogue
    tag: str | None = None
    _transform: Any = field(default=None, repr=False)
    _layers: list[Any] | None = field(default=None, repr=False)

    def transform(self, image: Any) -> Any:
        """A PIL image -> the normalised C x H x W tensor the weights expect (``create_transform``)."""
        if self._transform is None:
            from zoo_core.plugin_api import create_transform

            self._transform = create_transform(self.preprocessing)
        return self._transform(image)

    def batch(self, images: list[Any]) -> Any:
        """PIL images -> one N x C x H x W tensor on the model's device."""
        import torch

        return torch.stack([self.transform(image) for image in images]).to(self.device)

    def forward(self, inputs: Any) -> Any:
        """The model's logits; an input size the model cannot take is a one-line error."""
        try:
            return self.model(inputs)
        except RuntimeError as e:
            size = "x".join(map(str, inputs.shape[-2:]))
            first = first_line(e)
            raise UsageError(f"{self.name} cannot take {size} inputs ({first}); use its own size "
                             f"(without --img-size)") from None  # fmt: skip

    def label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)

    def class_index(self, target: str | int) -> int:
        """A class given by its label or its index."""
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit() and target not in self.labels):
            index = int(target)
            if not 0 <= index < len(self.labels):
                raise UsageError(f"--target {target}: {self.name} has classes 0..{len(self.labels) - 1}")
            return index
        if target in self.labels:
            return self.labels.index(target)
        folded = [label.lower() for label in self.labels]
        if target.lower() in folded:
            return folded.index(target.lower())
        raise UnknownNameError(f"class of {self.name}", target, difflib.get_close_matches(target, self.labels, n=3))

    def spatial_layers(self) -> list[Any]:
        """Every layer with a feature-map output (``zoo_core.plugin_api.spatial_layers``), in the order their
        forward passes finish; a module called twice appears twice."""
        if self._layers is None:
            from zoo_core.plugin_api import spatial_layers

            try:
                self._layers = spatial_layers(self.model, tuple(self.preprocessing.input_size))
            except RuntimeError as e:
                size = "x".join(map(str, self.preprocessing.input_size[1:]))
                first = first_line(e)
                raise UsageError(f"{self.name} cannot take {size} inputs ({first}); use its own size "
                                 f"(without --img-size)") from None  # fmt: skip
        return self._layers

    def layers(self) -> list[Any]:
        """Each feature-map layer once, in the order its first forward pass finishes."""
        seen: dict[str, Any] = {}
        for layer in self.spatial_layers():
            seen.setdefault(layer.name, layer)
        return list(seen.values())

    def layer(self, name: str) -> Any:
        """The feature-map layer ``name``; a module without a spatial output, or no such module, is an error."""
        found = {layer.name: layer for layer in self.spatial_layers()}  # the last call's, as hooks see it
        if name in found:
            return found[name]
        modules = dict(self.model.named_modules())
        if name in modules:
            size = "x".join(map(str, self.preprocessing.input_size[1:]))
            raise UsageError(f"layer {name} ({type(modules[name]).__name__}) of {self.name} has no feature-map "
                             f"output at {size}; see `zoo activations {self.name} --list-layers`")  # fmt: skip
        raise UnknownNameError(f"layer of {self.name}", name, difflib.get_close_matches(name, list(found), n=3))

    def module(self, name: str) -> Any:
        return dict(self.model.named_modules())[name]


def _preprocessing(value: Any) -> Preprocessing:
    """A Preprocessing from itself, its dict form, or a timm ``pretrained_cfg``."""
    try:
        return check_preprocessing(value)
    except ValueError as e:
        raise UsageError(f"preprocessing: {e}") from None


def _entry_of(net: Any) -> Any:
    """The catalogue entry a model built by ``create_model`` came from, or None."""
    spec = getattr(net, "zoo_spec", None)
    if not isinstance(spec, dict) or not spec.get("model"):
        return None
    from zoo_core.plugin_api import get_catalogue

    try:
        return get_catalogue().get("model", spec["model"])
    except UsageError:
        return None


def load_model(
    model: str | Any, *, pretrained: bool | str = True, preprocessing: Preprocessing | dict[str, Any] | None = None,
    labels: list[str] | None = None, device: str | Any | None = None, img_size: int | None = None,
) -> ImageModel:  # fmt: skip
    """``[plugin:]name[.tag]`` (its default tag; ``pretrained=False``: random weights) or a ``torch.nn.Module``
    (preprocessing and labels given, or read from its ``pretrained_cfg``) -> an ImageModel in eval mode on
    ``device`` (default: a module's own device, else auto). ``img_size`` feeds the model a square input of that
    side, keeping the crop share."""
    import torch

    from zoo_core.plugin_api import override, resolve_data_config, resolve_device

    if isinstance(model, ImageModel):
        return model
    if device is None and isinstance(model, torch.nn.Module):
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    dev = device if isinstance(device, torch.device) else resolve_device(str(device or "auto"))
    if isinstance(model, str):
        from zoo_core import create_model, resolve

        found = resolve(model, pretrained or False)
        entry, tag = found.entry, found.tag
        net = create_model(found.ref)
        pre = resolve_data_config(found.weights or entry.qualified, img_size=img_size)
        if preprocessing is not None:
            pre = override(_preprocessing(preprocessing), img_size=img_size)
        name = found.display
        qualified = entry.qualified
    elif isinstance(model, torch.nn.Module):
        net = model
        entry = _entry_of(net)
        tag = (getattr(net, "zoo_spec", None) or {}).get("tag") if entry is not None else None
        cfg = getattr(net, "pretrained_cfg", None) or {}
        if preprocessing is not None:
            pre = _preprocessing(preprocessing)
        elif entry is not None:
            pre = resolve_data_config(entry.ref(tag))
        elif cfg.get("input_size"):
            pre = _preprocessing(cfg)
        else:
            raise UsageError(f"{type(net).__name__}: give preprocessing= (input_size, mean, std), or build the "
                             "model with zoo_core.create_model")  # fmt: skip
        pre = override(pre, img_size=img_size)
        name = entry.name + (f".{tag}" if tag else "") if entry is not None else type(net).__name__
        qualified = entry.qualified if entry is not None else None
    else:
        raise UsageError(f"a model is a name such as 'resnet18.tv_in1k' or a torch.nn.Module, not "
                         f"{type(model).__name__}")  # fmt: skip
    cfg = getattr(net, "pretrained_cfg", None) or {}
    names = list(labels if labels is not None else (cfg.get("label_names") or []))
    net.eval().to(dev)
    loaded = ImageModel(model=net, preprocessing=pre, labels=names, name=name, device=dev,
                        gradcam_layer=entry.metadata.get("gradcam_layer") if entry is not None else None,
                        qualified=qualified, tag=tag)  # fmt: skip
    outputs = _outputs(loaded)
    if labels is not None and len(labels) != outputs:
        raise UsageError(f"{len(labels)} labels given for {name}, which scores {outputs} classes")
    if len(names) != outputs:
        loaded.labels = [str(i) for i in range(outputs)]
    return loaded


def _outputs(image_model: ImageModel) -> int:
    """How many classes the model scores: one forward pass on zeros, which also checks the input size."""
    import torch

    pre = image_model.preprocessing
    with torch.no_grad():
        logits = image_model.forward(torch.zeros(1, *pre.input_size, device=image_model.device))
    if logits.dim() != 2:
        raise UsageError(f"{image_model.name} gives outputs of shape {tuple(logits.shape)}, not class scores")
    return int(logits.shape[1])


def as_image(image: Any) -> Any:
    """A path or a PIL image -> a PIL image in its true colours (``zoo_core.images``)."""
    from zoo_core.plugin_api import load_image, to_true_colours

    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if hasattr(image, "mode") and hasattr(image, "size"):
        return to_true_colours(image)
    raise UsageError(f"an image is a file path or a PIL image, not {type(image).__name__}")
