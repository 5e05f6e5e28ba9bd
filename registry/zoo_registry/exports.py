"""Verified exports kept beside the weights they came from: ``$ZOO_HOME/registry/.exports/<sha256>/<variant>/``.

An export is addressed by the content of its source weights (the sha256 of a registry entry's safetensors file,
or of a plugin's weights as loaded, see ``zoo_export.weights_digest``), not by a tag: re-publishing the same
weights under another tag finds the same exports, and new weights under an old tag never do. ``<variant>`` is
the format and what changes the file (``onnx``, ``onnx-int8``, ``pt2``, ``onnx-opset17-batch1``). A variant
folder holds the exported file and ``export.json``: the record of how it was made and verified (exporter,
opset, parity figures, calibration, size, latency), which also serves as the file's sidecar.

The folder name starts with a dot because every visible folder of the registry is a plugin's (``store.scan``
reads ``<plugin>/<model>/<tag>``). A store is staged in ``registry/.staging`` and renamed into place under a
per-variant lock, so a reader sees a whole export or none; two processes exporting the same weights at once
keep the first one to finish.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import UsageError, WeightsError, atomic_write_json, file_lock, records, registry_dir

RECORD_FILE = "export.json"
SCHEMA = 1
FORMATS = {"onnx": "model.onnx", "pt2": "model.pt2"}
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
VARIANT_RE = re.compile(r"^(onnx|pt2)(-[a-z0-9]+)*$")

_TEXT = records.string(1000, null=True)
RECORD_SPEC = records.obj({
    "schema": records.version(SCHEMA, required=True),
    "format": records.string(choices=tuple(FORMATS), required=True),
    "variant": records.string(100, pattern=VARIANT_RE.pattern[1:-1], required=True),
    "file": records.string(choices=tuple(FORMATS.values()), required=True),
    "sha256": records.string(64, pattern="[0-9a-f]{64}", label="a sha256 (64 lowercase hex digits)",
                             required=True),  # fmt: skip
    "size_bytes": records.integer(0, required=True),
    "weights": records.obj({"sha256": records.string(64, pattern="[0-9a-f]{64}", required=True)}, required=True),
    "exporter": _TEXT, "opset": records.integer(1, 1000, null=True), "int8": records.boolean(null=True),
    "parity": records.obj(null=True), "quantization": records.obj(null=True), "latency": records.obj(null=True),
    "labels": records.list_of(records.string(1000), 100_000, null=True), "preprocessing": records.obj(null=True),
    "created": _TEXT,
})  # fmt: skip


@dataclass
class StoredExport:
    """One verified export in the store: its folder, file and record."""

    path: Path  # the variant folder
    record: dict[str, Any]

    @property
    def file(self) -> Path:
        return self.path / str(self.record["file"])

    @property
    def variant(self) -> str:
        return str(self.record["variant"])

    def to_dict(self) -> dict[str, Any]:
        return {**self.record, "path": str(self.path), "file": str(self.file)}


def exports_root() -> Path:
    return registry_dir() / ".exports"


def _check(sha256: str, variant: str) -> None:
    if not SHA256_RE.match(sha256):
        raise UsageError(f"not a sha256 of weights: {sha256!r}")
    if not VARIANT_RE.match(variant):
        raise UsageError(f"not an export variant: {variant!r} (onnx, pt2, onnx-int8, ...)")


def _lock(sha256: str, variant: str) -> Path:
    return registry_dir() / ".locks" / ".exports" / sha256 / f"{variant}.lock"


def read(path: Path) -> StoredExport:
    """The export in a variant folder; RecordError (a ValueError) or OSError when it is not whole."""
    record = records.load(path / RECORD_FILE, RECORD_SPEC)
    if record["variant"] != path.name or record["weights"]["sha256"] != path.parent.name:
        raise records.RecordError(f"{path / RECORD_FILE} describes {record['variant']} of "
                                  f"{record['weights']['sha256'][:12]}, not the folder it is in")  # fmt: skip
    found = StoredExport(path, record)
    if not found.file.is_file() or found.file.stat().st_size != record["size_bytes"]:
        raise records.RecordError(f"{found.file}: missing, or not the {record['size_bytes']:,} bytes its record says")
    return found


def find(sha256: str, variant: str) -> StoredExport | None:
    """The stored export of these weights in this variant, or None (a broken one counts as none)."""
    _check(sha256, variant)
    path = exports_root() / sha256 / variant
    if not path.is_dir():
        return None
    try:
        with file_lock(_lock(sha256, variant), shared=True):
            return read(path)
    except (OSError, ValueError):
        return None


def list_for(sha256: str) -> list[StoredExport]:
    """Every whole export of the weights with this sha256, by variant."""
    folder = exports_root() / sha256
    if not SHA256_RE.match(sha256) or not folder.is_dir():
        return []
    found = []
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and VARIANT_RE.match(p.name)):
        try:
            found.append(read(path))
        except (OSError, ValueError):
            continue  # a torn or hand-edited export is no export; the next store replaces it
    return found


def staging_dir(sha256: str, variant: str) -> Path:
    """A fresh folder on the registry's file system to write an export into before ``store`` keeps it."""
    _check(sha256, variant)
    root = registry_dir() / ".staging"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=root, prefix=f"export-{sha256[:12]}-{variant}-"))


def store(staged: Path, record: dict[str, Any], replace: bool = False) -> StoredExport:
    """Keep the export staged in ``staged`` (its file already there) with ``record``; the staging folder is
    consumed. An export already stored for the same weights and variant wins unless ``replace``."""
    from zoo_core.plugin_api import utc_now

    sha256, variant = str(record["weights"]["sha256"]), str(record["variant"])
    _check(sha256, variant)
    record = {"schema": SCHEMA, "created": utc_now(), **record}
    try:
        records.check(record, RECORD_SPEC, f"export record of {variant}")
        atomic_write_json(staged / RECORD_FILE, record)
        os.chmod(staged, 0o755)
        read_back = staged / record["file"]
        if not read_back.is_file() or read_back.stat().st_size != record["size_bytes"]:
            raise WeightsError(f"{read_back}: the staged export is not the file its record describes")
        target = exports_root() / sha256 / variant
        target.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(_lock(sha256, variant)):
            if target.is_dir():
                try:
                    existing = read(target)
                except (OSError, ValueError):
                    existing = None
                if existing is not None and not replace:
                    return existing
                aside = target.parent / f".{variant}.old"
                shutil.rmtree(aside, ignore_errors=True)
                os.rename(target, aside)
                os.rename(staged, target)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                os.rename(staged, target)
            return read(target)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def remove(sha256: str, variant: str) -> bool:
    """Delete one stored export; False when there was none."""
    _check(sha256, variant)
    target = exports_root() / sha256 / variant
    with file_lock(_lock(sha256, variant)):
        if not target.is_dir():
            return False
        shutil.rmtree(target)
    return True
