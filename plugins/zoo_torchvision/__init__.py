"""Every torchvision classification model (``torchvision.models.list_models(module=torchvision.models)``:
ResNet, VGG, MobileNet, ConvNeXt, RegNet, ViT, Swin, MaxViT, ...) with every pretrained weight torchvision
publishes and that weight's metadata, listed without building a model."""

from __future__ import annotations

import math
import re
from typing import Any

from zoo_core import hookimpl

# Families whose architecture is fixed to one image size at construction: (constructor argument, the size
# the builder uses without weights). Weights for another size (ViT's SWAG 384/512/518) rebuild the model.
FIXED_SIZE = {"vision_transformer": ("image_size", 224), "maxvit": ("input_size", 224)}
# The Inception family: an auxiliary head (a training device that changes the output type) and an input
# transform that only Google's ported weights expect.
AUX_HEAD = {"inception_v3", "googlenet"}


def family_of(arch: str) -> str:
    """The torchvision module that defines ``arch`` (``resnet``, ``vision_transformer``, ...)."""
    import torchvision.models as tvm

    return tvm.get_model_builder(arch).__module__.rsplit(".", 1)[-1]


@hookimpl
def zoo_register_models(register: Any) -> None:
    import functools

    import torchvision.models as tvm

    for arch in tvm.list_models(module=tvm):
        family = family_of(arch)
        weights = list(tvm.get_model_weights(arch))
        tags = {w.name.lower(): weight_metadata(w, arch) for w in weights}
        default = tvm.get_model_weights(arch).DEFAULT.name.lower() if weights else None
        # The model as built without weights: the default tag's size unless that tag rebuilds the model.
        plain = [t for t in [default, *tags] if t and not tags[t].get("model_kwargs")]
        crop = tags[plain[0]]["preprocessing"]["input_size"][1] if plain else 224
        min_sides = [w.meta["min_size"] for w in weights if w.name.lower() in plain and w.meta.get("min_size")]
        min_size = min(min_sides) if min_sides else None
        register(
            arch,
            functools.partial(build, arch),
            family=family,
            description=_one_line((tvm.get_model_builder(arch).__doc__ or "").strip().split("\n\n")[0])
            or f"torchvision {arch}",
            input_size=(3, crop, crop),
            min_input_size=(3, *min_size) if min_size and tuple(min_size) != (1, 1) else None,
            num_classes=1000,
            pretrained=tags,
            default_tag=default,
        )


def construction_kwargs(arch: str, weights: Any) -> dict[str, Any]:
    """What a model must be built with for ``weights`` beyond the builder's defaults (a ViT's image size)."""
    fixed = FIXED_SIZE.get(family_of(arch))
    min_size = weights.meta.get("min_size")
    if fixed is None or not min_size:
        return {}
    arg, plain_side = fixed
    if tuple(min_size) == (plain_side, plain_side):
        return {}
    return {arg: int(min_size[0])} if arg == "image_size" else {arg: [int(s) for s in min_size]}


def weight_metadata(weights: Any, arch: str) -> dict[str, Any]:
    """One torchvision ``Weights`` value in the weights schema: its ``transforms()`` (resize the shorter side
    to ``resize_size``, centre-crop ``crop_size``) as preprocessing, its metadata as the rest."""
    meta = weights.meta
    transform = weights.transforms()  # read from the preset itself, so its defaults (resize 256) count too
    crop = _side(transform.crop_size)
    resize = _side(transform.resize_size)
    metrics = next(iter(meta.get("_metrics", {}).values()), {})
    return {
        "source": "torchvision",
        "url": weights.url,
        "num_classes": len(meta.get("categories") or ()) or 1000,
        "num_params": meta.get("num_params"),
        "metrics": {"imagenet_top1": _finite(metrics.get("acc@1")), "imagenet_top5": _finite(metrics.get("acc@5"))},
        "gflops": meta.get("_ops"),
        "file_size_mb": meta.get("_file_size"),
        "recipe": meta.get("recipe"),
        "description": _one_line(meta.get("_docs")),
        "license": "bsd-3-clause",  # torchvision's licence; the weights' own terms are in its docs
        "model_kwargs": construction_kwargs(arch, weights) or None,
        "preprocessing": {
            "input_size": [3, crop, crop],
            "resize_size": resize,
            "crop_pct": round(crop / resize, 4),
            "crop_mode": "center",
            "interpolation": transform.interpolation.value,
            "mean": [float(v) for v in transform.mean],
            "std": [float(v) for v in transform.std],
        },
    }


def _one_line(text: Any) -> str | None:
    """torchvision's reStructuredText notes as one plain line: `text <url>`_ -> text (url)."""
    if not text:
        return None
    return re.sub(r"`([^`<]+?)\s*<([^>`]+)>`_+", r"\1 (\2)", " ".join(str(text).split())) or None


def _finite(value: Any) -> float | None:
    """A published figure, or None where there is none (VGG16's feature-only weights publish NaN)."""
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def _side(value: Any) -> int:
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def build(
    arch: str, num_classes: int = 1000, pretrained: str | None = None, in_chans: int = 3, **kwargs: Any
) -> Any:
    """Build a torchvision model; with ``pretrained``, download (or reuse the torch hub cache) first."""
    model = _build(arch, num_classes, pretrained, **kwargs)
    if in_chans != 3:
        from zoo_core.plugin_api import adapt_input_channels

        adapt_input_channels(model, in_chans)
    return model


def _build(arch: str, num_classes: int, pretrained: str | None, **kwargs: Any) -> Any:
    import torchvision.models as tvm

    if arch in AUX_HEAD:
        # Plain logits: the auxiliary head is a training trick, not part of the classifier.
        kwargs.setdefault("aux_logits", False)
        kwargs.setdefault("init_weights", pretrained is None)
        kwargs.setdefault("transform_input", pretrained is not None)  # what Google's ported weights expect
    if pretrained is None:
        return tvm.get_model(arch, weights=None, num_classes=num_classes, **kwargs)

    from zoo_core.plugin_api import WeightsError

    weights = tvm.get_model_weights(arch)[pretrained.upper()]
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a bad hash is a RuntimeError
        raise WeightsError(
            f"cannot get torchvision weights {arch}.{pretrained} from {weights.url} ({e}); "
            "connect to the internet once, or put the file in the torch hub cache (TORCH_HOME)"
        ) from None
    model = tvm.get_model(arch, weights=None, num_classes=num_classes, **{**construction_kwargs(arch, weights),
                                                                          **kwargs})  # fmt: skip
    categories = len(weights.meta.get("categories") or ()) or 1000
    load_fitting(model, state, categories, f"{arch}.{pretrained}")
    if num_classes == categories:  # the weights' own classes: their names travel with the model
        model.pretrained_cfg = {"label_names": list(weights.meta.get("categories") or [])}
    return model


def load_fitting(model: Any, state: dict[str, Any], categories: int, what: str) -> None:
    """Load ``state`` into ``model``, leaving out the classifier where the model has another number of
    classes (a Linear, SqueezeNet's 1x1 conv, an Inception's auxiliary heads), which stays freshly set up."""
    from zoo_core.plugin_api import WeightsError

    own = model.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    # Weights the model does not have: an auxiliary head the caller left out is dropped on purpose.
    wrong = [k for k in state if k in own and k not in fitting and state[k].shape[:1] != (categories,)]
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    bad = wrong + missing
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise WeightsError(f"torchvision weights {what} do not fit the model: {', '.join(bad[:3])}{more}")
    model.load_state_dict(fitting, strict=False)
