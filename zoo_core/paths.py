"""Where zoo keeps its files: every path root, under ``ZOO_HOME`` (default: the user cache directory)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from zoo_core.errors import UsageError


def _home() -> Path:
    try:
        return Path.home()
    except (RuntimeError, KeyError):  # no HOME and a uid with no passwd entry (some containers)
        raise UsageError("zoo cannot find a home directory for its files; set ZOO_HOME to a writable folder") from None


def zoo_home() -> Path:
    """The root of zoo's caches, runs and local registry of published weights."""
    env = os.environ.get("ZOO_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        base = _home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or _home() / "AppData" / "Local")
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) if xdg else _home() / ".cache"
    return base / "zoo"


def cache_dir() -> Path:
    """Caches zoo can rebuild at any time (catalogue metadata, decoded datasets); ``ZOO_CACHE`` moves them
    out of ``ZOO_HOME``."""
    env = os.environ.get("ZOO_CACHE")
    return Path(env).expanduser() if env else zoo_home() / "cache"


def runs_dir() -> Path:
    """Training runs: settings, status and checkpoints, one folder each."""
    return zoo_home() / "runs"


def registry_dir() -> Path:
    """The local registry of published weights."""
    return zoo_home() / "registry"


def downloads_dir() -> Path:
    """Datasets zoo downloads itself (when no ``--data-dir`` or ``$ZOO_DATA`` copy is given)."""
    return zoo_home() / "data"
