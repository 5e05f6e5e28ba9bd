"""Weights stored by content: ``registry/.weights/<sha256>.safetensors``.

Every version folder's ``model.safetensors`` is a hard link to the file of its content here, so a version that
publishes weights the registry already holds (the same file pulled again, a re-published tag) costs no space,
and the file system counts the references: a file here with one link belongs to no version any more and is what
``zoo registry gc`` deletes. On a file system without hard links each version keeps its own copy.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from zoo_registry.layout import BLOB_DIR, registry_root


def blob_path(sha256: str) -> Path:
    return registry_root() / BLOB_DIR / f"{sha256}.safetensors"


def adopt(weights: Path, sha256: str) -> None:
    """Make the staged file ``weights`` (whose sha256 the caller computed) share its storage with the stored
    file of that content: become a link to it when it is whole, else become it."""
    from zoo_registry.weights_file import sha256_file

    blob = blob_path(sha256)
    try:
        blob.parent.mkdir(parents=True, exist_ok=True)
        if os.path.samefile(blob, weights):
            return
    except FileNotFoundError:
        pass
    except OSError:
        return
    try:
        # A stored file is checked before it is shared: one damaged on disk must not spread to a new version.
        if blob.stat().st_size == weights.stat().st_size and sha256_file(blob) == sha256:
            _replace_with_link(blob, weights)
            return
    except OSError:  # none stored (or it went while we looked): this file becomes the stored one
        pass
    with contextlib.suppress(OSError):  # no hard links here: the version keeps its own copy
        _replace_with_link(weights, blob)


def _replace_with_link(source: Path, target: Path) -> None:
    """``target`` becomes another name of ``source``, in one rename."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.link")
    temporary.unlink(missing_ok=True)
    os.link(source, temporary)
    try:
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def unreferenced() -> list[Path]:
    """Stored files that no version links to any more."""
    found = []
    folder = registry_root() / BLOB_DIR
    try:
        with os.scandir(folder) as it:
            for e in it:
                try:
                    if e.name.endswith(".safetensors") and e.stat(follow_symlinks=False).st_nlink <= 1:
                        found.append(Path(e.path))
                except OSError:
                    pass
    except FileNotFoundError:
        pass
    return sorted(found)


def prune() -> list[Path]:
    """Delete the stored files no version links to; returns what went. Safe beside a publish: one that was
    about to share a file it finds gone keeps its own copy instead."""
    gone = []
    for path in unreferenced():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            gone.append(path)
    return gone
