"""The catalogue: every model, dataset, trainer and recipe the plugins registered, validated and resolvable by name.

Names: every entry has a qualified name ``plugin:name`` that always works. A bare name means the entry
of the plugin with the highest precedence: zoo's own plugins, then torchvision, then timm, then
third-party plugins in alphabetical order (see ``zoo_core.plugins.precedence``). ``name.tag`` picks a
pretrained tag.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from zoo_core.errors import UnknownNameError
from zoo_core.isolation import run_plugin_code
from zoo_core.names import NAME_MAX, NAME_RE, ModelRef, split_qualified
from zoo_core.weights import validate_tag

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MODEL_KEYS = {
    "family", "description", "input_size", "mean", "std", "num_classes", "min_input_size", "takes_input_size",
    "takes_features_only", "pretrained", "default_tag", "gradcam_layer", "num_params", "gmacs",
}  # fmt: skip


# -- builders that survive the metadata cache ------------------------------------------------------


def callable_ref(fn: Callable[..., Any]) -> dict[str, Any] | None:
    """A JSON reference to a module-level callable (or a partial of one), or None if it has none."""
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = {}
    if isinstance(fn, functools.partial):
        fn, args, kwargs = fn.func, fn.args, dict(fn.keywords)
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    try:
        json.dumps([args, kwargs])
        if _resolve_attr(module, qualname) is not fn:
            return None
    except (TypeError, ValueError, ImportError, AttributeError):
        return None
    return {"ref": f"{module}:{qualname}", "args": list(args), "kwargs": kwargs}


def resolve_ref(ref: dict[str, Any]) -> Callable[..., Any]:
    module, _, qualname = ref["ref"].partition(":")
    fn = _resolve_attr(module, qualname)
    if ref.get("args") or ref.get("kwargs"):
        return functools.partial(fn, *ref.get("args", ()), **ref.get("kwargs", {}))
    return fn


def _resolve_attr(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# -- entries ---------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One registered thing: a name, the plugin it came from, a builder and its metadata."""

    name: str
    plugin: str
    metadata: dict[str, Any] = field(default_factory=dict)
    builder_ref: dict[str, Any] | None = None
    kind: str = "model"
    _builder: Callable[..., Any] | None = field(default=None, repr=False)
    _load_builder: Callable[[Entry], Callable[..., Any]] | None = field(default=None, repr=False)

    @property
    def qualified(self) -> str:
        return f"{self.plugin}:{self.name}"

    @property
    def builder(self) -> Callable[..., Any]:
        """The callable that builds it; imports the plugin only when first asked for."""
        if self._builder is None:
            if self.builder_ref is not None:
                self._builder = run_plugin_code(self.plugin, f"loading {self.kind} '{self.name}'", resolve_ref,
                                                self.builder_ref)  # fmt: skip
            elif self._load_builder is not None:
                self._builder = self._load_builder(self)
            else:  # pragma: no cover - every entry is created with one of the two
                raise RuntimeError(f"{self.qualified} has no builder")
        return self._builder

    def build(self, *args: Any, passthrough: tuple[type[BaseException], ...] = (), **kwargs: Any) -> Any:
        """Call the builder; whatever the plugin's code raises is that plugin's one-line PluginError."""
        return run_plugin_code(self.plugin, f"building {self.kind} '{self.name}'", self.builder, *args,
                               passthrough=passthrough, **kwargs)  # fmt: skip

    def to_cache(self) -> dict[str, Any]:
        return {"name": self.name, "metadata": self.metadata, "builder_ref": self.builder_ref}


@dataclass
class ModelEntry(Entry):
    """A model architecture with its preprocessing and pretrained tags."""

    # tag -> loader(model) for weights registered through zoo_register_weights (never cached)
    loaders: dict[str, Callable[[Any], None]] = field(default_factory=dict, repr=False)
    _plugin_default: str | None = field(default=None, repr=False)

    def add_live_tag(self, tag: str, meta: dict[str, Any], loader: Callable[[Any], None],
                     default: bool = False) -> None:  # fmt: skip
        """A tag registered by ``zoo_register_weights``: validated metadata and the loader of its weights.

        It becomes the model's default only when the store says so (``zoo registry default``): a model never
        silently defaults to whatever was trained last."""
        if not self.loaders:
            self._plugin_default = self.default_tag
        self.metadata.setdefault("pretrained", {})[tag] = meta
        self.loaders[tag] = loader
        if default:
            self.metadata["default_tag"] = tag

    def drop_live_tags(self) -> None:
        """Forget the tags ``add_live_tag`` added (before the weights hooks run again)."""
        if not self.loaders:
            return
        for tag in self.loaders:
            self.pretrained.pop(tag, None)
        self.loaders.clear()
        self.metadata["default_tag"] = self._plugin_default

    @property
    def family(self) -> str:
        return self.metadata.get("family", "")

    @property
    def pretrained(self) -> dict[str, dict[str, Any]]:
        return self.metadata.get("pretrained", {})

    @property
    def default_tag(self) -> str | None:
        return self.metadata.get("default_tag")

    @property
    def input_size(self) -> tuple[int, int, int]:
        return tuple(self.metadata.get("input_size", (3, 224, 224)))  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return int(self.metadata.get("num_classes", 1000))

    @property
    def takes_input_size(self) -> bool:
        """The builder takes ``input_size=(H, W)`` and sizes its classifier to it (declared by the plugin)."""
        return bool(self.metadata.get("takes_input_size"))

    def ref(self, tag: str | None = None) -> ModelRef:
        """The qualified name of this model, or of one of its tags, as a parsed name."""
        return ModelRef(name=self.name, plugin=self.plugin, tag=tag)

    def tag_defaults(self) -> dict[str, Any]:
        """What a tag of this model inherits when its metadata leaves it out."""
        return {k: self.metadata.get(k) for k in ("num_classes", "input_size", "mean", "std")}


def validate_model_metadata(name: str, builder: Any, metadata: dict[str, Any]) -> dict[str, Any]:
    """Check what a plugin registered and return normalised, JSON-able metadata."""
    if not isinstance(name, str) or not NAME_RE.match(name) or len(name) > NAME_MAX:
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '_' and '-', at most {NAME_MAX} "
                         "characters")  # fmt: skip
    if not callable(builder):
        raise ValueError(f"model {name!r}: builder must be callable, got {type(builder).__name__}")
    unknown = set(metadata) - MODEL_KEYS
    if unknown:
        raise ValueError(f"model {name!r}: unknown metadata keys {sorted(unknown)}")
    meta: dict[str, Any] = {
        "family": str(metadata.get("family", "")),
        "description": str(metadata.get("description", "")),
        "input_size": _size3(name, "input_size", metadata.get("input_size", (3, 224, 224))),
        "mean": _floats(name, "mean", metadata.get("mean", IMAGENET_MEAN)),
        "std": _floats(name, "std", metadata.get("std", IMAGENET_STD)),
        "num_classes": int(metadata.get("num_classes", 1000)),
    }
    if meta["num_classes"] < 1:
        raise ValueError(f"model {name!r}: num_classes must be positive")
    if metadata.get("min_input_size") is not None:
        meta["min_input_size"] = _size3(name, "min_input_size", metadata["min_input_size"])
    for flag in ("takes_input_size", "takes_features_only"):
        if metadata.get(flag):
            meta[flag] = True
    if metadata.get("gradcam_layer") is not None:
        if not isinstance(metadata["gradcam_layer"], str) or not metadata["gradcam_layer"]:
            raise ValueError(f"model {name!r}: gradcam_layer must be a module name such as 'features.7'")
        meta["gradcam_layer"] = metadata["gradcam_layer"]
    # Counts of the model as create_model(name) builds it, at input_size: `zoo list` then counts nothing.
    for key, kind in (("num_params", int), ("gmacs", (int, float))):
        value = metadata.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
                raise ValueError(f"model {name!r}: {key} must be a positive number, got {value!r}")
            meta[key] = value
    pretrained = metadata.get("pretrained") or {}
    if not isinstance(pretrained, dict):
        raise ValueError(f"model {name!r}: pretrained must be a dict of tag -> metadata")
    defaults = {k: meta[k] for k in ("num_classes", "input_size", "mean", "std")}
    tags = {tag: validate_tag(name, tag, tag_meta, defaults) for tag, tag_meta in pretrained.items()}
    meta["pretrained"] = tags
    default_tag = metadata.get("default_tag")
    if default_tag is None and tags:
        default_tag = next(iter(tags))
    if default_tag is not None and default_tag not in tags:
        raise ValueError(f"model {name!r}: default_tag {default_tag!r} is not one of its tags")
    meta["default_tag"] = default_tag
    return meta


def _size3(name: str, key: str, value: Any) -> list[int]:
    try:
        size = [int(v) for v in value]
    except (TypeError, ValueError):
        size = []
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"model {name!r}: {key} must be (channels, height, width), got {value!r}")
    return size


def _floats(name: str, key: str, value: Any) -> list[float]:
    try:
        return [float(v) for v in value]
    except (TypeError, ValueError):
        raise ValueError(f"model {name!r}: {key} must be a sequence of numbers") from None


# -- the catalogue ---------------------------------------------------------------------------------


class Catalogue:
    """Entries by kind, in plugin precedence order, with bare and qualified name lookup."""

    KINDS = ("model", "dataset", "trainer", "command", "recipe")

    def __init__(self, plugin_order: list[str]) -> None:
        self.plugin_order = plugin_order
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in self.KINDS}
        self._bare: dict[str, dict[str, Entry]] | None = None

    def add(self, kind: str, entry: Entry) -> None:
        self.entries[kind][entry.qualified] = entry
        self._bare = None

    def _rank(self, plugin: str) -> int:
        return self.plugin_order.index(plugin) if plugin in self.plugin_order else len(self.plugin_order)

    def all(self, kind: str) -> list[Entry]:
        """Entries sorted by bare name, then precedence."""
        return sorted(self.entries[kind].values(), key=lambda e: (e.name, self._rank(e.plugin)))

    def bare(self, kind: str) -> dict[str, Entry]:
        """Bare name -> the entry that name means."""
        if self._bare is None:
            self._bare = {k: {} for k in self.KINDS}
            for k in self.KINDS:
                for entry in self.all(k):
                    self._bare[k].setdefault(entry.name, entry)
        return self._bare[kind]

    def is_default(self, kind: str, entry: Entry) -> bool:
        return self.bare(kind).get(entry.name) is entry

    def display_name(self, kind: str, entry: Entry) -> str:
        """The shortest name that means ``entry``: bare where the bare name means it, else qualified."""
        return entry.name if self.is_default(kind, entry) else entry.qualified

    def display_ref(self, model: str, tag: str | None) -> str:
        """``name.tag`` for a model given by any name, qualified only where the bare name means another."""
        entry = self.get("model", model)
        return self.display_name("model", entry) + (f".{tag}" if tag else "")

    def get(self, kind: str, name: str) -> Entry:
        """Look up ``name`` or ``plugin:name``; unknown names raise with the closest matches."""
        plugin, _ = split_qualified(name)
        entry = self.entries[kind].get(name) if plugin is not None else self.bare(kind).get(name)
        if entry is None:
            raise UnknownNameError(kind, name, self.suggest(kind, name))
        return entry

    def suggest(self, kind: str, name: str, n: int = 3) -> list[str]:
        names = list(self.bare(kind)) + list(self.entries[kind])
        base = split_qualified(name)[1]
        return difflib.get_close_matches(name, names, n=n, cutoff=0.6) or difflib.get_close_matches(
            base, names, n=n, cutoff=0.6
        )

    def find(self, kind: str, patterns: Iterable[str] = (), plugin: str | None = None) -> list[Entry]:
        """Entries whose bare or qualified name matches any wildcard pattern (all when none given)."""
        patterns = list(patterns)
        found = []
        for entry in self.all(kind):
            if plugin is not None and entry.plugin != plugin:
                continue
            if patterns and not any(
                fnmatch.fnmatchcase(entry.name, p) or fnmatch.fnmatchcase(entry.qualified, p) for p in patterns
            ):
                continue
            found.append(entry)
        return found
