"""Training runs on disk: ``$ZOO_HOME/runs/<run-id>/run.json`` (settings and status, written before training
starts) beside the trainer's checkpoints, so ``--resume`` can continue a run killed at any point."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import UnknownNameError, UsageError, parse, records, runs_dir

STATUSES = ("created", "running", "interrupted", "failed", "trained", "finished")
_TEXT = records.string(10_000)
# run.json as training.py writes it; ``config`` holds TrainConfig's fields (TrainConfig refuses unknown ones).
# null only where zoo writes it: a null epochs or resumes would reach code that counts with them.
RUN_SPEC = records.obj({
    "run_id": records.string(500, min_len=1, required=True),
    "model": records.string(500, min_len=1, required=True),
    "tag": records.string(500, null=True),
    "status": records.string(choices=STATUSES, required=True),
    "config": records.obj({
        "model": records.string(500, required=True), "dataset": records.string(500, required=True),
        "data_dir": records.string(10_000, null=True), "data_options": records.obj(),
        "epochs": records.integer(1, 10**6), "batch_size": records.integer(1, 10**7), "lr": records.number(),
        "optimizer": records.string(100), "momentum": records.number(), "weight_decay": records.number(),
        "schedule": records.string(100), "augment": records.string(100), "device": records.string(100),
        "precision": records.string(100), "channels_last": records.boolean(),
        "pretrained": records.string(500, null=True), "freeze_backbone": records.boolean(),
        "img_size": records.integer(1, 16_384, null=True), "val_fraction": records.number(0, 1),
        "seed": records.integer(-(2**63), 2**64 - 1), "tag": records.string(500, null=True),
        "trainer": records.string(500), "overwrite": records.boolean(), "sync_bn": records.boolean(),
        "world_size": records.integer(1, 10**6),
    }, required=True),
    "command": _TEXT, "created": records.string(100), "finished": records.string(100, null=True),
    "pid": records.integer(1, 2**32, null=True), "published": records.string(10_000, null=True),
    "nonce": records.string(64, null=True),
    "resumes": records.list_of(_TEXT, 10_000),
    "metrics": records.obj({k: records.number(null=True) for k in ("top1", "top5", "best_val_top1")}
                           | {"epochs": records.integer(0, null=True)}, null=True),
    "distributed": records.obj(null=True),
})  # fmt: skip


def read_record(path: Path) -> dict[str, Any]:
    """The run record ``path`` (``<run>/run.json``), checked; FileNotFoundError when there is none, else one
    RecordError line naming the file and the field when it is not a record zoo wrote for that run."""
    record = records.load(path, RUN_SPEC)
    if record["run_id"] != path.parent.name:  # the record names the folder that commands then touch
        raise records.fail(path, "run_id", f"its folder's name {path.parent.name!r}", records.shown(record["run_id"]))
    return record


def read_json(path: Path) -> dict[str, Any] | None:
    """The run record ``path``, or None when it is missing, unreadable or not a valid record."""
    try:
        return read_record(path)
    except (OSError, records.RecordError):
        return None


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    from zoo_core.plugin_api import atomic_write_json

    atomic_write_json(run_dir / "run.json", record)


def _warn(run_dir: Path, error: BaseException) -> None:
    import sys

    from zoo_core.plugin_api import first_line

    reason = "it has no run.json" if isinstance(error, FileNotFoundError) else first_line(error)
    print(f"zoo: warning: run {run_dir.name} skipped: {reason} (`zoo runs remove {run_dir.name}` deletes it)",
          file=sys.stderr)  # fmt: skip


def list_runs(on_error: Callable[[Path, BaseException], None] | None = _warn) -> list[dict[str, Any]]:
    """Every run's record (newest first); a run whose record is missing or broken goes to ``on_error``."""
    root = runs_dir()
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if not path.is_dir() or path.name.startswith("."):
            continue
        try:
            found.append(read_record(path / "run.json"))
        except (OSError, records.RecordError) as e:
            if on_error is not None:
                on_error(path, e)
    return sorted(found, key=lambda r: r.get("created", ""), reverse=True)


def run_id_for(model: str, tag: str) -> str:
    """The run folder's name for ``model`` (qualified) trained as ``tag``."""
    ref = parse(model)
    return f"{ref.plugin or ''}-{ref.name}-{tag}"


def published(model: str, tag: str) -> bool:
    """Whether the local registry has ``model``.``tag`` (a broken entry counts: --overwrite replaces it)."""
    from zoo_registry.store import get

    from zoo_core.plugin_api import WeightsError

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
    base = f"{dataset.split(':')[-1]}-{datetime.now().strftime('%Y%m%d')}"
    for i in range(1, 1000):
        candidate = base if i == 1 else f"{base}-{i}"
        if not published(model, candidate) and not (runs_dir() / run_id_for(model, candidate)).exists():
            return candidate
    raise UsageError(f"too many runs tagged {base}-*; pass --tag")


def find_resumable(tag: str | None, dataset: str, model: str) -> Path:
    """The run ``--resume`` continues: the one of ``tag``, else the newest unfinished run of the model on
    the dataset."""
    if tag:
        run_dir = runs_dir() / run_id_for(model, tag)
        if not (run_dir / "run.json").is_file():
            raise UsageError(f"no run {run_dir.name} to resume (looked in {runs_dir()})")
        try:
            read_record(run_dir / "run.json")
        except (OSError, records.RecordError) as e:
            from zoo_core.plugin_api import first_line

            raise UsageError(f"run {run_dir.name} has no settings zoo can read ({first_line(e)}); start it again "
                             "without --resume, with --overwrite") from None  # fmt: skip
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

    from zoo_core.plugin_api import LockBusy, file_lock

    @contextmanager
    def held() -> Any:
        locks = runs_dir() / ".locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            from zoo_core.plugin_api import TrainingError

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


CHECKPOINT_EPOCH = records.obj({"epoch": records.integer(0, 10**6, required=True)})


def checkpoint_epoch(run_dir: Path) -> int | None:
    """The last epoch of the run's checkpoint, read from its checked safetensors header alone (no torch); None
    when there is no checkpoint or it is not a valid one."""
    from zoo_registry.weights_file import read_header

    from zoo_core.plugin_api import ZooError

    path = run_dir / "checkpoint.safetensors"
    try:
        text = (read_header(path).get("__metadata__") or {})["zoo_checkpoint"]
        return int(records.parse(text, CHECKPOINT_EPOCH, path)["epoch"])
    except (ZooError, KeyError):
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
