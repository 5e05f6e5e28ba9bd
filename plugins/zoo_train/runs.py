"""Training runs on disk: ``$ZOO_HOME/runs/<run-id>/run.json`` (settings and status, written before training
starts) beside the trainer's checkpoints, so ``--resume`` can continue a run killed at any point."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from zoo_core.errors import UnknownNameError, UsageError
from zoo_core.names import parse
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
    """Every run's record (newest first); a run whose record is unreadable is listed as ``broken``."""
    root = runs_dir()
    records = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not path.is_dir() or path.name.startswith("."):
            continue
        record = read_json(path / "run.json")
        records.append(record if record and "run_id" in record else {"run_id": path.name, "status": "broken"})
    return sorted(records, key=lambda r: r.get("created", ""), reverse=True)


def run_id_for(plugin: str, name: str, tag: str) -> str:
    return f"{plugin}-{name}-{tag}"


def published(model: str, tag: str) -> bool:
    """Whether the local registry has ``model``.``tag`` (a broken entry counts: --overwrite replaces it)."""
    from zoo_registry.store import get

    from zoo_core.errors import WeightsError

    try:
        get(model, tag)
        return True
    except WeightsError:
        return True
    except UnknownNameError:
        return False


def choose_tag(tag: str | None, dataset: str, model: str) -> str:
    """``tag``, else ``<dataset>-<date>`` (``-2``, ``-3``... when taken by a published entry or a run)."""
    if tag:
        return tag
    ref = parse(model)
    plugin, name = ref.plugin or "", ref.name
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
        ref = parse(model)
        run_dir = runs_dir() / run_id_for(ref.plugin or "", ref.name, tag)
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


def run_lock(run_dir: Path) -> Any:
    """Hold the run's lock for a ``with`` block: one process trains a run at a time."""
    from contextlib import contextmanager

    from zoo_core.file_lock import LockBusy, file_lock

    @contextmanager
    def held() -> Any:
        locks = runs_dir() / ".locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            from zoo_core.trainers import TrainingError

            raise TrainingError(f"cannot write the run folder {run_dir} ({e.strerror or e}); set ZOO_HOME to a "
                                "folder zoo can write") from None  # fmt: skip
        try:
            with file_lock(locks / f"{run_dir.name}.lock", timeout=0):
                yield
        except LockBusy:
            record = read_json(run_dir / "run.json") or {}
            pid = f" (pid {record['pid']})" if record.get("pid") else ""
            raise UsageError(f"run {run_dir.name} is training in another process{pid}; wait for it to end or "
                             "stop it first") from None  # fmt: skip

    return held()


def checkpoint_epoch(run_dir: Path) -> int | None:
    """The last epoch of the run's checkpoint, read from the safetensors header alone (no torch)."""
    import struct

    try:
        with open(run_dir / "checkpoint.safetensors", "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(min(size, 1 << 24)))
        return int(json.loads(header["__metadata__"]["zoo_checkpoint"])["epoch"])
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None


def resume_command(record: dict[str, Any]) -> str:
    """The command that continues a run (its model, dataset and tag; the rest is recorded)."""
    import shlex

    cfg = record.get("config") or {}
    words = ["zoo", "train", record.get("model", "?"), "--dataset", cfg.get("dataset", "?")]
    if cfg.get("data_dir"):
        words += ["--data-dir", cfg["data_dir"]]
    return shlex.join([*words, "--tag", record.get("tag") or cfg.get("tag") or "?", "--resume"])


def remove_run(run_id: str) -> Path:
    """Delete a run's folder (not its published weights); a run training now is refused."""
    import shutil

    run_dir = runs_dir() / run_id
    if not (run_dir / "run.json").is_file() and not run_dir.is_dir():
        import difflib

        known = [r.get("run_id", "") for r in list_runs()]
        raise UnknownNameError("run", run_id, difflib.get_close_matches(run_id, known, n=3) or known[:3])
    with run_lock(run_dir):
        shutil.rmtree(run_dir)
    return run_dir
