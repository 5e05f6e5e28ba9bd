"""The whole timm catalogue: every architecture, with its pretrained tags (``arch.tag``) and their
preprocessing, listed from timm's registry without building a model."""

from __future__ import annotations

import functools
from typing import Any

from zoo_core import hookimpl
from zoo_core.plugin_api import INTERPOLATIONS

CFG_KEYS = ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")


@hookimpl
def zoo_register_models(register: Any) -> None:
    import timm
    from timm.models import get_arch_pretrained_cfgs

    for module in timm.list_modules():
        for arch in timm.list_models(module=module):
            cfgs = get_arch_pretrained_cfgs(arch)
            tags = {
                cfg.tag: tag_metadata(cfg.to_dict()) for cfg in cfgs.values() if cfg.tag and _has_weights(cfg)
            }
            default_cfg = next(iter(cfgs.values())).to_dict() if cfgs else {}
            register(
                arch,
                functools.partial(build, arch),
                family=module,
                description=f"timm {arch}",
                input_size=default_cfg.get("input_size", (3, 224, 224)),
                mean=default_cfg.get("mean", (0.485, 0.456, 0.406)),
                std=default_cfg.get("std", (0.229, 0.224, 0.225)),
                num_classes=default_cfg.get("num_classes") or 1000,
                takes_features_only=True,
                min_input_size=default_cfg.get("min_input_size"),
                pretrained=tags,
                default_tag=next(iter(tags), None),
            )


def _has_weights(cfg: Any) -> bool:
    return bool(cfg.hf_hub_id or cfg.url or cfg.file)


def tag_metadata(cfg: dict[str, Any]) -> dict[str, Any]:
    """A timm pretrained config in the weights schema (timm's data config is its preprocessing)."""
    preprocessing = {k: cfg[k] for k in CFG_KEYS if cfg.get(k) is not None}
    if preprocessing.get("interpolation") not in INTERPOLATIONS:
        preprocessing.pop("interpolation", None)  # timm's '' or 'random' mean its default, bilinear
    return {
        "source": "timm",
        "hf_hub_id": cfg.get("hf_hub_id") or None,
        "url": cfg.get("url") or None,
        "num_classes": cfg.get("num_classes") or 1000,
        "license": cfg.get("license") or None,
        "paper": cfg.get("paper_ids") or None,
        "preprocessing": preprocessing,
    }


def build(arch: str, num_classes: int = 1000, pretrained: str | None = None, **kwargs: Any) -> Any:
    """``timm.create_model``; a pretrained tag downloads through timm and huggingface_hub's cache."""
    import timm

    if pretrained is None:
        return timm.create_model(arch, num_classes=num_classes, **kwargs)
    from zoo_core.plugin_api import WeightsError, first_line

    name = f"{arch}.{pretrained}"
    hub_id = timm.models.get_pretrained_cfg(name).hf_hub_id
    if hub_id and not _in_hf_cache(hub_id) and not _hub_reachable():
        # huggingface_hub retries a dead network for most of a minute: fail at once instead.
        raise WeightsError(
            f"cannot get timm weights {name}: not in the Hugging Face cache and the Hub is unreachable; "
            "connect to the internet once, or warm the cache (HF_HOME)"
        )
    try:
        model = timm.create_model(name, pretrained=True, num_classes=num_classes, **kwargs)
    except (OSError, RuntimeError, ConnectionError) as e:  # HF hub and URL errors are OSErrors
        raise WeightsError(
            f"cannot get timm weights {name} ({first_line(e, typed=True)}); "
            "connect to the internet once, or warm the Hugging Face cache (HF_HOME)"
        ) from None
    _name_classes(model)
    return model


def _name_classes(model: Any) -> None:
    """Put the class names of ImageNet-family weights into ``pretrained_cfg["label_names"]`` (timm keeps
    them in its ImageNetInfo, keyed by the number of classes)."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    cfg = getattr(model, "pretrained_cfg", None)
    if not isinstance(cfg, dict) or cfg.get("label_names"):
        return
    subset = infer_imagenet_subset(model)
    if subset:
        info = ImageNetInfo(subset)
        cfg["label_names"] = info.label_descriptions()
        cfg["label_ids"] = info.label_names()


def _in_hf_cache(hub_id: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    repo, _, revision = hub_id.partition("@")
    return any(
        isinstance(try_to_load_from_cache(repo, f, revision=revision or None), str)
        for f in ("model.safetensors", "open_clip_model.safetensors", "pytorch_model.bin")
    )


def _hub_reachable(timeout: float = 3.0) -> bool:
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False
