"""PocketNet: two convolutions, a pooled feature vector and a linear classifier; small enough to train in
seconds on a CPU, with pretrained weights for the stripes dataset shipped in the package."""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

STRIPES_CLASSES = 4


def pocketnet(num_classes: int = STRIPES_CLASSES, in_chans: int = 3) -> Any:
    """The architecture, with fresh weights."""
    from collections import OrderedDict

    import torch.nn as nn

    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(in_chans, 16, 3, padding=1, bias=False), bn1=nn.BatchNorm2d(16), act1=nn.ReLU(inplace=True),
        pool=nn.MaxPool2d(2),
        conv2=nn.Conv2d(16, 32, 3, padding=1, bias=False), bn2=nn.BatchNorm2d(32), act2=nn.ReLU(inplace=True),
        gap=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(32, num_classes),
    ))  # fmt: skip


def build_pocketnet(num_classes: int = STRIPES_CLASSES, in_chans: int = 3, pretrained: str | None = None) -> Any:
    """What zoo calls: a PocketNet, with the weights of the tag ``pretrained`` loaded when one is given."""
    if not pretrained:
        return pocketnet(num_classes, in_chans)
    from zoo_core.plugin_api import adapt_input_channels, reset_classifier

    model = pocketnet(STRIPES_CLASSES, 3)  # the shape the weights were trained in
    load_weights(model, pretrained)
    if in_chans != 3:
        adapt_input_channels(model, in_chans)
    if num_classes != STRIPES_CLASSES:
        reset_classifier(model, num_classes)
    return model


def load_weights(model: Any, tag: str) -> None:
    """Load the packaged weights of ``tag`` after checking them against the sha256 the tag declares."""
    from safetensors.torch import load

    from zoo_core.plugin_api import WeightsError
    from zoo_example import PRETRAINED

    if tag not in PRETRAINED:
        raise WeightsError(f"pocketnet has no packaged weights {tag!r}")
    data = (resources.files("zoo_example") / "weights" / f"pocketnet-{tag}.safetensors").read_bytes()
    if hashlib.sha256(data).hexdigest() != PRETRAINED[tag]["sha256"]:
        raise WeightsError(f"pocketnet.{tag}: the packaged weights fail their sha256 check; reinstall zoo-example")
    model.load_state_dict(load(data))
