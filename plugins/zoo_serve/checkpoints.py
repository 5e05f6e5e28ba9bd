"""The per-epoch history of a run that is not published yet, from its checkpoint's header, read the way
``zoo runs`` reads the checkpoint's epoch (``zoo_train.runs.checkpoint_epoch``): the header alone, checked against
the checkpoint's own schema, no tensor loaded and no torch imported."""

from __future__ import annotations

from typing import Any

from zoo_core.plugin_api import ZooError, records, runs_dir


def checkpoint_history(run_id: str) -> list[dict[str, Any]]:
    """The epochs the run's checkpoint holds (loss, accuracies, speed), or none when there is no valid one.
    ``run_id`` comes from ``zoo runs --json``, never from a request."""
    from zoo_registry.weights_file import read_header
    from zoo_train.checkpoint import META_KEY, STATE_SPEC

    path = runs_dir() / run_id / "checkpoint.safetensors"
    if not path.is_file():
        return []
    try:
        text = (read_header(path).get("__metadata__") or {})[META_KEY]
        return list(records.parse(text, STATE_SPEC, path)["history"])
    except (ZooError, KeyError):
        return []
