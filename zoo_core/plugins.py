"""The plugin host: finds plugins through the ``zoo.plugins`` entry points (``zoo_core.entry_points``), loads
each one in isolation, hands every hook a host-owned ``register`` callback (or, for commands, a click group),
and keeps what each plugin registered in the metadata cache (``zoo_core.catalogue_cache``).

A plugin that fails to import, has an invalid hook or raises inside one (``SystemExit`` too) is reported
(one warning line, and by ``zoo plugins``) and skipped, and nothing it registered is kept;
``ZOO_STRICT_PLUGINS=1`` makes that an error instead. ``ZOO_PLUGINS=a,b`` loads only the named plugins.
``ZOO_TRACE_PLUGINS=1`` prints each import and hook call to stderr, with its time and what it registered.
Stdout belongs to zoo: what a plugin prints while it is imported or its hooks run goes to stderr, and a
third-party plugin whose import and hooks take over two seconds is named in a warning.

zoo's own plugins are the entry points of the ``zoo`` distribution, ranked by ``BUILTIN_ORDER``; they come
first, both for bare-name precedence and when a third-party distribution declares a plugin of the same name
(the built-in keeps it). Third-party plugins follow in alphabetical order; ``add_plugin`` adds one in-process.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import pluggy

from zoo_core import hookspecs
from zoo_core.catalogue import Catalogue, Entry, ModelEntry, callable_ref, validate_model_metadata
from zoo_core.catalogue_cache import CatalogueCache
from zoo_core.entry_points import EntryPoint, find_entry_points
from zoo_core.errors import PluginError, first_line
from zoo_core.isolation import run_plugin_code
from zoo_core.names import parse
from zoo_core.weights import validate_tag

ZOO_DIST = "zoo"  # the distribution whose entry points are the built-in plugins
# The built-in plugins' precedence: a bare name means the first of these that has it (`resnet50` is
# torchvision's). A built-in missing here ranks after these; third-party plugins follow alphabetically.
BUILTIN_ORDER = ("cnn", "torchvision", "timm", "data", "train", "registry", "bench", "vision")
ENTRY_HOOKS = {"zoo_register_models": "model", "zoo_register_datasets": "dataset", "zoo_register_trainers": "trainer",
               "zoo_register_recipes": "recipe"}  # fmt: skip
COMMAND_HOOK = "zoo_register_commands"
LIVE_HOOKS = ("zoo_register_weights",)
RESOLVE_HOOK = "zoo_resolve_model"
# The core's own commands, which no plugin may take; install, uninstall and plugin load no plugin at all.
CORE_COMMANDS = ("list", "info", "plugins", "cache", "install", "uninstall", "plugin")
SLOW_LOAD_S = 2.0  # a third-party plugin whose import and hooks take longer is named in a warning


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
    load_seconds: float | None = None  # its import and hooks in this process; None when none ran

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["error"] = "; ".join(self.errors) or None
        d["load_seconds"] = None if self.load_seconds is None else round(self.load_seconds, 3)
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
    """Plugin names in bare-name precedence order: built-ins by ``BUILTIN_ORDER``, then the others by name."""

    def rank(info: PluginInfo) -> tuple[bool, int, str]:
        builtin = BUILTIN_ORDER.index(info.name) if info.name in BUILTIN_ORDER else len(BUILTIN_ORDER)
        return not info.builtin, builtin if info.builtin else 0, info.name

    return [i.name for i in sorted(infos, key=rank)]


@contextlib.contextmanager
def plugin_output() -> Iterator[None]:
    """Plugin code runs inside this: what it prints goes to stderr, so that stdout (``--json``) stays zoo's."""
    with contextlib.redirect_stdout(sys.stderr):
        yield


@dataclass
class InProcessPlugin(EntryPoint):
    """A plugin object added with ``add_plugin``: it loads as an entry point does, and is never cached."""

    plugin: Any = None

    def load(self) -> Any:
        return self.plugin


_IN_PROCESS: dict[str, InProcessPlugin] = {}


def add_plugin(plugin: Any, name: str) -> None:
    """Add ``plugin`` (a module, or any object with ``@hookimpl`` functions) as the third-party plugin ``name``
    of this process, as an installed distribution's entry point would: the same isolation, validation and
    precedence. Its catalogue is never cached (it has no version to key a cache on). For tests and notebooks."""
    if not isinstance(name, str) or not name or any(c in name for c in ":, ") or name in _IN_PROCESS:
        raise ValueError(f"cannot add a plugin named {name!r}: give a new name without ':', ',' or spaces")
    module = getattr(plugin, "__name__", None) or type(plugin).__name__
    _IN_PROCESS[name] = InProcessPlugin(name, str(module), None, None, [], plugin=plugin)
    reset()


def remove_plugin(name: str) -> None:
    """Take back a plugin that ``add_plugin`` added."""
    _IN_PROCESS.pop(name, None)
    reset()


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
        self._warned_slow: set[str] = set()
        self.cache = CatalogueCache(ENTRY_HOOKS.values())
        self.catalogue = Catalogue([])

    # -- discovery ---------------------------------------------------------------------------------

    def discover(self) -> list[PluginInfo]:
        allow = enabled_names()
        eps = [*find_entry_points(self.use_cache), *_IN_PROCESS.values()]
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
                    summary = self._read_cache(info, "summary")
                    if summary is None:
                        self._load_live(info)
                    else:
                        if tracing():
                            trace(info.name, "cached (no hook called)", None, ", ".join(summary["hooks"]))
                        info.hooks, info.cached = summary["hooks"], True
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
        self._warn_slow()
        return self.catalogue

    def _warn_slow(self) -> None:
        """Name each third-party plugin whose import and hooks took too long (zoo's own are known costs, paid
        once per version: timm's catalogue takes ~2 s to list)."""
        for info in self.plugin_list:
            took = info.load_seconds
            if took is not None and took > SLOW_LOAD_S and not info.builtin and info.name not in self._warned_slow:
                self._warned_slow.add(info.name)
                print(f"zoo: warning: plugin '{info.name}' took {took:.1f} s to load", file=sys.stderr)

    def _timed(self, info: PluginInfo, began: float) -> float:
        """Seconds since ``began``, counted into the plugin's load time."""
        took = time.perf_counter() - began
        info.load_seconds = (info.load_seconds or 0.0) + took
        return took

    def _in_order(self, infos: list[PluginInfo]) -> list[PluginInfo]:
        order = self.catalogue.plugin_order
        return sorted(infos, key=lambda i: order.index(i.name) if i.name in order else len(order))

    def _import(self, info: PluginInfo) -> Any | None:
        """Import and register the plugin module; None (and the plugin marked failed) on any error."""
        if info.name in self._modules:
            return self._modules[info.name]
        began = time.perf_counter()
        try:
            try:
                with plugin_output():
                    module = self._eps[info.name].load()
            finally:
                took = self._timed(info, began)
            if tracing():
                trace(info.name, "import", took, info.module)
            self.pm.register(module, name=info.name)
            callers = self.pm.get_hookcallers(module) or []
            unknown = sorted(h.name for h in callers if h.spec is None)
            if unknown:
                self.pm.unregister(module)
                raise pluggy.PluginValidationError(module, f"unknown hook(s) {', '.join(unknown)}")
            hooks = sorted(h.name for h in callers)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a broken plugin must not break zoo
            self._fail(info, e, "import")
            return None
        info.hooks = hooks
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
        if self._cacheable(info):
            rows = {kind: [e.to_cache() for e in entries] for kind, entries in collected.items()}
            self._write_cache(info, "entries", {"entries": {k: v for k, v in rows.items() if k != "command"}})
            self._write_cache(info, "summary", {"hooks": info.hooks, "commands": rows.get("command", [])})

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
                    entry = Entry(name, info.name, {"help": command.get_short_help_str(limit=sys.maxsize)}, kind=kind)
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
                with plugin_output():
                    impl.function(**kwargs)
            except (Exception, SystemExit) as e:  # noqa: BLE001 - sys.exit in a hook must not end zoo
                took = self._timed(info, began)
                if tracing():
                    raised = first_line(e, typed=True, limit=120, whole=True)
                    trace(info.name, hook_name, took, f"raised {raised}")
                self._fail(info, e, hook_name)
                return False
            took = self._timed(info, began)
            if tracing():
                trace(info.name, hook_name, took, registered() if registered else "")
        return True

    def _fail(self, info: PluginInfo, exc: BaseException | None, where: str = "") -> None:
        if exc is not None:
            msg = first_line(exc, typed=True, whole=True)
            info.errors.append(f"{where}: {msg}" if where else msg)
        info.status = "error"
        line = f"plugin '{info.name}' failed: {info.errors[-1] if info.errors else 'unknown error'}"
        if strict():
            raise PluginError(line) from exc
        print(f"zoo: warning: {line} (skipped; see `zoo plugins`)", file=sys.stderr)

    # -- registration --------------------------------------------------------------------------------

    def _register_callback(self, kind: str, info: PluginInfo, out: list[Entry]) -> Callable[..., None]:
        seen: set[str] = set()

        def once(name: str) -> None:
            if name in seen:
                raise ValueError(f"{kind} {name!r} registered twice by plugin '{info.name}'")
            seen.add(name)

        if kind == "recipe":  # data, not code: no builder to keep
            from zoo_core.recipes import validate_recipe  # only a plugin's live load registers recipes

            def register_recipe(name: str, **recipe: Any) -> None:
                entry = Entry(name, info.name, validate_recipe(name, recipe), kind=kind)
                once(name)
                out.append(entry)

            return register_recipe

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
            once(name)
            entry._builder = builder
            entry.builder_ref = callable_ref(builder)
            out.append(entry)

        return register

    def _add_cached(self, kind: str, info: PluginInfo, row: dict[str, Any]) -> None:
        cls = ModelEntry if kind == "model" else Entry
        # The entry's own metadata: a row may be the shipped catalogue's, which this process keeps and reuses,
        # and the weights hooks add their tags to an entry's ``pretrained``.
        metadata = dict(row["metadata"])
        if isinstance(metadata.get("pretrained"), dict):
            metadata["pretrained"] = dict(metadata["pretrained"])
        entry = cls(row["name"], info.name, metadata, row.get("builder_ref"), kind=kind)
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
                    with plugin_output():
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
                with plugin_output():
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

    def requires(self, plugin: str) -> list[str]:
        """The ``Requires-Dist`` lines of the plugin's distribution."""
        return list(self._eps[plugin].requires)

    def cache_key(self, plugin: str) -> str:
        """The key of the plugin's cached metadata: other caches of what a plugin registered use it too."""
        return self.cache.key(self._eps[plugin])

    def cached(self, plugin: str, part: str) -> dict[str, Any] | None:
        """The plugin's cached ``entries`` or ``summary`` as this cache holds it (None where it holds none)."""
        return self.cache.read(self._eps[plugin], part)

    def _cacheable(self, info: PluginInfo) -> bool:
        return self.use_cache and not isinstance(self._eps[info.name], InProcessPlugin)

    def _read_cache(self, info: PluginInfo, part: str) -> dict[str, Any] | None:
        if not self._cacheable(info):
            return None
        found = self.cache.read(self._eps[info.name], part)
        if found is None and info.builtin:
            found = self.cache.read_shipped(self._eps[info.name], part)
        return found

    def _write_cache(self, info: PluginInfo, part: str, data: dict[str, Any]) -> None:
        self.cache.write(self._eps[info.name], part, data)


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
