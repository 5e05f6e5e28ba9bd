"""The Python API over the model catalogue: ``create_model``, ``list_models``, ``model_info``."""

from __future__ import annotations

import inspect
from typing import Any

from zoo_core.catalogue import ModelEntry
from zoo_core.errors import UsageError
from zoo_core.names import ModelRef
from zoo_core.plugins import get_catalogue
from zoo_core.resolve import Resolved, resolve


def accepts(fn: Any, arg: str) -> bool:
    """Whether ``fn`` takes the keyword argument ``arg`` (or any keyword)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == arg or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def create_model(
    name: str | ModelRef | Resolved,
    pretrained: bool | str | None = False,
    num_classes: int | None = None,
    in_chans: int | None = None,
    features_only: bool = False,
    **kwargs: Any,
) -> Any:
    """Build a model from the catalogue.

    ``name`` is any model name (``zoo_core.names``); ``pretrained`` is False, True (the default tag) or a tag.
    ``num_classes`` and ``in_chans`` default to the model's (or its weights'); pretrained weights for a
    different number of classes get a fresh classifier; ``num_classes=0`` removes it (the model returns
    pooled features). ``features_only=True`` returns a module giving the list of stage feature maps, with
    ``feature_info``. A model built with weights carries them in ``model.pretrained_cfg`` (timm's format:
    preprocessing, ``num_classes``, ``label_names``).
    """
    found = resolve(name, pretrained)
    entry, tag, weights = found.entry, found.tag, found.weights
    if num_classes is not None and num_classes < 0:
        raise UsageError(f"num_classes must be 0 (no classifier) or more, got {num_classes}")
    native = entry.metadata.get("takes_features_only", False)
    head = num_classes
    if num_classes == 0 and not native:
        num_classes = None  # built with its classifier, which is removed below
    args = dict(kwargs)
    if features_only and native:
        args["features_only"] = True
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
    classes = num_classes if num_classes is not None else (weights_classes or entry.num_classes)
    if weights is not None:
        _attach_pretrained_cfg(model, entry, weights, classes)
    if head == 0 and not native:
        from zoo_core.adapt import reset_classifier

        reset_classifier(model, 0, classes)
        classes = 0
    if features_only and not native:
        from zoo_core.features import features_only as extract

        size = weights.preprocessing.input_size if weights else tuple(entry.input_size)
        if in_chans is not None:
            size = (in_chans, *size[1:])
        cfg = getattr(model, "pretrained_cfg", None)
        model = extract(model, size)
        if cfg is not None:
            model.pretrained_cfg = cfg
    model.zoo_spec = {
        "model": entry.qualified,
        "tag": tag,
        "num_classes": 0 if head == 0 else classes,
        "in_chans": in_chans if in_chans is not None else weights_chans,
        "features_only": features_only,
        "kwargs": kwargs,
    }
    return model


def _attach_pretrained_cfg(model: Any, entry: ModelEntry, weights: Any, num_classes: int) -> None:
    """timm's ``pretrained_cfg`` on every model built with weights: its preprocessing and labels."""
    pre = weights.preprocessing
    own = dict(getattr(model, "pretrained_cfg", None) or {})
    labels = list(weights.labels) or list(own.get("label_names") or [])
    cfg = {
        **own,
        "architecture": entry.name,
        "tag": weights.tag,
        "source": weights.source,
        "num_classes": num_classes,
        "input_size": tuple(pre.input_size),
        "interpolation": pre.interpolation,
        "crop_pct": round(min(pre.input_size[1:]) / pre.resize_size, 6) if pre.resize_size else pre.crop_pct,
        "crop_mode": pre.crop_mode,
        "mean": tuple(pre.mean),
        "std": tuple(pre.std),
        "label_names": labels if len(labels) == num_classes else None,
        "zoo_weights": weights.ref,
    }
    try:
        model.pretrained_cfg = cfg
    except (AttributeError, TypeError):  # a model class that forbids new attributes keeps its own
        pass


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


def model_info(name: str | ModelRef | Resolved, stats: bool = True) -> dict[str, Any]:
    """Everything the catalogue knows about a model; with ``stats``, parameters and GMACs (builds it)."""
    entry = resolve(name).entry
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
        from zoo_core.isolation import run_plugin_code
        from zoo_core.model_stats import count_gmacs, count_params, has_uninitialised, materialize

        model = entry.build(num_classes=entry.num_classes)
        if has_uninitialised(model):  # lazy modules get their shapes from one pass at the input size
            run_plugin_code(entry.plugin, f"running model '{entry.name}'", materialize, model, tuple(entry.input_size))
        info["num_params"] = count_params(model)
        gmacs = run_plugin_code(entry.plugin, f"running model '{entry.name}'", count_gmacs, model,
                                tuple(entry.input_size))  # fmt: skip
        info["gmacs"] = round(gmacs, 4)
    return info
