"""Training runs on disk: ``$ZOO_HOME/runs/<run-id>/run.json`` (settings and status, written before training
starts) beside the trainer's checkpoints, so ``--resume`` can continue a run killed at any point."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from zoo_core.errors import UnknownNameError, UsageError
from zoo_core.paths import runs_dir


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when it is missing, unreadable or not an object."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    from zoo_core.atomic_io import atomic_write_json

    atomic_write_json(run_dir / "run.json", record)


def list_runs() -> list[dict[str, Any]]:
    """Every run's record (newest first)."""
    root = runs_dir()
    records = [r for p in sorted(root.iterdir()) if (r := read_json(p / "run.json"))] if root.is_dir() else []
    return sorted(records, key=lambda r: r.get("created", ""), reverse=True)


def run_id_for(plugin: str, name: str, tag: str) -> str:
    return f"{plugin}-{name}-{tag}"


def published(model: str, tag: str) -> bool:
    """Whether the local registry has ``model``.``tag``."""
    from zoo_registry.store import get

    try:
        get(model, tag)
        return True
    except UnknownNameError:
        return False


def choose_tag(tag: str | None, dataset: str, model: str) -> str:
    """``tag``, else ``<dataset>-<date>`` (``-2``, ``-3``... when taken by a published entry or a run)."""
    if tag:
        return tag
    plugin, _, name = model.partition(":")
    base = f"{dataset.split(':')[-1]}-{datetime.now().strftime('%Y%m%d')}"
    for i in range(1, 1000):
        candidate = base if i == 1 else f"{base}-{i}"
        if not published(model, candidate) and not (runs_dir() / run_id_for(plugin, name, candidate)).exists():
            return candidate
    raise UsageError(f"too many runs tagged {base}-*; pass --tag")


def find_resumable(tag: str | None, dataset: str, model: str) -> Path:
    """The run ``--resume`` continues: the one of ``tag``, else the newest unfinished run of the model on
    the dataset."""
    if tag:
        plugin, _, name = model.partition(":")
        run_dir = runs_dir() / run_id_for(plugin, name, tag)
        if not (run_dir / "run.json").is_file():
            raise UsageError(f"no run {run_dir.name} to resume (looked in {runs_dir()})")
        return run_dir
    dataset = dataset.split(":")[-1]
    for record in list_runs():
        cfg = record.get("config", {})
        if (record.get("model") == model and cfg.get("dataset", "").split(":")[-1] == dataset
                and record.get("status") != "finished"):  # fmt: skip
            return runs_dir() / record["run_id"]
    raise UsageError(f"no unfinished run of {model} on {dataset} to resume; start one without --resume")
