"""The plugin host: finds plugins through the ``zoo.plugins`` entry points, loads each one in
isolation, hands every hook a host-owned ``register`` callback, and caches what each plugin registered.

A plugin that fails to import, has an invalid hook or raises inside one is reported (one warning line,
and by ``zoo plugins``) and skipped; ``ZOO_STRICT_PLUGINS=1`` makes that an error instead.
``ZOO_PLUGINS=a,b`` loads only the named plugins.

The metadata cache is per plugin, keyed by the plugin's distribution, its version, its requirements'
versions and its module file's mtime, so a warm ``zoo list`` imports neither torch nor timm. A plugin
that failed is never cached and is retried on the next run.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata as md
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from zoo_core import hookspecs
from zoo_core.atomic_io import atomic_write_json
from zoo_core.catalogue import (
    Catalogue,
    Entry,
    ModelEntry,
    callable_ref,
    validate_model_metadata,
    validate_tag_metadata,
)
from zoo_core.errors import PluginError
from zoo_core.paths import cache_dir

ENTRY_POINT_GROUP = "zoo.plugins"
# Bare names resolve to the first plugin in this order that has them; third-party plugins follow.
BUILTIN_ORDER = ("cnn", "data", "train", "registry", "torchvision", "timm")
CACHE_SCHEMA = 1
CACHED_HOOKS = {"zoo_register_models": "model", "zoo_register_datasets": "dataset", "zoo_register_trainers": "trainer"}
LIVE_HOOKS = ("zoo_register_weights",)
ZOO_DIST = "zoo"


@dataclass
class PluginInfo:
    """What ``zoo plugins`` shows about one plugin."""

    name: str
    module: str
    dist: str | None = None
    version: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | error | disabled
    errors: list[str] = field(default_factory=list)
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["error"] = "; ".join(self.errors) or None
        return d


def strict() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


def precedence(infos: list[PluginInfo]) -> list[str]:
    """Plugin names in bare-name precedence order."""

    def rank(info: PluginInfo) -> tuple[int, str]:
        if info.builtin and info.name in BUILTIN_ORDER:
            return BUILTIN_ORDER.index(info.name), info.name
        return len(BUILTIN_ORDER), info.name

    return [i.name for i in sorted(infos, key=rank)]


class PluginHost:
    """Owns the pluggy manager and the catalogue built from every plugin."""

    def __init__(self, use_cache: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.use_cache = use_cache
        self.infos: dict[str, PluginInfo] = {}
        self.plugin_list: list[PluginInfo] = []
        self._eps: dict[str, md.EntryPoint] = {}
        self._modules: dict[str, Any] = {}
        self.catalogue = Catalogue([])

    # -- discovery ---------------------------------------------------------------------------------

    def discover(self) -> list[PluginInfo]:
        wanted = os.environ.get("ZOO_PLUGINS")
        allow = {n.strip() for n in wanted.split(",") if n.strip()} if wanted else None
        infos: list[PluginInfo] = []
        for ep in md.entry_points(group=ENTRY_POINT_GROUP):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                module=ep.value,
                dist=dist.name if dist else None,
                version=dist.version if dist else None,
                builtin=bool(dist and dist.name == ZOO_DIST),
            )
            other = self.infos.get(info.name)
            if other is not None:
                if other.dist == info.dist:  # the same distribution seen twice on sys.path
                    continue
                info.status = "error"
                info.errors.append(f"plugin name '{info.name}' is already taken by {other.dist}")
            else:
                if allow is not None and info.name not in allow:
                    info.status = "disabled"
                self.infos[info.name] = info
                self._eps[info.name] = ep
            infos.append(info)
        self.catalogue.plugin_order = precedence([i for i in infos if i.status != "error"])
        return infos

    # -- loading -----------------------------------------------------------------------------------

    def load(self) -> Catalogue:
        """Discover every plugin and fill the catalogue, from the cache where it is fresh."""
        infos = self.discover()
        order = self.catalogue.plugin_order
        for info in sorted(infos, key=lambda i: order.index(i.name) if i.name in order else len(order)):
            if info.status == "error":
                self._fail(info, None)
                continue
            if info.status == "disabled":
                continue
            cached = self._read_cache(info) if self.use_cache else None
            if cached is not None:
                info.hooks, info.cached = cached["hooks"], True
                for kind, rows in cached["entries"].items():
                    for row in rows:
                        self._add_cached(kind, info, row)
            else:
                self._load_live(info, write_cache=self.use_cache)
        # Weights may belong to any plugin's models, so they are registered once every model is known.
        for info in infos:
            if info.status == "ok" and any(h in info.hooks for h in LIVE_HOOKS):
                self._run_live_hooks(info)
        self.plugin_list = infos
        return self.catalogue

    def _import(self, info: PluginInfo) -> Any | None:
        """Import and register the plugin module; None (and the plugin marked failed) on any error."""
        if info.name in self._modules:
            return self._modules[info.name]
        try:
            module = self._eps[info.name].load()
            self.pm.register(module, name=info.name)
            callers = self.pm.get_hookcallers(module) or []
            unknown = sorted(h.name for h in callers if h.spec is None)
            if unknown:
                self.pm.unregister(module)
                raise pluggy.PluginValidationError(module, f"unknown hook(s) {', '.join(unknown)}")
            hooks = sorted(h.name for h in callers)
        except Exception as e:  # noqa: BLE001 - a broken plugin must not break zoo
            self._fail(info, e, "import")
            return None
        info.hooks = hooks
        self._modules[info.name] = module
        return module

    def _load_live(self, info: PluginInfo, write_cache: bool) -> None:
        module = self._import(info)
        if module is None:
            return
        rows: dict[str, list[dict[str, Any]]] = {}
        for hook_name, kind in CACHED_HOOKS.items():
            if hook_name not in info.hooks:
                continue
            collected: list[Entry] = []
            register = self._register_callback(kind, info, collected)
            if not self._call(info, hook_name, register):
                continue
            for entry in collected:
                self.catalogue.add(kind, entry)
            rows[kind] = [e.to_cache() for e in collected]
        if write_cache and info.status == "ok":
            self._write_cache(info, {"hooks": info.hooks, "entries": rows})

    def _call(self, info: PluginInfo, hook_name: str, register: Callable[..., Any]) -> bool:
        module = self._modules[info.name]
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.plugin is not module:
                continue
            try:
                impl.function(register=register)
            except Exception as e:  # noqa: BLE001
                self._fail(info, e, hook_name)
                return False
        return True

    def _fail(self, info: PluginInfo, exc: BaseException | None, where: str = "") -> None:
        if exc is not None:
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())  # one line, whatever the exception
            msg = msg if len(msg) <= 400 else msg[:397] + "..."
            info.errors.append(f"{where}: {msg}" if where else msg)
        info.status = "error"
        line = f"plugin '{info.name}' failed: {info.errors[-1] if info.errors else 'unknown error'}"
        if strict():
            raise PluginError(line) from exc
        print(f"zoo: warning: {line} (skipped; see `zoo plugins`)", file=sys.stderr)

    # -- registration --------------------------------------------------------------------------------

    def _register_callback(self, kind: str, info: PluginInfo, out: list[Entry]) -> Callable[..., None]:
        seen: set[str] = set()

        def register(name: str, builder: Callable[..., Any], **metadata: Any) -> None:
            if kind == "model":
                meta = validate_model_metadata(name, builder, metadata)
                entry: Entry = ModelEntry(name, info.name, meta)
            else:
                if not isinstance(name, str) or not name or not callable(builder):
                    raise ValueError(f"invalid {kind} registration {name!r}: need a name and a callable")
                try:
                    json.dumps(metadata)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{kind} {name!r}: metadata is not JSON-able ({e})") from None
                entry = Entry(name, info.name, dict(metadata))
            if name in seen:
                raise ValueError(f"{kind} {name!r} registered twice by plugin '{info.name}'")
            seen.add(name)
            entry._builder = builder
            entry.builder_ref = callable_ref(builder)
            out.append(entry)

        return register

    def _add_cached(self, kind: str, info: PluginInfo, row: dict[str, Any]) -> None:
        cls = ModelEntry if kind == "model" else Entry
        entry = cls(row["name"], info.name, row["metadata"], row.get("builder_ref"))
        entry._load_builder = lambda e, k=kind: self._live_builder(k, e)
        self.catalogue.add(kind, entry)

    def _live_builder(self, kind: str, entry: Entry) -> Callable[..., Any]:
        """A builder with no importable reference: run the plugin's hook again to get it."""
        info = self.infos[entry.plugin]
        if self._import(info) is None:
            raise PluginError(f"plugin '{info.name}' cannot be loaded: {'; '.join(info.errors)}")
        hook_name = next(h for h, k in CACHED_HOOKS.items() if k == kind)
        collected: list[Entry] = []
        if not self._call(info, hook_name, self._register_callback(kind, info, collected)):
            raise PluginError(f"plugin '{info.name}' failed: {'; '.join(info.errors)}")
        for e in collected:
            if e.name == entry.name:
                return e.builder
        raise PluginError(f"plugin '{info.name}' no longer registers {kind} '{entry.name}'; run `zoo cache clear`")

    def _run_live_hooks(self, info: PluginInfo) -> None:
        if self._import(info) is None:
            return

        def register(model: str, tag: str, loader: Callable[[Any], None], **metadata: Any) -> None:
            entry, _ = self.catalogue.resolve_model(model)
            if not callable(loader):
                raise ValueError(f"weights {model}.{tag}: loader must be callable")
            meta = validate_tag_metadata(entry.name, tag, metadata)
            tags = entry.metadata.setdefault("pretrained", {})
            default = entry.metadata.get("default_tag")
            # A model with no weights of its own defaults to its newest published tag.
            if default is None or (default in entry.loaders and str(meta.get("created", "")) >= str(
                tags[default].get("created", "")
            )):
                entry.metadata["default_tag"] = tag
            tags[tag] = meta
            entry.loaders[tag] = loader

        for hook_name in LIVE_HOOKS:
            if hook_name in info.hooks:
                self._call(info, hook_name, register)

    # -- the cache -----------------------------------------------------------------------------------

    def _cache_path(self, info: PluginInfo) -> Any:
        return cache_dir() / "catalogue" / f"{info.name}-{self._cache_key(info)}.json"

    def _cache_key(self, info: PluginInfo) -> str:
        from zoo_core import __version__

        parts: list[Any] = [CACHE_SCHEMA, __version__, info.name, info.module, info.dist, info.version]
        dist = getattr(self._eps[info.name], "dist", None)
        for req in (dist.requires if dist else None) or []:
            if "extra ==" in req:
                continue
            req_name = req.split(";")[0].split("[")[0]
            for sep in "<>=!~ ":
                req_name = req_name.split(sep)[0]
            parts.append((req_name, _version(req_name)))
        # An editable install changes code without changing its version: key on the module's mtime.
        top = info.module.split(":")[0].split(".")[0]
        spec = importlib.util.find_spec(top) if top not in sys.modules else sys.modules[top].__spec__
        if spec is not None and spec.origin and os.path.exists(spec.origin):
            parts.append(os.path.getmtime(spec.origin))
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]

    def _read_cache(self, info: PluginInfo) -> dict[str, Any] | None:
        try:
            with open(self._cache_path(info), encoding="utf-8") as f:
                data = json.load(f)
            return data if data.get("schema") == CACHE_SCHEMA else None
        except (OSError, ValueError):
            return None

    def _write_cache(self, info: PluginInfo, data: dict[str, Any]) -> None:
        path = self._cache_path(info)
        try:
            for old in path.parent.glob(f"{info.name}-*.json"):
                old.unlink(missing_ok=True)
            atomic_write_json(path, {"schema": CACHE_SCHEMA, **data})
        except OSError as e:  # a read-only ZOO_HOME slows zoo down but does not break it
            print(f"zoo: warning: cannot write the catalogue cache ({e})", file=sys.stderr)


@functools.cache
def _version(dist_name: str) -> str | None:
    try:
        return md.version(dist_name)
    except md.PackageNotFoundError:
        return None


_HOST: PluginHost | None = None


def get_host(refresh: bool = False) -> PluginHost:
    """The process-wide plugin host, loaded on first use."""
    global _HOST
    if _HOST is None or refresh:
        host = PluginHost()
        host.load()
        _HOST = host
    return _HOST


def get_catalogue(refresh: bool = False) -> Catalogue:
    return get_host(refresh).catalogue


def reset() -> None:
    """Forget the loaded plugins (tests; after installing a plugin in-process)."""
    global _HOST
    _HOST = None
