"""The Python API over the model catalogue: ``create_model``, ``list_models``, ``model_info``."""

from __future__ import annotations

import inspect
from typing import Any

from zoo_core.catalogue import ModelEntry
from zoo_core.errors import UsageError, WeightsError
from zoo_core.plugins import get_catalogue, get_host


def resolve(name: str, pretrained: bool | str | None = False) -> tuple[ModelEntry, str | None]:
    """``[plugin:]name[.tag]`` plus a ``pretrained`` argument -> (entry, tag or None).

    A name whose prefix is no plugin's (``hf-hub:OWNER/NAME``) goes to the plugins' ``zoo_resolve_model``.
    """
    entry, tag = get_catalogue().resolve_model(get_host().resolve_name(name) or name)
    if isinstance(pretrained, str) and pretrained:
        entry, tag = get_catalogue().resolve_model(f"{entry.qualified}.{pretrained}")
    elif pretrained is True and tag is None:
        tag = entry.default_tag
        if tag is None:
            raise WeightsError(f"{entry.qualified} has no pretrained weights; see `zoo list --pretrained`")
    return entry, tag


def accepts(fn: Any, arg: str) -> bool:
    """Whether ``fn`` takes the keyword argument ``arg`` (or any keyword)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == arg or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def create_model(
    name: str,
    pretrained: bool | str | None = False,
    num_classes: int | None = None,
    in_chans: int | None = None,
    **kwargs: Any,
) -> Any:
    """Build a model from the catalogue.

    ``name`` is ``[plugin:]name[.tag]``; ``pretrained`` is False, True (the default tag) or a tag.
    ``num_classes`` and ``in_chans`` default to the model's (or its weights'); pretrained weights
    for a different number of classes get a fresh classifier.
    """
    entry, tag = resolve(name, pretrained)
    if num_classes is not None and num_classes < 1:
        raise UsageError(f"num_classes must be positive, got {num_classes}")
    weights = entry.weights(tag) if tag else None
    args = dict(kwargs)
    if weights is not None and tag in entry.loaders:
        # Weights kept outside the plugin (the local registry): build the model they were trained as.
        args = {**weights.model_kwargs, **args}
        model = entry.build(**args)
        entry.loaders[tag](model)
        weights_classes = weights.num_classes
        weights_chans = int(args.get("in_chans", weights.preprocessing.channels))
    else:
        weights_classes = weights.num_classes if weights else None
        args["num_classes"] = num_classes if num_classes is not None else weights_classes or entry.num_classes
        if tag:
            args["pretrained"] = tag
        weights_chans = entry.input_size[0]
        if in_chans is not None and accepts(entry.builder, "in_chans"):
            args["in_chans"] = weights_chans = in_chans
        model = entry.build(**args)
    if num_classes is not None and num_classes != weights_classes and weights is not None and tag in entry.loaders:
        from zoo_core.adapt import reset_classifier

        reset_classifier(model, num_classes, weights_classes)
    if in_chans is not None and in_chans != weights_chans:
        from zoo_core.adapt import adapt_input_channels

        adapt_input_channels(model, in_chans)
    model.zoo_spec = {
        "model": entry.qualified,
        "tag": tag,
        "num_classes": num_classes if num_classes is not None else (weights_classes or entry.num_classes),
        "in_chans": in_chans if in_chans is not None else weights_chans,
        "kwargs": kwargs,
    }
    return model


def list_models(
    pattern: str | list[str] | None = None, plugin: str | None = None, pretrained: bool = False
) -> list[str]:
    """Model names matching timm-style wildcards; qualified (``plugin:name``) where the bare name means
    another plugin's model."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern or [])
    catalogue = get_catalogue()
    return [
        catalogue.display_name("model", e)
        for e in catalogue.find("model", patterns, plugin)
        if not pretrained or e.pretrained  # type: ignore[attr-defined]
    ]


def model_info(name: str, stats: bool = True) -> dict[str, Any]:
    """Everything the catalogue knows about a model; with ``stats``, parameters and GMACs (builds it)."""
    entry, _ = resolve(name)
    catalogue = get_catalogue()
    info: dict[str, Any] = {
        "name": entry.name,
        "qualified": entry.qualified,
        "plugin": entry.plugin,
        "default": catalogue.is_default("model", entry),
        "also_in": [e.plugin for e in catalogue.find("model", [entry.name]) if e is not entry],
        **entry.metadata,
    }
    if stats:
        from zoo_core.model_stats import count_gmacs, count_params

        model = entry.build(num_classes=entry.num_classes)
        info["num_params"] = count_params(model)
        info["gmacs"] = round(count_gmacs(model, tuple(entry.input_size)), 4)
    return info
