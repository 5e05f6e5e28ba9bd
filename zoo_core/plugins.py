"""The plugin host: finds plugins through the ``zoo.plugins`` entry points, loads each one in isolation,
hands every hook a host-owned ``register`` callback (or, for commands, a click group), and caches what each
plugin registered.

A plugin that fails to import, has an invalid hook or raises inside one (``SystemExit`` too) is reported
(one warning line, and by ``zoo plugins``) and skipped, and nothing it registered is kept;
``ZOO_STRICT_PLUGINS=1`` makes that an error instead. ``ZOO_PLUGINS=a,b`` loads only the named plugins.
``ZOO_TRACE_PLUGINS=1`` prints each import and hook call to stderr, with its time and what it registered.

zoo's own plugins are the entry points of the ``zoo`` distribution. They come first, both for bare-name
precedence and when a third-party distribution declares a plugin of the same name (the built-in always
keeps it); among themselves they are ranked by their module's ``ZOO_PRECEDENCE`` (lower first, default
100), then by name. Third-party plugins follow in alphabetical order.

The metadata cache is per plugin, keyed by the plugin's distribution, its version, its requirements'
versions and its module's mtime (for a package, also its newest ``.py`` file: an editable install changes in
place), in two files: ``<plugin>-<key>.json`` (models, datasets, trainers) and ``<plugin>-<key>.summary.json``
(hooks and command names), so ``zoo --help`` reads a few hundred bytes and a warm ``zoo list`` imports
neither torch nor timm. A plugin that failed is never cached.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from zoo_core import hookspecs
from zoo_core.atomic_io import atomic_write_json
from zoo_core.catalogue import Catalogue, Entry, ModelEntry, callable_ref, validate_model_metadata
from zoo_core.environment import package_version
from zoo_core.errors import PluginError, first_line
from zoo_core.isolation import run_plugin_code
from zoo_core.names import parse
from zoo_core.paths import cache_dir
from zoo_core.weights import validate_tag

ENTRY_POINT_GROUP = "zoo.plugins"
ZOO_DIST = "zoo"  # the distribution whose entry points are the built-in plugins
CACHE_SCHEMA = 2
ENTRY_HOOKS = {"zoo_register_models": "model", "zoo_register_datasets": "dataset", "zoo_register_trainers": "trainer"}
COMMAND_HOOK = "zoo_register_commands"
LIVE_HOOKS = ("zoo_register_weights",)
RESOLVE_HOOK = "zoo_resolve_model"
# The core's own commands, which no plugin may take; install, uninstall and plugin load no plugin at all.
CORE_COMMANDS = ("list", "info", "plugins", "cache", "install", "uninstall", "plugin")
DEFAULT_PRECEDENCE = 100
KEEP_ENTRY_POINT_FILES = 8
RACY_NS = 2_000_000_000  # a sys.path folder changed this recently: read the entry points afresh


@dataclass
class PluginInfo:
    """What ``zoo plugins`` shows about one plugin."""

    name: str
    module: str
    dist: str | None = None
    version: str | None = None
    builtin: bool = False
    precedence: int = DEFAULT_PRECEDENCE
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


def tracing() -> bool:
    return os.environ.get("ZOO_TRACE_PLUGINS", "").lower() in {"1", "true", "yes"}


def trace(plugin: str, what: str, seconds: float | None = None, detail: str = "") -> None:
    """One ``ZOO_TRACE_PLUGINS`` line on stderr: the plugin, the step, its time and what it gave."""
    took = f"{seconds * 1000:9.1f} ms" if seconds is not None else " " * 12
    print(f"zoo: trace: {plugin:<12} {what:<24} {took}  {detail}".rstrip(), file=sys.stderr)


def registered_summary(entries: Iterable[Entry]) -> str:
    """``2 models: a, b; 1 dataset: c`` (names shortened past a few)."""
    by_kind: dict[str, list[str]] = {}
    for e in entries:
        by_kind.setdefault(e.kind, []).append(e.name)
    parts = []
    for kind, names in by_kind.items():
        shown = ", ".join(names[:5]) + (f", ... ({len(names) - 5} more)" if len(names) > 5 else "")
        parts.append(f"{len(names)} {kind}{'s' if len(names) != 1 else ''}: {shown}")
    return "; ".join(parts) or "nothing"


def enabled_names() -> set[str] | None:
    """The plugins ``ZOO_PLUGINS`` allows, or None when it allows all."""
    wanted = os.environ.get("ZOO_PLUGINS")
    return {n.strip() for n in wanted.split(",") if n.strip()} if wanted else None


def precedence(infos: list[PluginInfo]) -> list[str]:
    """Plugin names in bare-name precedence order: built-ins by their declared rank, then the others by name."""
    return [i.name for i in sorted(infos, key=lambda i: (not i.builtin, i.precedence if i.builtin else 0, i.name))]


@dataclass
class EntryPoint:
    """A ``zoo.plugins`` entry point and what the host needs of its distribution. Kept in
    ``entry-points-<key>.json``, keyed by ``sys.path`` and each of its folders' mtime (installing or removing
    a distribution adds or removes a folder there; one changed in the last two seconds is read afresh), so a
    warm command neither imports importlib.metadata nor reads every distribution's ``entry_points.txt``:
    together a fifth of a warm ``zoo list``."""

    name: str
    value: str
    dist: str | None
    version: str | None
    requires: list[str]

    def load(self) -> Any:
        """The object ``module:attr`` names, as importlib.metadata's ``EntryPoint.load`` gives it."""
        module, _, attr = self.value.split("[")[0].partition(":")
        obj = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def _path_key() -> tuple[str, bool]:
    """(the key of ``sys.path`` as it is now, whether a folder of it changed too recently to trust its mtime:
    a file system's clock ticks coarsely, so a second install in the same tick would keep the mtime)."""
    stamps, recent = [], time.time_ns() - RACY_NS
    racy = False
    for folder in sys.path:
        where = os.path.abspath(folder or ".")
        try:
            mtime = os.stat(where).st_mtime_ns
        except OSError:
            mtime = None
        racy = racy or (mtime is not None and mtime > recent)
        stamps.append((where, mtime))
    key = hashlib.sha256(json.dumps([CACHE_SCHEMA, ENTRY_POINT_GROUP, stamps]).encode()).hexdigest()[:16]
    return key, racy


def find_entry_points(use_cache: bool = True) -> list[EntryPoint]:
    """The ``zoo.plugins`` entry points of the installed distributions (the first of a name on the path)."""
    key, racy = _path_key()
    use_cache = use_cache and not racy
    path = cache_dir() / "catalogue" / f"entry-points-{key}.json"
    if use_cache:
        try:
            with open(path, encoding="utf-8") as f:
                return [EntryPoint(**row) for row in json.load(f)["entry_points"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    import importlib.metadata as md

    found, dists = [], {}  # each read of a name, version or requirements parses METADATA
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        if id(dist) not in dists:
            meta = dist.metadata if dist is not None else None
            dists[id(dist)] = (meta["Name"], meta["Version"], list(dist.requires or [])) if meta else (None, None, [])
        name, version, requires = dists[id(dist)]
        found.append(EntryPoint(ep.name, ep.value, name, version, requires))
    if use_cache:
        try:
            atomic_write_json(path, {"entry_points": [asdict(ep) for ep in found]})
            # One file per sys.path seen (the `zoo` script's, `python -m zoo_core`'s, a venv's): the newest few.
            older = sorted(path.parent.glob("entry-points-*.json"), key=lambda f: f.stat().st_mtime, reverse=True)
            for old in older[KEEP_ENTRY_POINT_FILES:]:
                old.unlink(missing_ok=True)
        except OSError:  # a read-only cache: slower, not broken (the catalogue cache warns about it)
            pass
    return found


class PluginHost:
    """Owns the pluggy manager and the catalogue built from every plugin."""

    def __init__(self, use_cache: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.use_cache = use_cache
        self.infos: dict[str, PluginInfo] = {}
        self.plugin_list: list[PluginInfo] = []
        self._eps: dict[str, EntryPoint] = {}
        self._modules: dict[str, Any] = {}
        self._entries_loaded = False
        self._cache_warned = False
        self._keys: dict[str, str] = {}  # plugin -> cache key, worked out once per process
        self._requirements: dict[str, list[Any]] = {}  # distribution -> its requirements' versions
        self.catalogue = Catalogue([])

    # -- discovery ---------------------------------------------------------------------------------

    def discover(self) -> list[PluginInfo]:
        allow = enabled_names()
        eps = find_entry_points(self.use_cache)
        # Built-ins first, so that a third-party distribution can never take a built-in plugin's name.
        eps.sort(key=lambda ep: ep.dist != ZOO_DIST)
        infos: list[PluginInfo] = []
        for ep in eps:
            info = PluginInfo(name=ep.name, module=ep.value, dist=ep.dist, version=ep.version,
                              builtin=ep.dist == ZOO_DIST)  # fmt: skip
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
        self.plugin_list = infos
        return infos

    # -- loading -----------------------------------------------------------------------------------

    def load(self, entries: bool = True) -> Catalogue:
        """Discover every plugin and fill the catalogue from the cache where it is fresh.

        ``entries=False`` loads only what the command line needs (hooks and command names); the models,
        datasets and trainers follow on the next ``load()``.
        """
        if not self.plugin_list:
            infos = self.discover()
            for info in self._in_order(infos):
                if info.status == "error":
                    self._fail(info, None)
                elif info.status == "ok":
                    summary = self._read_cache(info, "summary") if self.use_cache else None
                    if summary is None:
                        self._load_live(info)
                    else:
                        if tracing():
                            trace(info.name, "cached (no hook called)", None, ", ".join(summary["hooks"]))
                        info.hooks, info.cached = summary["hooks"], True
                        info.precedence = summary["precedence"]
                        for row in summary["commands"]:
                            self._add_cached("command", info, row)
            self.catalogue.plugin_order = precedence([i for i in infos if i.status != "error"])
        if entries and not self._entries_loaded:
            self._entries_loaded = True
            for info in self._in_order(self.plugin_list):
                if info.status != "ok" or not info.cached:
                    continue  # live-loaded plugins already added their entries
                cached = self._read_cache(info, "entries")
                if cached is None:
                    self._load_live(info)
                    continue
                for kind, rows in cached["entries"].items():
                    for row in rows:
                        self._add_cached(kind, info, row)
            self._run_live_hooks()
        return self.catalogue

    def _in_order(self, infos: list[PluginInfo]) -> list[PluginInfo]:
        order = self.catalogue.plugin_order
        return sorted(infos, key=lambda i: order.index(i.name) if i.name in order else len(order))

    def _import(self, info: PluginInfo) -> Any | None:
        """Import and register the plugin module; None (and the plugin marked failed) on any error."""
        if info.name in self._modules:
            return self._modules[info.name]
        began = time.perf_counter()
        try:
            module = self._eps[info.name].load()
            if tracing():
                trace(info.name, "import", time.perf_counter() - began, info.module)
            self.pm.register(module, name=info.name)
            callers = self.pm.get_hookcallers(module) or []
            unknown = sorted(h.name for h in callers if h.spec is None)
            if unknown:
                self.pm.unregister(module)
                raise pluggy.PluginValidationError(module, f"unknown hook(s) {', '.join(unknown)}")
            hooks = sorted(h.name for h in callers)
            rank = getattr(module, "ZOO_PRECEDENCE", DEFAULT_PRECEDENCE)
            if isinstance(rank, bool) or not isinstance(rank, int):
                raise TypeError(f"ZOO_PRECEDENCE must be an integer, got {rank!r}")
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a broken plugin must not break zoo
            self._fail(info, e, "import")
            return None
        info.hooks, info.precedence = hooks, rank
        self._modules[info.name] = module
        return module

    def _load_live(self, info: PluginInfo) -> None:
        """Import the plugin, run its registration hooks, add what they registered and cache it."""
        module = self._import(info)
        if module is None:
            return
        info.cached = False
        collected: dict[str, list[Entry]] = {}
        for hook_name, kind in [*ENTRY_HOOKS.items(), (COMMAND_HOOK, "command")]:
            if hook_name in info.hooks:
                entries = self._collect(info, hook_name, kind)
                if entries is None:
                    return  # the plugin failed: none of what it registered is kept
                collected[kind] = entries
        for kind, entries in collected.items():
            for entry in entries:
                self.catalogue.add(kind, entry)
        if self.use_cache:
            rows = {kind: [e.to_cache() for e in entries] for kind, entries in collected.items()}
            self._write_cache(info, "entries", {"entries": {k: v for k, v in rows.items() if k != "command"}})
            self._write_cache(info, "summary", {"hooks": info.hooks, "precedence": info.precedence,
                                                "commands": rows.get("command", [])})  # fmt: skip

    def _collect(self, info: PluginInfo, hook_name: str, kind: str) -> list[Entry] | None:
        """Run one registration hook of the plugin; its entries, or None when it failed."""
        collected: list[Entry] = []
        if kind == "command":
            import click

            group = click.Group("zoo")
            if not self._call(info, hook_name, lambda: f"commands: {', '.join(group.commands) or 'none'}", cli=group):
                return None
            try:
                for name, command in group.commands.items():
                    if name in CORE_COMMANDS:
                        raise ValueError(f"command name '{name}' is reserved by zoo itself")
                    entry = Entry(name, info.name, {"help": command.get_short_help_str(limit=80)}, kind=kind)
                    entry._builder = command
                    collected.append(entry)
            except ValueError as e:
                self._fail(info, e, hook_name)
                return None
            return collected
        register = self._register_callback(kind, info, collected)
        if not self._call(info, hook_name, lambda: registered_summary(collected), register=register):
            return None
        return collected

    def _call(self, info: PluginInfo, hook_name: str, registered: Callable[[], str] | None = None,
              **kwargs: Any) -> bool:  # fmt: skip
        """Run the plugin's implementation of one hook; ``registered`` describes what it registered (traces)."""
        module = self._modules[info.name]
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.plugin is not module:
                continue
            began = time.perf_counter()
            try:
                impl.function(**kwargs)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - sys.exit in a hook must not end zoo
                if tracing():
                    raised = first_line(e, typed=True, limit=120)
                    trace(info.name, hook_name, time.perf_counter() - began, f"raised {raised}")
                self._fail(info, e, hook_name)
                return False
            if tracing():
                trace(info.name, hook_name, time.perf_counter() - began, registered() if registered else "")
        return True

    def _fail(self, info: PluginInfo, exc: BaseException | None, where: str = "") -> None:
        if exc is not None:
            msg = first_line(exc, typed=True)
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
                entry: Entry = ModelEntry(name, info.name, meta, kind=kind)
            else:
                if not isinstance(name, str) or not name or not callable(builder):
                    raise ValueError(f"invalid {kind} registration {name!r}: need a name and a callable")
                try:
                    json.dumps(metadata)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{kind} {name!r}: metadata is not JSON-able ({e})") from None
                entry = Entry(name, info.name, dict(metadata), kind=kind)
            if name in seen:
                raise ValueError(f"{kind} {name!r} registered twice by plugin '{info.name}'")
            seen.add(name)
            entry._builder = builder
            entry.builder_ref = callable_ref(builder)
            out.append(entry)

        return register

    def _add_cached(self, kind: str, info: PluginInfo, row: dict[str, Any]) -> None:
        cls = ModelEntry if kind == "model" else Entry
        entry = cls(row["name"], info.name, row["metadata"], row.get("builder_ref"), kind=kind)
        entry._load_builder = self._live_builder
        self.catalogue.add(kind, entry)

    def _live_builder(self, entry: Entry) -> Callable[..., Any]:
        """A builder with no importable reference (a lambda, a click command): run the hook again."""
        info = self.infos[entry.plugin]
        if self._import(info) is None:
            raise PluginError(f"plugin '{info.name}' cannot be loaded: {'; '.join(info.errors)}")
        hook = COMMAND_HOOK if entry.kind == "command" else next(h for h, k in ENTRY_HOOKS.items() if k == entry.kind)
        collected = self._collect(info, hook, entry.kind)
        if collected is None:
            raise PluginError(f"plugin '{info.name}' failed: {'; '.join(info.errors)}")
        for e in collected:
            if e.name == entry.name:
                return e.builder
        raise PluginError(f"plugin '{info.name}' no longer registers {entry.kind} '{entry.name}'; "
                          "run `zoo cache clear`")

    def disabled_owner(self, command: str) -> str | None:
        """The switched-off plugin (ZOO_PLUGINS) that would provide ``command``, if any."""
        for info in self.plugin_list:
            if info.status != "disabled":
                continue
            summary = self._read_cache(info, "summary")
            if summary is not None:
                names = {row["name"] for row in summary["commands"]}
            else:  # never loaded here: ask its hook, without registering the plugin
                import click

                group = click.Group("zoo")
                try:
                    hook = getattr(self._eps[info.name].load(), COMMAND_HOOK, None)
                    if hook is not None:
                        hook(cli=group)
                except (Exception, SystemExit):  # noqa: BLE001 - only a hint is at stake
                    continue
                names = set(group.commands)
            if command in names:
                return info.name
        return None

    # -- weights registered on every run ---------------------------------------------------------------

    def _run_live_hooks(self) -> None:
        for info in self._in_order(self.plugin_list):
            if info.status == "ok" and any(h in info.hooks for h in LIVE_HOOKS) and self._import(info) is not None:
                self._run_weights_hook(info)

    def _run_weights_hook(self, info: PluginInfo) -> None:
        pending: list[tuple[ModelEntry, str, Callable[[Any], None], dict[str, Any], bool]] = []

        def register(model: str, tag: str, loader: Callable[[Any], None], *, default: bool = False,
                     **metadata: Any) -> None:  # fmt: skip
            ref = parse(model)
            if ref.is_source or ref.tag is not None or ref.version is not None:
                raise ValueError(f"weights of {model!r}: name the model as [plugin:]name and the tag apart")
            if ref.plugin is not None and self.infos.get(ref.plugin) is not None \
                    and self.infos[ref.plugin].status == "disabled":  # fmt: skip
                return  # weights of a model whose plugin is switched off on purpose: nothing to say
            entry = self.catalogue.get("model", ref.model)
            if not callable(loader):
                raise ValueError(f"weights {model}.{tag}: loader must be callable")
            meta = validate_tag(entry.qualified, tag, metadata, entry.tag_defaults())
            what = f"loading weights {entry.qualified}.{tag}"
            pending.append((entry, tag, functools.partial(run_plugin_code, info.name, what, loader), meta, default))

        def described() -> str:
            return f"{len(pending)} weights" + "".join(f"{', ' if i else ': '}{e.name}.{t}"
                                                     for i, (e, t, _, _) in enumerate(pending))  # fmt: skip

        for hook_name in LIVE_HOOKS:
            if hook_name in info.hooks and not self._call(info, hook_name, described, register=register):
                return  # a hook that raised keeps nothing it registered
        for entry, tag, loader, meta, default in pending:
            entry.add_live_tag(tag, meta, loader, default)

    def knows_plugin(self, name: str) -> bool:
        """Whether ``name`` is a plugin's (loaded, failed or switched off): ``name:model`` means its model."""
        return name in self.infos

    def resolve_name(self, name: str, ref: Any = None) -> str | None:
        """Ask the plugins' ``zoo_resolve_model`` hooks, in precedence order, for the catalogue name of a
        source name or a version (``zoo_core.resolve`` decides which names go here); None when none answers."""
        for info in self._in_order(self.plugin_list):
            if info.status != "ok" or RESOLVE_HOOK not in info.hooks:
                continue
            module = self._import(info)
            if module is None:
                continue
            for impl in getattr(self.pm.hook, RESOLVE_HOOK).get_hookimpls():
                if impl.plugin is not module:
                    continue
                args = {k: v for k, v in {"name": name, "ref": ref}.items() if k in impl.argnames}
                answer = run_plugin_code(info.name, f"resolving model name '{name}'", impl.function, **args)
                if answer is not None and not isinstance(answer, str):
                    raise PluginError(f"plugin '{info.name}' resolved '{name}' to {answer!r}, not a model name")
                if answer:
                    return answer
        return None

    def refresh_weights(self) -> None:
        """Run the weights hooks again (after a publish or a removal), on this same catalogue."""
        if not self._entries_loaded:
            return
        for entry in self.catalogue.entries["model"].values():
            entry.drop_live_tags()  # type: ignore[attr-defined]
        self._run_live_hooks()

    # -- the cache -----------------------------------------------------------------------------------

    def _cache_path(self, info: PluginInfo, part: str) -> Path:
        suffix = ".summary.json" if part == "summary" else ".json"
        return cache_dir() / "catalogue" / f"{info.name}-{self._cache_key(info)}{suffix}"

    def requires(self, plugin: str) -> list[str]:
        """The ``Requires-Dist`` lines of the plugin's distribution."""
        return list(self._eps[plugin].requires)

    def cache_key(self, plugin: str) -> str:
        """The key of the plugin's cached metadata: other caches of what a plugin registered use it too."""
        return self._cache_key(self.infos[plugin])

    def _cache_key(self, info: PluginInfo) -> str:
        if info.name not in self._keys:
            self._keys[info.name] = self._work_out_cache_key(info)
        return self._keys[info.name]

    def _work_out_cache_key(self, info: PluginInfo) -> str:
        from zoo_core.version import __version__

        parts: list[Any] = [CACHE_SCHEMA, __version__, info.name, info.module, info.dist, info.version]
        if str(info.dist) not in self._requirements:  # the built-in plugins share one distribution
            versions = []
            for req in self._eps[info.name].requires:
                if "extra ==" in req:
                    continue
                req_name = req.split(";")[0].split("[")[0]
                for sep in "<>=!~ ":
                    req_name = req_name.split(sep)[0]
                versions.append((req_name, package_version(req_name)))
            self._requirements[str(info.dist)] = versions
        parts += self._requirements[str(info.dist)]
        # An editable install changes code without changing its version: key on the module's mtime.
        top = info.module.split(":")[0].split(".")[0]
        try:
            spec = importlib.util.find_spec(top) if top not in sys.modules else sys.modules[top].__spec__
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and os.path.exists(spec.origin):
            parts.append(os.path.getmtime(spec.origin))
            if spec.submodule_search_locations:  # a package: an edit to any of its modules counts
                parts.append(_newest_source(spec.submodule_search_locations))
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]

    def _read_cache(self, info: PluginInfo, part: str) -> dict[str, Any] | None:
        """The cached part, or None when it is missing, unreadable or not of the expected shape."""
        try:
            with open(self._cache_path(info, part), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if _valid_cache(data, part) else None

    def _write_cache(self, info: PluginInfo, part: str, data: dict[str, Any]) -> None:
        path = self._cache_path(info, part)
        stale = re.compile(re.escape(info.name) + r"-[0-9a-f]{16}" + re.escape(path.name[len(info.name) + 17 :]))
        try:
            for old in path.parent.glob(f"{info.name}-*"):
                if old != path and stale.fullmatch(old.name):
                    old.unlink(missing_ok=True)
            atomic_write_json(path, {"schema": CACHE_SCHEMA, **data})
        except OSError as e:  # a read-only ZOO_HOME slows zoo down but does not break it
            if not self._cache_warned:
                self._cache_warned = True
                print(f"zoo: warning: cannot write the catalogue cache ({e.strerror or e}); zoo works, but more "
                      "slowly", file=sys.stderr)  # fmt: skip


def _newest_source(folders: Iterable[str], limit: int = 500) -> float:
    """The newest mtime of a package's ``.py`` files (the first ``limit`` of them, so that a plugin inside a
    huge package costs little): an edit to any module of an editable plugin shows at once."""
    newest, seen = 0.0, 0
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
            for name in sorted(f for f in files if f.endswith(".py")):
                newest = max(newest, os.path.getmtime(os.path.join(root, name)))
                seen += 1
                if seen >= limit:
                    return newest
    return newest


def drop_cached(plugin_names: Iterable[str]) -> int:
    """Delete the catalogue cache files of these plugins (after an install or uninstall); how many went."""
    names = "|".join(re.escape(n) for n in plugin_names)
    if not names:
        return 0
    pattern = re.compile(f"(?:{names})-[0-9a-f]{{16}}(?:\\.summary)?\\.json|entry-points-[0-9a-f]{{16}}\\.json")
    removed = 0
    try:
        paths = list((cache_dir() / "catalogue").iterdir())
    except OSError:  # no cache yet
        return 0
    for path in paths:
        if pattern.fullmatch(path.name):
            try:
                path.unlink(missing_ok=True)
            except OSError:  # a read-only cache: its keys still change with what was installed
                continue
            removed += not path.name.startswith("entry-points-")
    return removed


def _valid_row(row: Any) -> bool:
    return (isinstance(row, dict) and isinstance(row.get("name"), str) and isinstance(row.get("metadata"), dict)
            and isinstance(row.get("builder_ref"), (dict, type(None))))  # fmt: skip


def _valid_cache(data: Any, part: str) -> bool:
    if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
        return False
    if part == "summary":
        hooks, commands, rank = data.get("hooks"), data.get("commands"), data.get("precedence")
        return (isinstance(hooks, list) and all(isinstance(h, str) for h in hooks) and isinstance(commands, list)
                and all(_valid_row(r) for r in commands) and isinstance(rank, int))  # fmt: skip
    entries = data.get("entries")
    return isinstance(entries, dict) and all(
        kind in ENTRY_HOOKS.values() and isinstance(rows, list) and all(_valid_row(r) for r in rows)
        for kind, rows in entries.items()
    )


_HOST: PluginHost | None = None


def get_host(refresh: bool = False, entries: bool = True) -> PluginHost:
    """The process-wide plugin host, loaded on first use (``entries=False``: command names only)."""
    global _HOST
    if _HOST is None or refresh:
        _HOST = PluginHost()
    _HOST.load(entries=entries)
    return _HOST


def get_catalogue(refresh: bool = False) -> Catalogue:
    return get_host(refresh).catalogue


def refresh_weights() -> None:
    """Published weights changed (a new tag, a removed one): register them again in this process."""
    if _HOST is not None:
        _HOST.refresh_weights()


def reset() -> None:
    """Forget the loaded plugins (tests; after installing a plugin in-process)."""
    global _HOST
    _HOST = None
