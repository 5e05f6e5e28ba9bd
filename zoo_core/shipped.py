"""What zoo ships for its built-in cnn, torchvision and timm plugins, so a fresh install is fast: their
catalogue (``data/catalogue.json.gz``: what their hooks register, as the catalogue cache holds it) and their
models' parameter and GMAC counts (``data/model_stats.json``, read by ``stats_cache``). Both are written by
``benchmarks/model_stats.py``.

Shipped data describes one set of library releases and one version of the plugin's code. Each plugin's section
records that fingerprint, and a section is used only where it is this installation's: a new timm may add a
model or change one without renaming it, and an edited plugin registers something else.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"
CATALOGUE_PATH = DATA / "catalogue.json.gz"
CATALOGUE_SCHEMA = 1
# What each plugin's registrations and counts depend on besides its own code: torch counts the GMACs, and the
# models of torchvision and timm are in those libraries' releases.
LIBRARIES: dict[str, tuple[str, ...]] = {"cnn": ("torch",), "torchvision": ("torch", "torchvision"),
                                         "timm": ("torch", "timm")}  # fmt: skip


def release(version: str | None) -> str | None:
    """``2.4.1+cu121`` -> ``2.4.1``: a local build of a release counts the same."""
    return version.split("+")[0] if version else None


def source_digest(module: str) -> str | None:
    """A digest of the sources of the package (or module) that ``module`` (an entry point's value) lives in;
    None when it cannot be found. Edited code gives another digest, a wheel and an editable install the same."""
    top = module.split(":")[0].split(".")[0]
    try:
        spec = sys.modules[top].__spec__ if top in sys.modules else importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return None
    files: list[tuple[str, str]] = []
    for folder in spec.submodule_search_locations or []:
        for root, dirs, names in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith((".", "__pycache__"))]
            files += [(os.path.relpath(os.path.join(root, n), folder), os.path.join(root, n))
                      for n in names if n.endswith(".py")]  # fmt: skip
    if not files:
        files = [(os.path.basename(spec.origin), spec.origin)]
    digest = hashlib.sha256()
    try:
        for rel, path in sorted(files):
            with open(path, "rb") as f:
                digest.update(rel.replace(os.sep, "/").encode() + b"\0" + f.read() + b"\0")
    except OSError:
        return None
    return digest.hexdigest()[:16]


def fingerprint(module: str, libraries: Iterable[str]) -> dict[str, Any]:
    """What a plugin's shipped data depends on: the releases of ``libraries`` installed here and its code."""
    from zoo_core.environment import package_version

    return {"versions": {lib: release(package_version(lib)) for lib in libraries}, "source": source_digest(module)}


def matches(section: Any, module: str) -> bool:
    """Whether a plugin's shipped ``section`` was made from this installation's libraries and plugin code."""
    if not isinstance(section, dict) or section.get("module") != module:
        return False
    versions = section.get("versions")
    recorded = {"versions": versions, "source": section.get("source")}
    return isinstance(versions, dict) and fingerprint(module, versions) == recorded


@functools.cache
def _catalogue_sections(path: Path) -> dict[str, Any]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, EOFError):
        return {}
    plugins = data.get("plugins") if isinstance(data, dict) and data.get("schema") == CATALOGUE_SCHEMA else None
    return plugins if isinstance(plugins, dict) else {}


@functools.cache
def catalogue_part(plugin: str, module: str, part: str) -> dict[str, Any] | None:
    """The shipped catalogue cache ``part`` (``entries`` or ``summary``) of a built-in plugin, or None where
    zoo ships none for it or it was made from other library releases or other plugin code."""
    section = _catalogue_sections(CATALOGUE_PATH).get(plugin)
    if not matches(section, module):
        return None
    found = section.get(part)
    return found if isinstance(found, dict) else None


def write_catalogue(path: Path, sections: dict[str, dict[str, Any]]) -> None:
    """Write the shipped catalogue, byte for byte the same for the same content (no time in the gzip header)."""
    from zoo_core.atomic_io import atomic_write_bytes

    about = "The built-in plugins' catalogue cache rows, by plugin; written by benchmarks/model_stats.py"
    text = json.dumps({"schema": CATALOGUE_SCHEMA, "about": about, "plugins": sections}, sort_keys=True)
    atomic_write_bytes(path, gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    _catalogue_sections.cache_clear()
    catalogue_part.cache_clear()
