"""Finding the ``zoo.plugins`` entry points of the installed distributions, without importing any plugin.

The list is kept in ``$ZOO_CACHE/catalogue/entry-points-<key>.json``, keyed by ``sys.path`` and each of its
folders' mtime (installing or removing a distribution adds or removes a folder there; one changed in the last
two seconds is read afresh), so a warm command neither imports importlib.metadata nor reads every
distribution's ``entry_points.txt``: 13% of a warm ``zoo list``, 15% of ``zoo --help``
(benchmarks/results/entry_point_cache.json).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo_core.atomic_io import atomic_write_json
from zoo_core.paths import cache_dir

ENTRY_POINT_GROUP = "zoo.plugins"
SCHEMA = 1  # the shape of the cached list; part of its key
KEEP_FILES = 8  # one list per sys.path seen (the `zoo` script's, `python -m zoo_core`'s, a venv's): the newest few
RACY_NS = 2_000_000_000  # a sys.path folder changed this recently: read the entry points afresh
PREFIX = "entry-points-"


@dataclass
class EntryPoint:
    """A ``zoo.plugins`` entry point and what the host needs of its distribution."""

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


def path_key() -> tuple[str, bool]:
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
    key = hashlib.sha256(json.dumps([SCHEMA, ENTRY_POINT_GROUP, stamps]).encode()).hexdigest()[:16]
    return key, racy


def _folder() -> Path:
    return cache_dir() / "catalogue"


def find_entry_points(use_cache: bool = True) -> list[EntryPoint]:
    """The ``zoo.plugins`` entry points of the installed distributions (the first of a name on the path)."""
    key, racy = path_key()
    use_cache = use_cache and not racy
    path = _folder() / f"{PREFIX}{key}.json"
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
            older = sorted(path.parent.glob(f"{PREFIX}*.json"), key=lambda f: f.stat().st_mtime, reverse=True)
            for old in older[KEEP_FILES:]:
                old.unlink(missing_ok=True)
        except OSError:  # a read-only cache: slower, not broken (the catalogue cache warns about it)
            pass
    return found


def drop_cached() -> None:
    """Forget every cached list (after an install or uninstall, in case a folder's mtime did not move)."""
    try:
        paths = list(_folder().glob(f"{PREFIX}*.json"))
    except OSError:
        return
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:  # a read-only cache: its keys still change with what was installed
            continue
