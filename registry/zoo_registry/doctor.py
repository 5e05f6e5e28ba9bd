"""``zoo doctor`` (``zoo registry verify``): re-hash every registry entry, check its config against its
weights, find what killed publishes left behind, and repair what can be repaired.

Repairs never destroy data someone may want: an entry whose weights or config are damaged is moved to
``registry/.quarantine/`` (out of the catalogue, still on disk); a lost model card is written again; a
replace killed between its two renames is finished; staging and trash leftovers of killed publishes and
removes are deleted; a default that names a tag which is gone is dropped.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import WeightsError, file_lock, utc_now
from zoo_registry.store import (
    CARD_FILE,
    DEFAULT_FILE,
    METRICS_FILE,
    WEIGHTS_FILE,
    _aside_dir,
    _lock_path,
    _recover,
    _subdirs,
    model_ref,
    read_default,
    read_entry,
    registry_root,
    stale_leftovers,
)

QUARANTINE, METRICS, CARD = "quarantine", "metrics", "card"  # what --fix does to an entry


@dataclass
class Problem:
    """Something wrong in the registry, and what ``--fix`` does (or did) about it."""

    path: Path
    what: str
    fix: str | None  # the repair, or None when there is none
    fixed: bool = False
    kind: str | None = None  # QUARANTINE, METRICS or CARD for an entry's problem

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "problem": self.what, "fix": self.fix, "fixed": self.fixed}


def _shape_problem(entry: Any) -> str | None:
    """Whether the model the config rebuilds has the weights' keys and shapes (None: it does, or its plugin
    is not installed to ask)."""
    import torch

    from zoo_core.plugin_api import ZooError, get_catalogue
    from zoo_registry.weights_file import describe_mismatch, tensor_shapes, unwrap

    try:
        catalogue_entry = get_catalogue().get("model", entry.model_name)
        with torch.device("meta"):
            model = catalogue_entry.build(**entry.config["model_kwargs"])
    except (ZooError, Exception):  # noqa: BLE001 - no plugin, or a builder that needs real tensors
        return None
    model_shapes = {k: tuple(v.shape) for k, v in unwrap(model).state_dict().items()}
    mismatch = describe_mismatch(tensor_shapes(entry.weights_path), model_shapes)
    return f"the weights do not fit the model its config.json rebuilds ({mismatch})" if mismatch else None


def check_entry(entry_dir: Path, rehash: bool = True, shapes: bool = True) -> list[Problem]:
    """What is wrong with one entry folder (nothing: an empty list). ``shapes`` also rebuilds the model on
    the meta device to compare the weights' shapes (it imports torch and the model's plugin)."""
    from zoo_registry.weights_file import sha256_file

    def damaged(what: str) -> list[Problem]:  # nothing else about the entry matters then
        return [Problem(entry_dir, what, "move it to registry/.quarantine/ (publish it again)", kind=QUARANTINE)]

    try:
        entry = read_entry(entry_dir)
    except FileNotFoundError:
        return damaged("config.json is missing: zoo cannot rebuild the model")
    except (OSError, ValueError) as e:
        return damaged(f"config.json is broken ({e})")
    weights = entry.weights_path
    if not weights.is_file():
        return damaged(f"{WEIGHTS_FILE} is missing")
    size, recorded = weights.stat().st_size, entry.config.get("size_bytes")
    if recorded is not None and size != recorded:
        return damaged(f"{WEIGHTS_FILE} is {size:,} bytes, {recorded:,} were published (truncated or replaced)")
    if rehash and sha256_file(weights) != entry.sha256:
        return damaged(f"{WEIGHTS_FILE} does not match its sha256 (corrupted or changed)")
    if shapes:
        try:
            shape_problem = _shape_problem(entry)
        except WeightsError as e:
            shape_problem = f"{WEIGHTS_FILE} is not a readable safetensors file ({e})"
        if shape_problem:
            return damaged(shape_problem)
    problems = []
    try:
        metrics = json.loads((entry_dir / METRICS_FILE).read_text(encoding="utf-8"))
        if not isinstance(metrics, dict):
            raise ValueError("not an object")
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        problems.append(Problem(entry_dir, f"metrics.json is broken ({e})", "write it again as {} with a new card",
                                kind=METRICS))  # fmt: skip
    if not (entry_dir / CARD_FILE).is_file():
        problems.append(Problem(entry_dir, "the model card README.md is missing", "write it again", kind=CARD))
    return problems


def _leftovers(root: Path) -> list[Problem]:
    return [Problem(child, f"left over: {what} before it finished", "delete it")
            for child, what in stale_leftovers(root)]  # fmt: skip


def examine(fix: bool = False, rehash: bool = True) -> list[Problem]:
    """Every problem of the local registry; with ``fix``, each one that can be repaired is (``fixed``)."""
    from zoo_core.plugin_api import refresh_weights

    root = registry_root()
    problems = _leftovers(root)
    if fix:
        for p in problems:
            shutil.rmtree(p.path, ignore_errors=True)
            p.fixed = not p.path.exists()
    for plugin_dir in _subdirs(root):
        for model_dir in _subdirs(plugin_dir):
            problems += _check_model(model_dir, fix, rehash)
    if fix and any(p.fixed for p in problems):
        refresh_weights()
    return problems


def _check_model(model_dir: Path, fix: bool, rehash: bool) -> list[Problem]:
    problems: list[Problem] = []
    names = set(os.listdir(model_dir))
    for name in sorted(names):
        if name.startswith(".") and name.endswith(".old"):
            entry_dir = model_dir / name[1:-4]
            how = "delete it" if entry_dir.is_dir() else "rename it back into place"
            p = Problem(model_dir / name, "a replace was killed between its two renames", how)
            if fix:
                with file_lock(_lock_path(entry_dir)):
                    _recover(entry_dir)
                p.fixed = not _aside_dir(entry_dir).exists()
            problems.append(p)
    for entry_dir in _subdirs(model_dir):
        found = check_entry(entry_dir, rehash)
        if fix and found:
            with file_lock(_lock_path(entry_dir)):
                _repair(entry_dir, found)
        problems += found
    default = model_dir / DEFAULT_FILE
    if default.is_file():
        tag = read_default(model_dir)
        if tag is None or not (model_dir / tag).is_dir():
            what = f"the default tag {tag!r} is not published any more" if tag else "it names no valid tag"
            p = Problem(default, what, "drop the default")
            if fix:
                default.unlink(missing_ok=True)
                p.fixed = True
            problems.append(p)
    return problems


def _repair(entry_dir: Path, problems: list[Problem]) -> None:
    """Repair one entry's problems (``check_entry`` gives either one QUARANTINE or METRICS and CARD ones)."""
    from zoo_core.plugin_api import atomic_write_text
    from zoo_registry.model_card import render

    if problems[0].kind == QUARANTINE:
        stamp = utc_now().replace(":", "")
        where = registry_root() / ".quarantine" / entry_dir.parent.parent.name / entry_dir.parent.name
        target = where / f"{entry_dir.name}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(entry_dir, target)
        problems[0].fix, problems[0].fixed = f"moved to {target}", True
        return
    entry = read_entry(entry_dir)
    if any(p.kind == METRICS for p in problems):
        atomic_write_text(entry_dir / METRICS_FILE, "{}\n")
        entry.metrics = {}
    atomic_write_text(entry_dir / CARD_FILE, render(entry.config, entry.metrics, model_ref(entry.model_name)))
    for p in problems:
        p.fixed = True
