"""Where zoo keeps its files: ``ZOO_HOME`` (default: the user cache directory)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def zoo_home() -> Path:
    """The root of zoo's caches and of its local registry of published weights."""
    env = os.environ.get("ZOO_HOME")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    elif os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "zoo"


def cache_dir() -> Path:
    """Caches zoo can rebuild at any time (catalogue metadata, decoded datasets); ``ZOO_CACHE``
    moves them out of ``ZOO_HOME``."""
    env = os.environ.get("ZOO_CACHE")
    return Path(env).expanduser() if env else zoo_home() / "cache"
