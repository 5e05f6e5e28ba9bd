"""``zoo train --log tensorboard|mlflow``: a run's settings, per-epoch metrics and result, logged through the
trackers' own libraries.

``Tracking`` is a ``Reporter`` that passes everything on to the one it wraps and also logs: TensorBoard event
files beside the run (``<run>/tensorboard``, ``torch.utils.tensorboard``), and an MLflow run with the settings as
params, each epoch's metrics, the test result and, as tags, the registry name and version the weights were
published as. MLflow writes where ``MLFLOW_TRACKING_URI`` says, else to a local SQLite store under the runs
folder (``$ZOO_HOME/runs/.mlflow/mlflow.db``: ``mlflow ui --backend-store-uri sqlite:///...`` shows it), in the
experiment ``MLFLOW_EXPERIMENT_NAME`` or ``zoo``. Under torchrun only rank 0 gets a ``Tracking`` reporter.

Both libraries are optional (``pip install 'zoo[track]'``); mlflow, slow to import, is imported only when asked
for. A tracker that fails in the middle of a run says so once and stops; the training goes on.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import Reporter, UsageError, first_line, runs_dir

TRACKERS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # --log value -> the package it needs


def check_trackers(kinds: tuple[str, ...] | list[str]) -> None:
    """Fail before any work when a tracker's package is missing (one line that says how to install it)."""
    for kind in dict.fromkeys(kinds):
        if kind not in TRACKERS:
            raise UsageError(f"--log {kind}: unknown tracker; choose from {', '.join(TRACKERS)}")
        package = TRACKERS[kind]
        if importlib.util.find_spec(package) is None:
            raise UsageError(f"--log {kind} needs the {package} package: pip install 'zoo[track]' (or pip install "
                             f"{package})")  # fmt: skip


def _numbers(values: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _params(config: Any) -> dict[str, str]:
    """The run's settings as tracker params (strings; nested values as JSON)."""
    settings = asdict(config) if hasattr(config, "__dataclass_fields__") else dict(config)
    return {k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else str(v)
            for k, v in settings.items() if v is not None}  # fmt: skip


class _TensorBoard:
    def __init__(self, run_dir: Path, config: Any, run_id: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / "tensorboard"
        self.writer = SummaryWriter(log_dir=str(self.path))
        self.writer.add_text("zoo/settings", "\n".join(f"    {k} = {v}" for k, v in _params(config).items()), 0)
        self.writer.add_text("zoo/run", run_id, 0)

    def epoch(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finished(self, step: int, metrics: dict[str, float], tags: dict[str, str]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.add_text("zoo/registry", f"{tags['zoo.registry.name']} version {tags['zoo.registry.version']}",
                             step)  # fmt: skip

    def close(self, status: str) -> None:
        self.writer.close()


class _MLflow:
    def __init__(self, run_dir: Path, config: Any, run_id: str) -> None:
        import logging
        import os

        for name in ("mlflow", "alembic"):  # their INFO lines (creating the store) are not zoo's output
            logging.getLogger(name).setLevel(logging.WARNING)
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        uri = os.environ.get("MLFLOW_TRACKING_URI")
        store = runs_dir() / ".mlflow"
        if not uri:
            store.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{store / 'mlflow.db'}"
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or "zoo"
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            experiment_id = experiment.experiment_id
        else:
            location = None if os.environ.get("MLFLOW_TRACKING_URI") else (store / "artifacts").as_uri()
            experiment_id = self.client.create_experiment(name, artifact_location=location)
        model = str(getattr(config, "model", ""))
        tags = {"zoo.run_id": run_id, "zoo.model": model, "zoo.dataset": str(getattr(config, "dataset", ""))}
        self.run_id = self.client.create_run(experiment_id, run_name=run_id, tags=tags).info.run_id
        params = [Param(k, v[:6000]) for k, v in _params(config).items()]  # MLflow's limit on a param value
        for i in range(0, len(params), 100):  # and on params per call
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def _metrics(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def epoch(self, step: int, metrics: dict[str, float]) -> None:
        self._metrics(step, metrics)

    def finished(self, step: int, metrics: dict[str, float], tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self._metrics(step, metrics)
        self.client.log_batch(self.run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status)


OPENERS = {"tensorboard": _TensorBoard, "mlflow": _MLflow}


class Tracking(Reporter):
    """The reporter ``zoo train`` runs with when ``--log`` is given: the wrapped one's output, and the trackers'."""

    def __init__(self, inner: Reporter, kinds: tuple[str, ...] | list[str]) -> None:
        self.inner, self.kinds = inner, list(dict.fromkeys(kinds))
        self.trackers: dict[str, Any] = {}
        self.status = "FAILED"  # until the run publishes (a Ctrl-C, a diverged run, a failed publish)
        self.last_epoch = 0

    def began(self, run_dir: Path, config: Any, run_id: str) -> None:
        """Open each tracker's run (before any training: a tracker that cannot start fails the command)."""
        for kind in self.kinds:
            try:
                self.trackers[kind] = OPENERS[kind](run_dir, config, run_id)
            except Exception as e:  # noqa: BLE001 - a store that cannot be reached or written is the user's to fix
                raise UsageError(f"--log {kind}: cannot start logging ({first_line(e, typed=True)})") from None
        where = [str(t.path) if kind == "tensorboard" else f"MLflow run {t.run_id} at {t.uri}"
                 for kind, t in self.trackers.items()]  # fmt: skip
        self.inner.info(f"logging to {'; '.join(where)}")

    def _each(self, what: str, call: Any) -> None:
        for kind, tracker in list(self.trackers.items()):
            try:
                call(tracker)
            except Exception as e:  # noqa: BLE001 - logging must not end a training run
                print(f"zoo: warning: --log {kind} stopped ({what}: {first_line(e, typed=True)})", file=sys.stderr)
                del self.trackers[kind]

    def ended(self, outcome: Any) -> None:
        """The run published its weights: log the test result and the registry name and version."""
        self.status = "FINISHED"
        entry = outcome.entry
        if entry is None:
            return
        tags = {"zoo.registry.name": f"{entry.model_name}.{entry.tag}", "zoo.registry.version": str(entry.version),
                "zoo.registry.ref": entry.version_ref, "zoo.registry.sha256": entry.sha256}  # fmt: skip
        final = {f"test_{k}": v for k, v in _numbers(outcome.metrics).items() if k in ("top1", "top5")}
        self._each("the result", lambda t: t.finished(self.last_epoch, final, tags))

    def info(self, text: str) -> None:
        self.inner.info(text)

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.inner.epoch_start(epoch, epochs, steps)

    def progress(self, step: int, loss: float, acc: float, images_per_s: float) -> None:
        self.inner.progress(step, loss, acc, images_per_s)

    def epoch_end(self, stats: dict[str, Any]) -> None:
        self.inner.epoch_end(stats)
        step = int(stats.get("epoch", self.last_epoch + 1))
        self.last_epoch = step
        metrics = {k: v for k, v in _numbers(stats).items() if k != "epoch"}
        self._each(f"epoch {step}", lambda t: t.epoch(step, metrics))

    def close(self) -> None:
        self.inner.close()
        trackers, self.trackers = self.trackers, {}
        for tracker in trackers.values():
            try:
                tracker.close(self.status)
            except Exception:  # noqa: BLE001 - the run is over; nothing left to tell the tracker
                pass


def began(reporter: Reporter, run_dir: Path, config: Any, run_id: str) -> None:
    """Start the trackers of a ``Tracking`` reporter (anything else: nothing to do)."""
    if isinstance(reporter, Tracking):
        reporter.began(run_dir, config, run_id)


def ended(reporter: Reporter, outcome: Any) -> None:
    if isinstance(reporter, Tracking):
        reporter.ended(outcome)
