"""Preprocessing that follows the weights: the data-config API, in the spirit of timm's
``resolve_data_config`` / ``create_transform`` and torchvision's ``weights.transforms()``.

``resolve_data_config("resnet50.imagenet1k_v2")`` gives the tag's ``Preprocessing`` (``--img-size`` and
``--crop-pct`` style overrides applied and recorded); ``create_transform(pre)`` turns a PIL image into the
normalised tensor those weights expect, with the same operations in the same order as the weights' own
library, so the tensors are equal to torchvision's and timm's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from zoo_core.errors import UsageError
from zoo_core.names import ModelRef
from zoo_core.resolve import resolve
from zoo_core.weights import INTERPOLATIONS, Preprocessing, WeightsInfo


def resolve_data_config(
    model: str | ModelRef | WeightsInfo | Preprocessing, *, img_size: int | None = None, crop_pct: float | None = None,
    interpolation: str | None = None,
) -> Preprocessing:  # fmt: skip
    """The preprocessing of ``model`` (``[plugin:]name[.tag]``: its tag's, else its default tag's, else the
    architecture's defaults), with overrides: ``img_size`` (square input side), ``crop_pct``, ``interpolation``."""
    if isinstance(model, Preprocessing):
        pre = model
    elif isinstance(model, WeightsInfo):
        pre = model.preprocessing
    else:
        found = resolve(model)
        if found.weights is None and found.entry.default_tag is not None:
            found = resolve(model, True)
        if found.weights is not None:
            pre = found.weights.preprocessing
        else:
            entry = found.entry
            c, h, w = entry.input_size
            pre = Preprocessing((c, h, w), tuple(entry.metadata["mean"]), tuple(entry.metadata["std"]))
    return override(pre, img_size=img_size, crop_pct=crop_pct, interpolation=interpolation)


def override(pre: Preprocessing, *, img_size: int | None = None, crop_pct: float | None = None,
             interpolation: str | None = None) -> Preprocessing:  # fmt: skip
    """``pre`` with a new input side, crop share or interpolation. A new size or crop keeps the crop share
    of the original (a torchvision resize of 256 for a 224 crop becomes crop_pct 0.875)."""
    if img_size is not None and img_size < 1:
        raise UsageError(f"--img-size must be positive, got {img_size}")
    if crop_pct is not None and not 0 < crop_pct <= 2:
        raise UsageError(f"--crop-pct must be in (0, 2], got {crop_pct}")
    if interpolation is not None and interpolation not in INTERPOLATIONS:
        raise UsageError(f"--interpolation must be one of {', '.join(INTERPOLATIONS)}, got {interpolation!r}")
    if img_size is None and crop_pct is None:
        return pre if interpolation is None else replace(pre, interpolation=interpolation)
    share = crop_pct if crop_pct is not None else effective_crop_pct(pre)
    size = (pre.channels, img_size, img_size) if img_size is not None else pre.input_size
    return replace(pre, input_size=size, crop_pct=round(share, 6), resize_size=None,
                   interpolation=interpolation or pre.interpolation)  # fmt: skip


def effective_crop_pct(pre: Preprocessing) -> float:
    """The share of the resized image the crop keeps, whether given as ``resize_size`` or ``crop_pct``."""
    if pre.resize_size is not None:
        return min(pre.input_size[1:]) / pre.resize_size
    return pre.crop_pct


def resize_sides(pre: Preprocessing) -> tuple[int, int]:
    """(height, width) the image is resized to before the crop, for a square-ish target (timm's rule)."""
    h, w = pre.input_size[1:]
    if pre.resize_size is not None:
        return pre.resize_size, pre.resize_size
    return math.floor(h / pre.crop_pct), math.floor(w / pre.crop_pct)


def _interpolation(name: str) -> Any:
    from torchvision.transforms import InterpolationMode

    return InterpolationMode(name)


class _Channels:
    """PIL image -> ``RGB`` or ``L`` (the weights' channels), through zoo's decoder contract."""

    def __init__(self, channels: int) -> None:
        self.channels = channels

    def __call__(self, image: Any) -> Any:
        from zoo_core.images import to_true_colours

        image = to_true_colours(image)
        want = "L" if self.channels == 1 else "RGB"
        return image if image.mode == want else image.convert(want)

    def __repr__(self) -> str:
        return f"ToChannels({self.channels})"


class _KeepRatio:
    """Resize so the image covers ``size`` (``longest=False``: the crop loses the overflow) or fits inside it
    (``longest=True``: the pad fills the rest), keeping the aspect ratio."""

    def __init__(self, size: tuple[int, int], interpolation: Any, longest: bool) -> None:
        self.size, self.interpolation, self.longest = size, interpolation, longest

    def __call__(self, image: Any) -> Any:
        import torchvision.transforms.functional as F

        w, h = image.size
        ratios = (self.size[0] / h, self.size[1] / w)
        ratio = min(ratios) if self.longest else max(ratios)
        return F.resize(image, [max(1, round(h * ratio)), max(1, round(w * ratio))], self.interpolation)

    def __repr__(self) -> str:
        return f"ResizeKeepRatio(size={self.size}, longest={self.longest})"


def create_transform(pre: Preprocessing) -> Callable[[Any], Any]:
    """PIL image -> normalised float tensor C x H x W, as torchvision's ``weights.transforms()`` and timm's
    eval transform compute it: resize (shorter side, or both sides for ``squash``), centre crop, to [0, 1],
    normalise."""
    import torchvision.transforms as T

    target = tuple(pre.input_size[1:])
    interpolation = _interpolation(pre.interpolation)
    steps: list[Any] = [_Channels(pre.channels)]
    scale = resize_sides(pre)
    if pre.crop_mode == "squash":
        steps += [T.Resize(list(scale), interpolation=interpolation), T.CenterCrop(list(target))]
    elif pre.crop_mode == "border":
        fill = [round(255 * v) for v in pre.mean] if pre.channels == 3 else round(255 * pre.mean[0])
        steps += [_KeepRatio(scale, interpolation, longest=True), _Pad(target, fill), T.CenterCrop(list(target))]
    elif scale[0] == scale[1]:
        steps += [T.Resize(scale[0], interpolation=interpolation), T.CenterCrop(list(target))]
    else:
        steps += [_KeepRatio(scale, interpolation, longest=False), T.CenterCrop(list(target))]
    steps += [T.ToTensor(), T.Normalize(list(pre.mean), list(pre.std))]
    return T.Compose(steps)


class _Pad:
    """Centre an image smaller than ``size`` on a ``fill`` background (the ``border`` crop mode)."""

    def __init__(self, size: tuple[int, int], fill: Any) -> None:
        self.size, self.fill = size, fill

    def __call__(self, image: Any) -> Any:
        import torchvision.transforms.functional as F

        w, h = image.size
        dh, dw = max(0, self.size[0] - h), max(0, self.size[1] - w)
        if not dh and not dw:
            return image
        return F.pad(image, [dw // 2, dh // 2, dw - dw // 2, dh - dh // 2], fill=self.fill)

    def __repr__(self) -> str:
        return f"Pad(size={self.size})"


def describe(pre: Preprocessing) -> str:
    """One line for people: ``resize 256 (bilinear), centre crop 224x224, RGB, mean ... std ...``."""
    h, w = pre.input_size[1:]
    sides = resize_sides(pre)
    resize = f"resize {sides[0]}" if sides[0] == sides[1] else f"resize {sides[0]}x{sides[1]}"
    how = {"center": "centre crop", "squash": "squash then crop", "border": "fit, pad and crop"}[pre.crop_mode]
    colours = "RGB" if pre.channels == 3 else ("grayscale" if pre.channels == 1 else f"{pre.channels} channels")
    mean = ", ".join(f"{v:.3g}" for v in pre.mean)
    std = ", ".join(f"{v:.3g}" for v in pre.std)
    return f"{resize} ({pre.interpolation}), {how} {h}x{w}, {colours}, mean ({mean}), std ({std})"
