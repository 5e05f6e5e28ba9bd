"""Adapting a built model to a task: a new classifier head, or a different number of input channels."""

from __future__ import annotations

from typing import Any


def _set_submodule(root: Any, path: str, module: Any) -> None:
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, attr, module)


def reset_classifier(model: Any, num_classes: int, old_num_classes: int | None = None) -> Any:
    """Give ``model`` a fresh classifier for ``num_classes`` (timm's ``reset_classifier`` if it has one);
    ``num_classes=0`` removes it, so the model returns its pooled features (timm's convention).

    Otherwise every ``nn.Linear`` producing ``old_num_classes`` outputs (the last Linear when not given;
    an Inception's auxiliary head too) is replaced by a new one.
    """
    import torch.nn as nn

    from zoo_core.errors import UsageError

    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return model
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise UsageError(f"{type(model).__name__} has no Linear classifier to replace")
    if old_num_classes is None:
        old_num_classes = linears[-1][1].out_features
    for path, old in linears:
        if old.out_features == old_num_classes:
            new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None) if num_classes else nn.Identity()
            _set_submodule(model, path, new.to(old.weight.device, old.weight.dtype))
    return model


def adapt_input_channels(model: Any, in_chans: int) -> Any:
    """Make the first convolution take ``in_chans`` channels, keeping pretrained filters meaningful (timm's
    ``adapt_input_conv``: summed for one channel, repeated and rescaled for more)."""
    import torch
    import torch.nn as nn
    from timm.models import adapt_input_conv

    from zoo_core.errors import UsageError

    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise UsageError(f"{type(model).__name__} has no Conv2d input layer to adapt to {in_chans} channels")
    path, conv = first
    if conv.in_channels == in_chans:
        return model
    if conv.groups != 1 or (in_chans != 1 and conv.in_channels != 3):
        raise UsageError(f"cannot adapt {type(model).__name__}'s {conv.in_channels}-channel input layer to "
                         f"{in_chans} channels")  # fmt: skip
    new = nn.Conv2d(
        in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        conv.groups, conv.bias is not None, conv.padding_mode,
    ).to(conv.weight.device, conv.weight.dtype)  # fmt: skip
    with torch.no_grad():
        new.weight.copy_(adapt_input_conv(in_chans, conv.weight.detach()))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_submodule(model, path, new)
    return model
