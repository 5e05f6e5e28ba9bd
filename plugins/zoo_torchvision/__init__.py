"""torchvision's CNN backbones (ResNet/ResNeXt/Wide ResNet, Inception v3, DenseNet, EfficientNet v1/v2)
with every pretrained weight torchvision publishes and that weight's metadata."""

from __future__ import annotations

import re
from typing import Any

from zoo_core import hookimpl

ZOO_PRECEDENCE = 20  # after zoo's own CNNs, before timm: `resnet50` means torchvision's

FAMILIES = {
    "resnet": re.compile(r"^(resnet\d+|resnext\d+_\w+|wide_resnet\d+_2)$"),
    "inception": re.compile(r"^inception_v3$"),
    "densenet": re.compile(r"^densenet\d+$"),
    "efficientnet": re.compile(r"^efficientnet_(b\d|v2_[sml])$"),
}


def family_of(arch: str) -> str | None:
    return next((f for f, pattern in FAMILIES.items() if pattern.match(arch)), None)


@hookimpl
def zoo_register_models(register: Any) -> None:
    import functools

    import torchvision.models as tvm

    for arch in tvm.list_models(module=tvm):
        family = family_of(arch)
        if family is None:
            continue
        weights = list(tvm.get_model_weights(arch))
        tags = {w.name.lower(): weight_metadata(w) for w in weights}
        default = tvm.get_model_weights(arch).DEFAULT.name.lower() if weights else None
        first = tags[default] if default else {}
        crop = first["preprocessing"]["input_size"][1] if first else (299 if family == "inception" else 224)
        min_size = weights[0].meta.get("min_size") if weights else None
        register(
            arch,
            functools.partial(build, arch),
            family=family,
            description=f"torchvision {arch}",
            input_size=(3, crop, crop),
            min_input_size=(3, *min_size) if min_size and min_size != (1, 1) else None,
            num_classes=1000,
            pretrained=tags,
            default_tag=default,
        )


def weight_metadata(weights: Any) -> dict[str, Any]:
    """One torchvision ``Weights`` value in the weights schema: its ``transforms()`` (resize the shorter side
    to ``resize_size``, centre-crop ``crop_size``) as preprocessing, its metadata as the rest."""
    meta = weights.meta
    transform = weights.transforms()  # an ImageClassification preset: its attributes, defaults included
    crop = _side(getattr(transform, "crop_size", 224))
    resize = _side(getattr(transform, "resize_size", crop))
    metrics = next(iter(meta.get("_metrics", {}).values()), {})
    return {
        "source": "torchvision",
        "url": weights.url,
        "num_classes": len(meta.get("categories") or ()) or 1000,
        "num_params": meta.get("num_params"),
        "metrics": {"imagenet_top1": metrics.get("acc@1"), "imagenet_top5": metrics.get("acc@5")},
        "gflops": meta.get("_ops"),
        "file_size_mb": meta.get("_file_size"),
        "recipe": meta.get("recipe"),
        "license": "bsd-3-clause",  # torchvision's licence; the weights' own terms are in its docs
        "preprocessing": {
            "input_size": [3, crop, crop],
            "resize_size": resize,
            "crop_pct": round(crop / resize, 4),
            "crop_mode": "center",
            "interpolation": getattr(getattr(transform, "interpolation", None), "value", "bilinear"),
            "mean": list(getattr(transform, "mean", (0.485, 0.456, 0.406))),
            "std": list(getattr(transform, "std", (0.229, 0.224, 0.225))),
        },
    }


def _side(value: Any) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def build(
    arch: str, num_classes: int = 1000, pretrained: str | None = None, in_chans: int = 3, **kwargs: Any
) -> Any:
    """Build a torchvision model; with ``pretrained``, download (or reuse the torch hub cache) first."""
    model = _build(arch, num_classes, pretrained, **kwargs)
    if in_chans != 3:
        from zoo_core.adapt import adapt_input_channels

        adapt_input_channels(model, in_chans)
    return model


def _build(arch: str, num_classes: int, pretrained: str | None, **kwargs: Any) -> Any:
    import torchvision.models as tvm

    if arch == "inception_v3":
        # Return plain logits: the auxiliary head is a training trick, not part of the classifier.
        kwargs.setdefault("aux_logits", False)
        kwargs.setdefault("init_weights", pretrained is None)
    if pretrained is None:
        return tvm.get_model(arch, weights=None, num_classes=num_classes, **kwargs)

    from zoo_core.adapt import reset_classifier
    from zoo_core.errors import WeightsError

    weights = tvm.get_model_weights(arch)[pretrained.upper()]
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad hash is a RuntimeError
        raise WeightsError(
            f"cannot get torchvision weights {arch}.{pretrained} from {weights.url} ({e}); "
            "connect to the internet once, or put the file in the torch hub cache (TORCH_HOME)"
        ) from None
    categories = len(weights.meta.get("categories") or ()) or 1000
    aux = kwargs.pop("aux_logits", None)
    model = tvm.get_model(arch, weights=None, num_classes=categories, **kwargs,
                          **({"aux_logits": True} if arch == "inception_v3" else {}))  # fmt: skip
    if arch == "inception_v3":
        model.transform_input = True  # what the ported Google weights expect, as torchvision sets
    model.load_state_dict(state)
    if arch == "inception_v3" and not aux:
        model.aux_logits, model.AuxLogits = False, None
    if num_classes != categories:
        reset_classifier(model, num_classes, categories)
    else:  # the weights' own classes: their names travel with the model (zoo's create_model reads them)
        model.pretrained_cfg = {"label_names": list(weights.meta.get("categories") or [])}
    return model
