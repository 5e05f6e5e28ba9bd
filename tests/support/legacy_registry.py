"""A registry entry as zoo wrote it before tags had versions (commit b3a67d4 and earlier): the tag folder
``<registry>/<plugin>/<model>/<tag>/`` holds ``model.safetensors``, ``config.json``, ``metrics.json`` and
``README.md`` itself, and ``<model>/.default`` names a tag. The files are written byte for byte as that
release's ``store.publish`` wrote them (JSON with two-space indents and sorted keys; safetensors metadata
``format``, ``zoo_model``, ``zoo_tag``), so a test can open such a registry with today's code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def write_entry(registry: Path, model: Any, *, plugin: str, name: str, tag: str, model_kwargs: dict[str, Any],
                labels: list[str], preprocessing: dict[str, Any], metrics: dict[str, Any],
                training: dict[str, Any] | None, created: str = "2026-01-02T03:04:05Z") -> Path:  # fmt: skip
    """Write one entry of the old layout; ``preprocessing`` as the old store recorded it (every field of the
    weights schema's preprocessing)."""
    import torch
    from safetensors.torch import save_file
    from zoo_registry.model_card import render

    from zoo_core import __version__

    entry = registry / plugin / name / tag
    entry.mkdir(parents=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(entry / "model.safetensors"),
              metadata={"format": "pt", "zoo_model": f"{plugin}:{name}", "zoo_tag": tag})  # fmt: skip
    data = (entry / "model.safetensors").read_bytes()
    config = {
        "schema": 1, "architecture": f"{plugin}:{name}", "tag": tag, "model_kwargs": model_kwargs,
        "num_classes": len(labels), "labels": labels, "preprocessing": preprocessing,
        "weights_file": "model.safetensors", "format": "safetensors", "sha256": hashlib.sha256(data).hexdigest(),
        "size_bytes": len(data), "num_params": sum(p.numel() for p in model.parameters()),
        "zoo_version": __version__, "torch_version": torch.__version__.split("+")[0], "created": created,
        "training": training,
    }  # fmt: skip
    (entry / "config.json").write_text(_dump(config), encoding="utf-8")
    (entry / "metrics.json").write_text(_dump(metrics), encoding="utf-8")
    (entry / "README.md").write_text(render(config, metrics, name), encoding="utf-8")
    return entry


def set_default(registry: Path, plugin: str, name: str, tag: str) -> None:
    (registry / plugin / name / ".default").write_text(tag + "\n", encoding="utf-8")
