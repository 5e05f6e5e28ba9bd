"""Adapting a built model to a task: a new classifier head, or a different number of input channels."""

from __future__ import annotations

from typing import Any


def _set_submodule(root: Any, path: str, module: Any) -> None:
    parent_path, _, attr = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, attr, module)


def reset_classifier(model: Any, num_classes: int, old_num_classes: int | None = None) -> Any:
    """Give ``model`` a fresh classifier for ``num_classes`` (timm's ``reset_classifier`` if it has one).

    Otherwise every ``nn.Linear`` producing ``old_num_classes`` outputs (the last Linear when not given;
    an Inception's auxiliary head too) is replaced by a new one.
    """
    import torch.nn as nn

    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return model
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no Linear classifier to replace")
    if old_num_classes is None:
        old_num_classes = linears[-1][1].out_features
    for path, old in linears:
        if old.out_features == old_num_classes:
            new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
            _set_submodule(model, path, new.to(old.weight.device, old.weight.dtype))
    return model


def adapt_input_channels(model: Any, in_chans: int) -> Any:
    """Make the first convolution take ``in_chans`` channels, keeping pretrained filters meaningful.

    As timm does: for 1 channel the RGB filters are summed; for more, they are repeated and rescaled.
    """
    import torch
    import torch.nn as nn

    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise ValueError(f"{type(model).__name__} has no Conv2d input layer to adapt")
    path, conv = first
    if conv.in_channels == in_chans:
        return model
    new = nn.Conv2d(
        in_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
        conv.groups, conv.bias is not None, conv.padding_mode,
    ).to(conv.weight.device, conv.weight.dtype)  # fmt: skip
    with torch.no_grad():
        w = conv.weight
        if in_chans == 1:
            new.weight.copy_(w.sum(dim=1, keepdim=True))
        else:
            reps = -(-in_chans // w.shape[1])
            new.weight.copy_(w.repeat(1, reps, 1, 1)[:, :in_chans] * (w.shape[1] / in_chans))
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    _set_submodule(model, path, new)
    return model
