"""The weights schema: one typed description of a pretrained tag, whatever plugin or store it comes from.

Plugins register a tag's metadata as JSON (``pretrained={tag: {...}}`` in ``zoo_register_models``, or the
keyword arguments of ``zoo_register_weights``); ``validate_tag`` checks every field's type at registration
(a wrong one fails that plugin with a message naming the field) and fills defaults from the model, so the
cached metadata is always canonical. Everything that uses weights -- evaluation, training from a tag, the
benchmark, push, predict -- reads it through the resolver (``zoo_core.resolve``), which builds it here.

This module is a leaf of zoo_core: it imports only the name syntax (``zoo_core.names``).

Preprocessing follows timm's data config, which also expresses torchvision's ``weights.transforms()``:
resize the shorter side to ``resize_size`` (or, when that is None, ``floor(side / crop_pct)``), centre-crop
to ``input_size``, convert to ``input_size[0]`` channels, scale to [0, 1] and normalise by ``mean``/``std``.
``crop_mode="squash"`` resizes both sides (the aspect ratio is not kept) before the crop, which with
``crop_pct=1`` is a plain resize to the input size, as zoo's own training pipeline does.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from zoo_core.names import TAG_MAX, TAG_RE

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")
CROP_MODES = ("center", "squash", "border")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Preprocessing:
    """How images are turned into the tensors these weights expect."""

    input_size: tuple[int, int, int]  # channels, height, width the model sees
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 1.0  # share of the resized image the crop keeps (above 1: the crop pads)
    crop_mode: str = "center"
    resize_size: int | None = None  # shorter side before the crop; None: side / crop_pct (timm's rule)

    @property
    def channels(self) -> int:
        return self.input_size[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_size": list(self.input_size), "mean": list(self.mean), "std": list(self.std),
            "interpolation": self.interpolation, "crop_pct": self.crop_pct, "crop_mode": self.crop_mode,
            "resize_size": self.resize_size,
        }  # fmt: skip


@dataclass(frozen=True)
class WeightsInfo:
    """A pretrained tag of a model: where its weights come from and how to use them."""

    model: str  # the model's qualified name, ``plugin:name``
    tag: str
    source: str  # torchvision, timm, local, hub, or a plugin's own word
    num_classes: int
    preprocessing: Preprocessing
    labels: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # rebuild the model as the weights need it
    url: str | None = None
    hf_hub_id: str | None = None
    sha256: str | None = None
    license: str | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the optional fields below, as registered

    @property
    def ref(self) -> str:
        return f"{self.model}.{self.tag}"

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (what ``validate_tag`` returns)."""
        out = {
            "source": self.source, "num_classes": self.num_classes, "preprocessing": self.preprocessing.to_dict(),
            "labels": list(self.labels) or None, "metrics": dict(self.metrics), "model_kwargs": dict(self.model_kwargs),
            "url": self.url, "hf_hub_id": self.hf_hub_id, "sha256": self.sha256, "license": self.license,
            "description": self.description, **self.extra,
        }  # fmt: skip
        return {k: v for k, v in out.items() if v is not None}


# Optional fields a tag may carry beyond the typed ones, with their types: provenance and published figures.
EXTRA_FIELDS: dict[str, tuple[type, ...]] = {
    "paper": (str, list),
    "recipe": (str,),
    "num_params": (int,),
    "gflops": (int, float),
    "file_size_mb": (int, float),
    "path": (str,),
    "size_bytes": (int,),
    "created": (str,),
    "revision": (str,),
    "origin": (str,),
    "base_model": (str,),
}
FIELDS = {
    "source", "num_classes", "preprocessing", "labels", "metrics", "model_kwargs", "url", "hf_hub_id", "sha256",
    "license", "description", *EXTRA_FIELDS,
}  # fmt: skip
PREPROCESSING_FIELDS = {"input_size", "mean", "std", "interpolation", "crop_pct", "crop_mode", "resize_size"}


class SchemaError(ValueError):
    """A tag whose metadata does not fit the schema; the message names the field."""


def _fail(where: str, key: str, expected: str, value: Any) -> SchemaError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return SchemaError(f"{where}: field '{key}' must be {expected}, got {shown}")


def _int(where: str, key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, key, f"an integer >= {minimum}", value)
    return value


def _numbers(where: str, key: str, value: Any, n: int, positive: bool = False) -> tuple[float, ...]:
    ok = isinstance(value, (list, tuple)) and len(value) == n and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive)
        for v in value
    )
    if not ok:
        raise _fail(where, key, f"a list of {n} {'positive ' if positive else ''}numbers", value)
    return tuple(float(v) for v in value)


def _optional_str(where: str, key: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(where, key, "a string", value)
    return value or None


def _json(where: str, key: str, value: Any) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError):
        raise _fail(where, key, "JSON-able", value) from None


def _preprocessing(where: str, value: Any, defaults: dict[str, Any]) -> Preprocessing:
    if not isinstance(value, dict):
        raise _fail(where, "preprocessing", "an object", value)
    unknown = set(value) - PREPROCESSING_FIELDS
    if unknown:
        raise SchemaError(f"{where}: unknown preprocessing field(s) {', '.join(sorted(unknown))} "
                          f"(known: {', '.join(sorted(PREPROCESSING_FIELDS))})")  # fmt: skip
    merged = {**defaults, **{k: v for k, v in value.items() if v is not None}}
    size = merged.get("input_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 3):
        raise _fail(where, "preprocessing.input_size", "[channels, height, width]", size)
    input_size = tuple(_int(where, "preprocessing.input_size", v) for v in size)
    channels = input_size[0]
    for key in ("mean", "std"):  # the model's statistics for another number of channels than these weights'
        stats = merged.get(key)
        if value.get(key) is None and isinstance(stats, (list, tuple)) and len(stats) != channels and stats:
            merged[key] = [sum(stats) / len(stats)] * channels
    mean = _numbers(where, "preprocessing.mean", merged.get("mean"), channels)
    std = _numbers(where, "preprocessing.std", merged.get("std"), channels, positive=True)
    interpolation = merged.get("interpolation", "bilinear")
    if interpolation not in INTERPOLATIONS:
        raise _fail(where, "preprocessing.interpolation", f"one of {', '.join(INTERPOLATIONS)}", interpolation)
    crop_pct = merged.get("crop_pct", 1.0)
    # timm has crops above 1 too: the image is resized smaller than the input and the crop pads it
    if isinstance(crop_pct, bool) or not isinstance(crop_pct, (int, float)) or not 0 < crop_pct <= 2:
        raise _fail(where, "preprocessing.crop_pct", "a number in (0, 2]", crop_pct)
    crop_mode = merged.get("crop_mode", "center")
    if crop_mode not in CROP_MODES:
        raise _fail(where, "preprocessing.crop_mode", f"one of {', '.join(CROP_MODES)}", crop_mode)
    resize = merged.get("resize_size")
    if resize is not None:
        resize = _int(where, "preprocessing.resize_size", resize)
    return Preprocessing(input_size, mean, std, interpolation, float(crop_pct), crop_mode, resize)  # type: ignore[arg-type]


def validate_tag(model: str, tag: str, meta: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """Check one tag's metadata against the schema and return its canonical JSON form.

    ``defaults`` are the model's: ``num_classes``, ``input_size``, ``mean`` and ``std``. Raises SchemaError
    naming the offending field.
    """
    if not isinstance(tag, str) or not TAG_RE.match(tag) or len(tag) > TAG_MAX:
        raise SchemaError(f"model {model!r}: invalid tag {tag!r}: use letters, digits, '_' and '-', at most "
                          f"{TAG_MAX} characters")  # fmt: skip
    where = f"weights {model}.{tag}"
    if not isinstance(meta, dict):
        raise SchemaError(f"{where}: metadata must be an object, got {type(meta).__name__}")
    unknown = set(meta) - FIELDS
    if unknown:
        raise SchemaError(f"{where}: unknown field(s) {', '.join(sorted(unknown))} (see zoo_core/weights.py)")
    source = meta.get("source")
    if not isinstance(source, str) or not source:
        raise _fail(where, "source", "a non-empty string", source)
    num_classes = _int(where, "num_classes", meta.get("num_classes", defaults.get("num_classes", 1000)))
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
            raise _fail(where, "labels", "a list of strings", labels)
        if labels and len(labels) != num_classes:
            raise SchemaError(f"{where}: {len(labels)} labels for num_classes {num_classes}")
    model_kwargs = meta.get("model_kwargs") or {}
    if not isinstance(model_kwargs, dict):
        raise _fail(where, "model_kwargs", "an object", model_kwargs)
    if "num_classes" in model_kwargs and model_kwargs["num_classes"] != num_classes:
        raise SchemaError(f"{where}: model_kwargs.num_classes {model_kwargs['num_classes']!r} disagrees with "
                          f"num_classes {num_classes}")  # fmt: skip
    metrics = meta.get("metrics") or {}
    if not isinstance(metrics, dict):
        raise _fail(where, "metrics", "an object", metrics)
    sha256 = meta.get("sha256")
    if sha256 is not None and not (isinstance(sha256, str) and SHA256_RE.match(sha256)):
        raise _fail(where, "sha256", "64 lowercase hex digits", sha256)
    pre_defaults = {k: defaults[k] for k in ("input_size", "mean", "std") if defaults.get(k) is not None}
    preprocessing = _preprocessing(where, meta.get("preprocessing") or {}, pre_defaults)
    extra = {}
    for key, types in EXTRA_FIELDS.items():
        value = meta.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            raise _fail(where, key, " or ".join(t.__name__ for t in types), value)
        extra[key] = value
    info = WeightsInfo(
        model=model, tag=tag, source=source, num_classes=num_classes, preprocessing=preprocessing,
        labels=tuple(labels or ()), metrics=_json(where, "metrics", metrics),
        model_kwargs=_json(where, "model_kwargs", model_kwargs), url=_optional_str(where, "url", meta.get("url")),
        hf_hub_id=_optional_str(where, "hf_hub_id", meta.get("hf_hub_id")), sha256=sha256,
        license=_optional_str(where, "license", meta.get("license")),
        description=_optional_str(where, "description", meta.get("description")), extra=_json(where, "extra", extra),
    )  # fmt: skip
    return info.to_dict()


def from_dict(model: str, tag: str, meta: dict[str, Any]) -> WeightsInfo:
    """A WeightsInfo from canonical metadata (as ``validate_tag`` returns and the catalogue caches)."""
    pre = meta["preprocessing"]
    return WeightsInfo(
        model=model, tag=tag, source=meta["source"], num_classes=int(meta["num_classes"]),
        preprocessing=Preprocessing(
            tuple(pre["input_size"]), tuple(pre["mean"]), tuple(pre["std"]), pre.get("interpolation", "bilinear"),  # type: ignore[arg-type]
            float(pre.get("crop_pct", 1.0)), pre.get("crop_mode", "center"), pre.get("resize_size"),
        ),
        labels=tuple(meta.get("labels") or ()), metrics=dict(meta.get("metrics") or {}),
        model_kwargs=dict(meta.get("model_kwargs") or {}), url=meta.get("url"), hf_hub_id=meta.get("hf_hub_id"),
        sha256=meta.get("sha256"), license=meta.get("license"), description=meta.get("description"),
        extra={k: meta[k] for k in EXTRA_FIELDS if meta.get(k) is not None},
    )  # fmt: skip


def check_preprocessing(value: Any) -> Preprocessing:
    """A Preprocessing from its dict form (or a timm ``pretrained_cfg``: fields it does not know are ignored),
    checked as a tag's preprocessing is; SchemaError names the bad field."""
    if isinstance(value, Preprocessing):
        return value
    given = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(value).items() if k in PREPROCESSING_FIELDS}
    defaults = {"input_size": given.get("input_size"), "mean": given.get("mean"), "std": given.get("std")}
    meta = validate_tag("model", "given", {"source": "given", "num_classes": 1, "preprocessing": given}, defaults)
    return from_dict("model", "given", meta).preprocessing
