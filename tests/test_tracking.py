"""`zoo train --log tensorboard|mlflow`: the run's settings, per-epoch metrics and result in TensorBoard event
files beside the run and in an MLflow run tagged with the registry version; a missing package is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from zoo_core.cli import main
from zoo_core.paths import runs_dir

pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
# MLflow's SQLAlchemy store uses a loader strategy SQLAlchemy deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")


@pytest.fixture(scope="module")
def empty_mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables made, copied where a test wants one: making them takes seconds."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def mlflow_runs(uri: str) -> list:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("zoo")
    return [] if experiment is None else client.search_runs([experiment.experiment_id])


def test_log_tensorboard_and_mlflow_record_the_run_and_its_registry_version(capsys, monkeypatch, empty_mlflow_store):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    default_store = runs_dir() / ".mlflow" / "mlflow.db"  # where zoo keeps MLflow's runs unless told otherwise
    default_store.parent.mkdir(parents=True)
    shutil.copyfile(empty_mlflow_store, default_store)
    code, out, err = run(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "2", "--tag", "tr",
                         "--log", "tensorboard", "--log", "mlflow", "--json")  # fmt: skip
    assert code == 0, err
    result = json.loads(out)  # stdout stays JSON: the trackers' lines go to stderr
    run_dir = runs_dir() / "cnn-simplecnn-tr"
    assert f"logging to {run_dir / 'tensorboard'}; MLflow run " in err

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (run_dir / "tensorboard").glob("events.out.tfevents.*")
    accumulator = EventAccumulator(str(events.parent))
    accumulator.Reload()
    losses = accumulator.Scalars("loss")
    assert [e.step for e in losses] == [1, 2] and all(e.value > 0 for e in losses)
    assert [e.step for e in accumulator.Scalars("val_top1")] == [1, 2]
    assert accumulator.Scalars("test_top1")[0].value == pytest.approx(result["metrics"]["top1"])

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{default_store}"
    (mlrun,) = mlflow_runs(uri)
    assert mlrun.info.status == "FINISHED" and mlrun.info.run_name == "cnn-simplecnn-tr"
    assert mlrun.data.params["lr"] == "0.001" and mlrun.data.params["epochs"] == "2"
    assert mlrun.data.metrics["test_top1"] == pytest.approx(result["metrics"]["top1"])
    tags = mlrun.data.tags
    assert (tags["zoo.registry.name"], tags["zoo.registry.version"]) == ("cnn:simplecnn.tr", "1")
    assert tags["zoo.registry.ref"] == "cnn:simplecnn.tr@1" and tags["zoo.run_id"] == "cnn-simplecnn-tr"
    history = MlflowClient(tracking_uri=uri).get_metric_history(mlrun.info.run_id, "loss")
    assert [m.step for m in history] == [1, 2]

    # a second training of the tag is version 2, and its MLflow run says so
    assert run(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "tr", "--log",
               "mlflow")[0] == 0  # fmt: skip
    versions = sorted(r.data.tags["zoo.registry.version"] for r in mlflow_runs(uri))
    assert versions == ["1", "2"]


def test_mlflow_writes_where_MLFLOW_TRACKING_URI_says(capsys, monkeypatch, tmp_path, empty_mlflow_store):
    elsewhere = tmp_path / "team.db"
    shutil.copyfile(empty_mlflow_store, elsewhere)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{elsewhere}")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "zoo")
    code, _, err = run(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "uri", "--log",
                       "mlflow")  # fmt: skip
    assert code == 0, err
    (mlrun,) = mlflow_runs(f"sqlite:///{elsewhere}")
    assert mlrun.data.tags["zoo.registry.name"] == "cnn:simplecnn.uri"
    assert not (runs_dir() / ".mlflow").exists()  # nothing in zoo's own store


def test_a_missing_tracker_package_is_one_line_before_any_work(capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    code, out, err = run(capsys, "train", "simplecnn", "--dataset", "digits", "--tag", "none", "--log", "mlflow")
    assert (code, out) == (2, "")
    assert err.strip() == ("zoo: error: --log mlflow needs the mlflow package: pip install 'zoo[track]' (or pip "
                           "install mlflow)")  # fmt: skip
    assert not (runs_dir() / "cnn-simplecnn-none").exists()
    code, _, err = run(capsys, "train", "simplecnn", "--dataset", "digits", "--log", "wandb")
    assert code == 2 and "wandb" in err and "tensorboard" in err


def test_under_torchrun_rank_0_alone_logs(tmp_path, empty_mlflow_store):
    import os
    import subprocess
    import sys

    store = tmp_path / "ranks.db"
    shutil.copyfile(empty_mlflow_store, store)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}", "MLFLOW_EXPERIMENT_NAME": "zoo"}
    data = [w for k, v in {"num_classes": 4, "image_size": 8, "train_size": 64, "test_size": 16}.items()
            for w in ("--data-opt", f"{k}={v}")]  # fmt: skip
    proc = subprocess.run([sys.executable, "-m", "zoo_core", "train", "simplecnn", "--dataset", "synthetic", *data,
                           "--epochs", "1", "--batch-size", "8", "--tag", "ddp", "--nproc-per-node", "2", "--log",
                           "tensorboard", "--log", "mlflow"], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("logging to ") == 1
    assert len(list((runs_dir() / "cnn-simplecnn-ddp" / "tensorboard").glob("events.out.tfevents.*"))) == 1
    (mlrun,) = mlflow_runs(f"sqlite:///{store}")
    assert mlrun.info.status == "FINISHED" and mlrun.data.tags["zoo.registry.ref"] == "cnn:simplecnn.ddp@1"
    assert mlrun.data.params["world_size"] == "2"
