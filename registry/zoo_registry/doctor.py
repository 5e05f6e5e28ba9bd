"""``zoo doctor`` (``zoo registry verify``): re-hash every registry entry, check its config against its
weights, find what killed publishes left behind, and repair what can be repaired.

Every version of every tag is checked. Repairs never destroy data someone may want: a version whose weights or
config are damaged is moved to ``registry/.quarantine/`` (out of the catalogue, still on disk) and its weights out
of the content store; a lost model card is written again; a swap killed between its two renames is finished; a
tag whose ``tag.json`` is lost or names a version that is gone is pointed at its newest version; aliases naming a
version that is gone are deleted; staging and trash leftovers of killed publishes and removes, and stored weights
no version uses, are deleted; a default that names a tag which is gone is dropped.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import WeightsError, file_lock, utc_now
from zoo_registry.layout import (
    ALIASES_FILE,
    BLOB_DIR,
    TAG_FILE,
    aside_dir,
    lock_path,
    read_aliases,
    read_tag,
    recover,
    subdirs,
    write_aliases,
    write_pointer,
)
from zoo_registry.store import (
    CARD_FILE,
    DEFAULT_FILE,
    METRICS_FILE,
    STALE_SECONDS,
    WEIGHTS_FILE,
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
    for plugin_dir in subdirs(root):
        for model_dir in subdirs(plugin_dir):
            problems += _check_model(model_dir, fix, rehash)
    problems += _check_store(root, fix)
    if fix and any(p.fixed for p in problems):
        refresh_weights()
    return problems


def _check_model(model_dir: Path, fix: bool, rehash: bool) -> list[Problem]:
    problems: list[Problem] = []
    names = set(os.listdir(model_dir))
    for name in sorted(names):
        if name.startswith(".") and name.endswith(".old"):
            tag_path = model_dir / name[1:-4]
            how = "delete it" if tag_path.is_dir() else "rename it back into place"
            p = Problem(model_dir / name, "a replace was killed between its two renames", how)
            if fix:
                with file_lock(lock_path(tag_path)):
                    recover(tag_path)
                p.fixed = not aside_dir(tag_path).exists()
            problems.append(p)
    for tag_path in subdirs(model_dir):
        problems += _check_tag(tag_path, fix, rehash)
    problems += _check_aliases(model_dir, fix)
    default = model_dir / DEFAULT_FILE
    if default.is_file():
        tag = read_default(model_dir)
        if tag is None or not ((model_dir / tag).is_dir() or tag in read_aliases(model_dir)):
            what = f"the default tag {tag!r} is not published any more" if tag else "it names no valid tag"
            p = Problem(default, what, "drop the default")
            if fix:
                default.unlink(missing_ok=True)
                p.fixed = True
            problems.append(p)
    return problems


def _check_tag(tag_path: Path, fix: bool, rehash: bool) -> list[Problem]:
    """A tag folder: each version, and the pointer that says which one the tag means."""
    problems: list[Problem] = []
    state = read_tag(tag_path)
    if not state.versions:
        p = Problem(tag_path, "a tag folder with no version in it (a first publish was killed)", "delete it")
        if fix:
            with file_lock(lock_path(tag_path)):
                if not read_tag(tag_path).versions:
                    shutil.rmtree(tag_path, ignore_errors=True)
            p.fixed = not tag_path.exists()
        return [p]
    for folder in state.versions.values():
        found = check_entry(folder, rehash)
        if fix and found:
            with file_lock(lock_path(tag_path)):
                _repair(folder, found)
        problems += found
    if fix and not state.legacy and any(p.kind == QUARANTINE for p in problems):
        with file_lock(lock_path(tag_path)):
            left = read_tag(tag_path)
            if not left.versions:  # its only versions were quarantined: the tag is gone with them
                shutil.rmtree(tag_path, ignore_errors=True)
                return problems
            if left.pointer_problem:  # the current one was: the newest left stands
                write_pointer(tag_path, max(left.versions), left.next_version - 1)
        state = read_tag(tag_path)
    if state.pointer_problem and not state.legacy:
        newest = max(read_tag(tag_path).versions or state.versions)
        p = Problem(tag_path / TAG_FILE, state.pointer_problem, f"point the tag at its newest version, {newest}")
        if fix:
            with file_lock(lock_path(tag_path)):
                now = read_tag(tag_path)
                if now.versions:
                    write_pointer(tag_path, max(now.versions), now.next_version - 1)
            p.fixed = read_tag(tag_path).pointer_problem is None
        problems.append(p)
    if fix:
        from zoo_core.plugin_api import remove_torn_writes

        remove_torn_writes(tag_path)  # a pointer write a kill cut short: the last whole one stays
    return problems


def _check_aliases(model_dir: Path, fix: bool) -> list[Problem]:
    """A model's aliases file must read, and each alias must name a version that is there."""
    from zoo_registry.layout import aliases_lock

    path = model_dir / ALIASES_FILE
    if not path.is_file():
        return []
    aliases = read_aliases(model_dir)
    if not aliases:
        p = Problem(path, f"{ALIASES_FILE} is unreadable", f"move it aside to {ALIASES_FILE}.broken")
        if fix:
            os.replace(path, path.with_name(ALIASES_FILE + ".broken"))
            p.fixed = True
        return [p]
    gone = {a: t for a, t in aliases.items() if t[1] not in read_tag(model_dir / t[0]).versions}
    if not gone:
        return []
    shown = ", ".join(f"{a} ({t[0]}@{t[1]})" for a, t in sorted(gone.items()))
    p = Problem(path, f"alias(es) naming a version that is gone: {shown}", "delete those aliases")
    if fix:
        with file_lock(aliases_lock(model_dir)):
            now = read_aliases(model_dir)
            write_aliases(model_dir, {a: t for a, t in now.items() if t[1] in read_tag(model_dir / t[0]).versions})
        p.fixed = True
    return [p]


def _check_store(root: Path, fix: bool) -> list[Problem]:
    """The weights store: files no version uses any more (a removal killed before it cleaned up), and links a
    killed publish left half made."""
    import time

    from zoo_registry.blobs import unreferenced

    problems = [Problem(path, "weights no version uses (a removal was killed before it cleaned up)", "delete it")
                for path in unreferenced()]  # fmt: skip
    now = time.time()
    for path in (root / BLOB_DIR).glob(".*.link") if (root / BLOB_DIR).is_dir() else []:
        try:
            if now - path.lstat().st_mtime > STALE_SECONDS:
                problems.append(Problem(path, "left over: a publish was killed before it finished", "delete it"))
        except OSError:
            pass
    if fix:
        for p in problems:
            p.path.unlink(missing_ok=True)
            p.fixed = not p.path.exists()
    return problems


def _repair(entry_dir: Path, problems: list[Problem]) -> None:
    """Repair one version's problems (``check_entry`` gives either one QUARANTINE or METRICS and CARD ones)."""
    from zoo_core.plugin_api import atomic_write_text
    from zoo_registry.model_card import render

    if problems[0].kind == QUARANTINE:
        stamp = utc_now().replace(":", "")
        versioned = len(entry_dir.relative_to(registry_root()).parts) == 4  # <plugin>/<model>/<tag>/v<N>
        tag_path = entry_dir.parent if versioned else entry_dir
        where = registry_root() / ".quarantine" / tag_path.parent.parent.name / tag_path.parent.name
        name = tag_path.name if tag_path == entry_dir else f"{tag_path.name}-{entry_dir.name}"
        target = where / f"{name}-{stamp}"
        target.parent.mkdir(parents=True, exist_ok=True)
        _unshare(entry_dir)
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


def _unshare(entry_dir: Path) -> None:
    """Take damaged weights out of the content store, so that no new version links to them."""
    weights = entry_dir / WEIGHTS_FILE
    for stored in (registry_root() / BLOB_DIR).glob("*.safetensors") if weights.is_file() else []:
        try:
            if os.path.samefile(stored, weights):
                stored.unlink()
        except OSError:
            pass
