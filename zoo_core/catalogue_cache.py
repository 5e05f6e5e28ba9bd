"""The catalogue metadata cache: what each plugin registered, kept as JSON so that a warm command imports no
plugin, torch or timm.

Two files per plugin under ``$ZOO_CACHE/catalogue``: ``<plugin>-<key>.json`` (models, datasets, trainers) and
``<plugin>-<key>.summary.json`` (hooks, command names and help: all that ``zoo --help`` reads). The key hashes
the plugin's distribution, its version, its requirements' installed versions and its module's mtime (for a
package, also its newest ``.py`` or ``.json`` file: an editable install changes in place). A file that is missing,
unreadable or of the wrong shape reads as None, and the host rebuilds it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sys
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from zoo_core import entry_points
from zoo_core.atomic_io import atomic_write_json
from zoo_core.entry_points import EntryPoint
from zoo_core.environment import package_version
from zoo_core.paths import cache_dir

CACHE_SCHEMA = 4  # the files' shape; part of every key
SUFFIXES = {"entries": ".json", "summary": ".summary.json"}


class CatalogueCache:
    """Reads and writes the cached parts of each plugin; each plugin's key is worked out once per process."""

    def __init__(self, entry_kinds: Collection[str]) -> None:
        self.entry_kinds = frozenset(entry_kinds)  # the kinds an entries file may hold
        self._keys: dict[str, str] = {}
        self._requirements: dict[str, list[Any]] = {}  # distribution -> its requirements' versions
        self._warned = False

    def key(self, ep: EntryPoint) -> str:
        """The key of the plugin's cached metadata: other caches of what a plugin registered use it too."""
        if ep.name not in self._keys:
            self._keys[ep.name] = self._work_out_key(ep)
        return self._keys[ep.name]

    def path(self, ep: EntryPoint, part: str) -> Path:
        return cache_dir() / "catalogue" / f"{ep.name}-{self.key(ep)}{SUFFIXES[part]}"

    def read(self, ep: EntryPoint, part: str) -> dict[str, Any] | None:
        """The cached part (``entries`` or ``summary``), or None when it is missing, unreadable or misshapen."""
        try:
            with open(self.path(ep, part), encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError):
            return None
        return data if self._valid(data, part) else None

    def read_shipped(self, ep: EntryPoint, part: str) -> dict[str, Any] | None:
        """The part as zoo ships it for a built-in plugin (``zoo_core.shipped``), saved as this cache's own; None
        where none ships or it does not fit this installation. A fresh install's first command imports no timm."""
        from zoo_core.shipped import catalogue_part  # only a cache miss pays for reading what ships

        data = catalogue_part(ep.name, ep.value, part)
        if data is None or not self._valid(data, part):
            return None
        self.write(ep, part, {k: v for k, v in data.items() if k != "schema"})
        return data

    def write(self, ep: EntryPoint, part: str, data: dict[str, Any]) -> None:
        """Write the part and remove the plugin's older files of that part."""
        path = self.path(ep, part)
        stale = re.compile(re.escape(ep.name) + r"-[0-9a-f]{16}" + re.escape(SUFFIXES[part]))
        try:
            for old in path.parent.glob(f"{ep.name}-*"):
                if old != path and stale.fullmatch(old.name):
                    old.unlink(missing_ok=True)
            atomic_write_json(path, {"schema": CACHE_SCHEMA, **data})
        except OSError as e:  # a read-only ZOO_HOME slows zoo down but does not break it
            if not self._warned:
                self._warned = True
                print(f"zoo: warning: cannot write the catalogue cache ({e.strerror or e}); zoo works, but more "
                      "slowly", file=sys.stderr)  # fmt: skip

    def _work_out_key(self, ep: EntryPoint) -> str:
        from zoo_core.version import __version__

        parts: list[Any] = [CACHE_SCHEMA, __version__, ep.name, ep.value, ep.dist, ep.version]
        if str(ep.dist) not in self._requirements:  # the built-in plugins share one distribution
            versions = []
            for req in ep.requires:
                if "extra ==" in req:
                    continue
                req_name = req.split(";")[0].split("[")[0]
                for sep in "<>=!~ ":
                    req_name = req_name.split(sep)[0]
                versions.append((req_name, package_version(req_name)))
            self._requirements[str(ep.dist)] = versions
        parts += self._requirements[str(ep.dist)]
        # An editable install changes code without changing its version: key on the module's mtime.
        top = ep.value.split(":")[0].split(".")[0]
        try:
            spec = importlib.util.find_spec(top) if top not in sys.modules else sys.modules[top].__spec__
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.origin and os.path.exists(spec.origin):
            parts.append(os.path.getmtime(spec.origin))
            if spec.submodule_search_locations:  # a package: an edit to any of its modules counts
                parts.append(_newest_source(spec.submodule_search_locations))
        return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]

    def _valid(self, data: Any, part: str) -> bool:
        if not isinstance(data, dict) or data.get("schema") != CACHE_SCHEMA:
            return False
        if part == "summary":
            hooks, commands = data.get("hooks"), data.get("commands")
            return (isinstance(hooks, list) and all(isinstance(h, str) for h in hooks)
                    and isinstance(commands, list) and all(_valid_row(r) for r in commands))  # fmt: skip
        entries = data.get("entries")
        return isinstance(entries, dict) and all(
            kind in self.entry_kinds and isinstance(rows, list) and all(_valid_row(r) for r in rows)
            for kind, rows in entries.items()
        )


def _valid_row(row: Any) -> bool:
    return (isinstance(row, dict) and isinstance(row.get("name"), str) and isinstance(row.get("metadata"), dict)
            and isinstance(row.get("builder_ref"), (dict, type(None))))  # fmt: skip


def _newest_source(folders: Iterable[str], limit: int = 500) -> float:
    """The newest mtime of a package's ``.py`` and ``.json`` files (the first ``limit`` of them, so that a plugin
    inside a huge package costs little): an edit to any module, or to data a hook registers (recipes), of an
    editable plugin shows at once."""
    newest, seen = 0.0, 0
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
            for name in sorted(f for f in files if f.endswith((".py", ".json"))):
                newest = max(newest, os.path.getmtime(os.path.join(root, name)))
                seen += 1
                if seen >= limit:
                    return newest
    return newest


def drop_cached(plugin_names: Iterable[str]) -> int:
    """Delete the cached metadata of these plugins, and the cached entry points (after an install or
    uninstall); how many plugin files went."""
    entry_points.drop_cached()
    names = "|".join(re.escape(n) for n in plugin_names)
    if not names:
        return 0
    pattern = re.compile(f"(?:{names})-[0-9a-f]{{16}}(?:\\.summary)?\\.json")
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
            removed += 1
    return removed
