"""The decoded-dataset cache: a dataset built once is kept as one safetensors file under
``$ZOO_CACHE/datasets``, keyed by what it was built from; a file that cannot be read is rebuilt."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import Dataset, Split, ZooError, records, validate

CACHE_VERSION = 1
META_SPEC = records.obj({
    "name": records.string(500, min_len=1, required=True),
    "classes": records.list_of(records.string(1000), 100_000, min_len=1, required=True),
    "splits": records.list_of(records.string(100), 10, min_len=1, required=True),
    "source": records.obj(required=True),
})  # fmt: skip


def _cache_file(key: str) -> Path:
    from zoo_core.plugin_api import cache_dir

    return cache_dir() / "datasets" / f"{key}.safetensors"


def _read_cache(path: Path) -> Dataset | None:
    """The cached dataset, or None when the file is unreadable or not a valid dataset (it is then rebuilt)."""
    import torch
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:  # safetensors checks the header's dtypes, shapes and offsets
            meta = records.parse((f.metadata() or {})["zoo_dataset"], META_SPEC, path)
            splits = {s: Split(f.get_tensor(f"{s}.pixels"), f.get_tensor(f"{s}.labels")) for s in meta["splits"]}
        for split in splits.values():  # what Split promises its users; validate() checks the rest
            if split.pixels.dtype != torch.uint8 or split.pixels.dim() != 4 or split.labels.dtype != torch.int64:
                return None
        dataset = Dataset(meta["name"], meta["classes"], splits, {**meta["source"], "cache": str(path)})
        return validate(dataset, meta["name"])
    except (OSError, ValueError, KeyError, TypeError, SafetensorError, ZooError):
        return None


def _write_cache(path: Path, dataset: Dataset) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tensors = {}
    for s, split in dataset.splits.items():
        tensors[f"{s}.pixels"], tensors[f"{s}.labels"] = split.pixels.contiguous(), split.labels.contiguous()
    meta = {"name": dataset.name, "classes": dataset.classes, "splits": list(dataset.splits),
            "source": dataset.source}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"zoo_dataset": json.dumps(meta)})
        os.replace(tmp, path)  # a reader sees the whole cache file or none
    except (OSError, SafetensorError):  # a read-only or full cache makes zoo slower, not broken
        tmp.unlink(missing_ok=True)


def cached(key_parts: Any, build: Callable[[], Dataset]) -> Dataset:
    """``build()`` once per distinct ``key_parts`` (JSON-able); later calls load the decoded tensors."""
    key = hashlib.sha256(json.dumps([CACHE_VERSION, key_parts], sort_keys=True).encode()).hexdigest()[:24]
    path = _cache_file(key)
    if path.is_file():
        dataset = _read_cache(path)
        if dataset is not None:
            return dataset
    dataset = build()
    _write_cache(path, dataset)
    return dataset
