"""`zoo train`: train -> publish -> load -> evaluate, image folders, transfer learning, resume after
kill -9, diverging losses, and trainers from third-party plugins."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ctrl_c_default
from safetensors import safe_open
from test_datasets import write_image_folder
from zoo_registry import store
from zoo_train.evaluation import evaluate_published
from zoo_train.training import train

import zoo_core
from zoo_core.cli import main
from zoo_core.errors import UsageError
from zoo_core.paths import runs_dir as runs_root
from zoo_core.trainers import Reporter


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_train_publish_load_eval_on_digits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "4", "--tag", "d4")
    assert code == 0, err
    assert "published simplecnn.d4" in out
    assert [ln.split()[1] for ln in err.splitlines() if ln.startswith("epoch")] == ["1", "2", "3", "4"]

    entry = store.get("simplecnn", "d4")
    assert entry.config["model_kwargs"] == {"num_classes": 10, "in_chans": 1, "input_size": [8, 8]}
    pre = entry.config["preprocessing"]
    assert pre["input_size"] == [1, 8, 8] and len(pre["mean"]) == 1 and pre["crop_mode"] == "squash"
    metrics, training = entry.metrics, entry.config["training"]
    assert metrics["top1"] > 80 and metrics["top5"] >= metrics["top1"]  # a real model, not chance (10%)
    assert set(metrics["per_class_top1"]) == {str(i) for i in range(10)}
    assert metrics["epochs"] == 4 and metrics["best_val_top1"] > 70 and metrics["train_images_per_s"] > 0
    assert training["optimizer"] == "adam" and training["lr"] == 1e-3 and training["batch_size"] == 64
    assert training["command"].startswith("zoo train simplecnn --dataset digits")
    assert training["environment"]["torch"] == torch.__version__ and len(training["history"]) == 4

    model = zoo_core.create_model("simplecnn", pretrained="d4")  # the published weights are a tag now
    assert model.zoo_spec["tag"] == "d4"
    report = evaluate_published("simplecnn.d4", "digits", device="cpu")
    assert report["top1"] == metrics["top1"]  # evaluation sees the data exactly as training did
    assert json.loads((runs_root() / "cnn-simplecnn-d4" / "run.json").read_text())["status"] == "finished"


def test_imagefolder_with_grayscale_odd_sized_images_trains_and_evals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_image_folder(tmp_path / "shapes", size=(13, 11), per_class=24,
                              odd={"train/top/001.png": (30, 17), "test/top/002.png": (6, 6)})  # fmt: skip
    code, out, err = run_cli(capsys, "train", "improvedcnn", "--dataset", "imagefolder", "--data-dir", str(root),
                             "--epochs", "3", "--augment", "standard", "--tag", "shapes")  # fmt: skip
    assert code == 0, err
    config = store.get("improvedcnn", "shapes").config
    assert config["model_kwargs"] == {"num_classes": 2, "in_chans": 1, "input_size": [13, 11]}
    assert config["labels"] == ["bottom", "top"]
    code, out, err = run_cli(capsys, "eval", "improvedcnn.shapes", "--dataset", "imagefolder",
                             "--data-dir", str(root), "--json")  # fmt: skip
    report = json.loads(out)
    assert code == 0 and report["num_samples"] == 24 and report["top1"] >= 75  # an easy task, learnt


def test_transfer_learning_new_head_and_frozen_backbone(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "base"]) == 0
    # Five classes of synthetic 8x8 images: a new task, so a new 5-way head on the digits backbone.
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "synthetic", "--pretrained", "base",
                           "--freeze-backbone", "--epochs", "1", "--tag", "tl", "--data-opt", "num_classes=5",
                           "--data-opt", "image_size=8", "--data-opt", "channels=1",
                           "--data-opt", "train_size=300", "--data-opt", "test_size=50")  # fmt: skip
    assert code == 0, err
    base = zoo_core.create_model("simplecnn", pretrained="base").state_dict()
    tuned = zoo_core.create_model("simplecnn", pretrained="tl").state_dict()
    assert tuned["classifier.4.weight"].shape == (5, 512)
    for key in ("features.0.weight", "classifier.1.weight"):
        assert torch.equal(base[key], tuned[key]), f"{key} moved although the backbone was frozen"
    assert store.get("simplecnn", "tl").config["training"]["pretrained"] == "base"
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--freeze-backbone")
    assert code == 2 and "needs --pretrained" in err


def test_resume_after_kill_9_continues_the_epoch_count(capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = runs_root() / "cnn-simplecnn-killed"
    checkpoint = run_dir / "checkpoint.safetensors"
    cmd = [sys.executable, "-m", "zoo_core.cli", "train", "simplecnn", "--dataset", "digits", "--epochs", "5",
           "--batch-size", "8", "--tag", "killed"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    output = proc.communicate()[0].decode()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before it could be killed:\n{output}"
    with safe_open(str(checkpoint), "pt") as f:
        done = json.loads(f.metadata()["zoo_checkpoint"])["epoch"]
    assert 1 <= done < 5
    assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
    with pytest.raises(zoo_core.UnknownNameError):
        store.get("simplecnn", "killed")

    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--lr", "0.1", "--resume")
    assert code == 2 and "--lr cannot change" in err
    code, out, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--resume")  # the newest run
    assert code == 0, err
    assert f"continuing after epoch {done}" in err
    epochs = [int(ln.split()[1]) for ln in err.splitlines() if ln.startswith("epoch")]
    assert epochs == list(range(done + 1, 6))
    entry = store.get("simplecnn", "killed")
    assert [h["epoch"] for h in entry.config["training"]["history"]] == [1, 2, 3, 4, 5]
    assert entry.metrics["epochs"] == 5 and entry.config["training"]["resumed_with"]


class StopAfter(Reporter):
    """Interrupts training right after the checkpoint of epoch ``n`` (a crash at the worst moment)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def epoch_end(self, stats: dict) -> None:
        if stats["epoch"] == self.n:
            raise KeyboardInterrupt


def test_a_resumed_run_matches_an_uninterrupted_one() -> None:
    options = dict(epochs=3, batch_size=32, augment="standard", data_options={"train_size": 400, "test_size": 80,
                   "image_size": 16})  # fmt: skip
    whole = train("simplecnn", "synthetic", tag="whole", **options)
    with pytest.raises(KeyboardInterrupt):
        train("simplecnn", "synthetic", tag="split", reporter=StopAfter(1), **options)
    resumed = train("simplecnn", "synthetic", tag="split", resume=True, **options)
    assert resumed.training["history"][1:] == [
        {**h, "images_per_s": r["images_per_s"], "train_s": r["train_s"]}
        for h, r in zip(whole.training["history"][1:], resumed.training["history"][1:], strict=True)
    ]
    assert resumed.metrics["top1"] == whole.metrics["top1"]


def test_resuming_a_run_with_an_unreadable_record_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = runs_root() / "cnn-simplecnn-torn"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text("{}")
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--resume", "--tag", "torn")
    assert code == 2 and "no settings zoo can read" in err and err.count("\n") == 1


def test_a_diverging_loss_stops_with_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--lr", "1e30", "--tag", "boom")
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("zoo: error: the loss became nan") and "--lr" in last and "Traceback" not in err
    assert json.loads((runs_root() / "cnn-simplecnn-boom" / "run.json").read_text())["status"] == "failed"
    with pytest.raises(zoo_core.UnknownNameError):
        store.get("simplecnn", "boom")


TRAINER_PLUGIN = '''
from zoo_core import hookimpl


@hookimpl
def zoo_register_trainers(register):
    register("onepass", one_pass, description="one epoch of plain SGD")
    register("broken", broken, description="corrupts the weights")


def one_pass(job):
    import torch
    from zoo_core.datasets import batches

    optimizer = torch.optim.SGD(job.params, lr=0.05)
    job.train_mode()
    seen = 0
    for images, labels in batches(job.train, 32, shuffle=True, generator=torch.Generator().manual_seed(0)):
        logits = job.model(job.train_pipeline(images, train=True))
        loss = torch.nn.functional.cross_entropy(logits, labels.to(job.device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += len(labels)
    return {"epochs": 1, "history": [{"epoch": 1, "seen": seen}], "loss": "cross_entropy"}


def broken(job):
    import torch

    with torch.no_grad():
        next(job.model.parameters()).fill_(float("nan"))
    return {"epochs": 1}
'''


def test_trainer_from_a_third_party_plugin(plugin_path, capsys: pytest.CaptureFixture[str]) -> None:
    plugin_path("zoo-onepass", "onepass", "zoo_onepass_plugin", TRAINER_PLUGIN)
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--trainer", "onepass",
                           "--tag", "op")  # fmt: skip
    assert code == 0, err
    entry = store.get("simplecnn", "op")
    assert entry.config["training"]["trainer"] == "onepass:onepass"
    assert entry.config["training"]["history"] == [{"epoch": 1, "seen": 1294}] and entry.metrics["epochs"] == 1
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--trainer", "broken")
    assert code == 1 and "non-finite weights" in err
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--trainer", "onepas")
    assert code == 2 and "unknown trainer 'onepas'" in err and "onepass" in err


def test_bf16_is_checked_on_the_chosen_gpu_and_refused_where_only_emulated(monkeypatch) -> None:
    from zoo_core.devices import check_precision
    from zoo_core.errors import DeviceError

    # cuda:0 is an H100, cuda:1 a V100; torch.cuda.is_bf16_supported() says yes for both (it asks about the
    # current device, and counts the V100's emulated bf16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    gpus = [("NVIDIA H100", (9, 0)), ("Tesla V100", (7, 0))]
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: gpus[torch.device(d).index][0])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d: gpus[torch.device(d).index][1])
    check_precision(torch.device("cuda:0"), "bf16")
    check_precision(torch.device("cuda:1"), "fp32")
    with pytest.raises(DeviceError, match="Tesla V100 has no native bf16"):
        check_precision(torch.device("cuda:1"), "bf16")


def test_running_out_of_device_memory_is_a_one_line_error(monkeypatch, capsys: pytest.CaptureFixture[str]) -> None:
    from zoo_train.loop import TrainStep

    def out_of_memory(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(TrainStep, "__call__", out_of_memory)
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "oom")
    errors = [line for line in err.splitlines() if line.startswith("zoo: error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err
    assert "out of memory on cpu at batch size 64" in errors[0] and "--overwrite" in errors[0]
    assert json.loads((runs_root() / "cnn-simplecnn-oom" / "run.json").read_text())["status"] == "failed"


def test_settings_are_checked_before_any_work(capsys: pytest.CaptureFixture[str]) -> None:
    for args, message in [
        (["--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "--device cuda"),
        (["--epochs", "0"], "--epochs"),
        (["--data-opt", "nope"], "KEY=VALUE"),
        (["--resume", "--tag", "never"], "no run"),
    ]:
        code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", *args)
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)
    with pytest.raises(UsageError, match="unknown model"):
        train("simplecnnn", "digits")


def test_a_size_adaptive_model_trains_at_its_design_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_image_folder(tmp_path / "photos", size=(64, 48), per_class=8)
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(root),
                           "--epochs", "1", "--tag", "big")  # fmt: skip
    assert code == 0, err
    assert "training simplecnn at its design size 32x32, not the images' 64x48 (--img-size chooses another)" in err
    config = store.get("simplecnn", "big").config
    assert config["model_kwargs"]["input_size"] == [32, 32] and config["num_params"] < 1_200_000
    assert config["preprocessing"]["input_size"] == [1, 32, 32]


def test_pretrained_weights_get_the_data_resized_to_their_size(capsys: pytest.CaptureFixture[str]) -> None:
    store.publish(zoo_core.create_model("resnet18", num_classes=3), model_name="resnet18", tag="px16",
                  labels=["a", "b", "c"], model_kwargs={"num_classes": 3},
                  preprocessing={"input_size": [3, 16, 16], "mean": [0.5] * 3, "std": [0.25] * 3})  # fmt: skip
    code, _, err = run_cli(capsys, "train", "resnet18.px16", "--dataset", "synthetic", "--epochs", "1", "--tag", "ft",
                           "--data-opt", "num_classes=4", "--data-opt", "image_size=8", "--data-opt", "train_size=64",
                           "--data-opt", "test_size=16", "--batch-size", "16")  # fmt: skip
    assert code == 0, err
    assert "resizing 8x8 images to 16x16 (the size resnet18.px16 was trained at; --img-size chooses another)" in err
    config = store.get("resnet18", "ft").config
    assert config["preprocessing"]["input_size"] == [3, 16, 16] and config["preprocessing"]["mean"] == [0.5] * 3
    assert config["training"]["pretrained"] == "px16" and config["num_classes"] == 4
    code, _, err = run_cli(capsys, "train", "resnet18", "--pretrained", "px16", "--dataset", "synthetic",
                           "--epochs", "1", "--tag", "ft2", "--img-size", "12", "--data-opt", "train_size=32",
                           "--data-opt", "test_size=8", "--data-opt", "image_size=8", "--data-opt",
                           "num_classes=3")  # fmt: skip
    assert code == 0, err
    assert "zoo: note: --pretrained px16 is deprecated; use resnet18.px16" in err
    assert store.get("resnet18", "ft2").config["preprocessing"]["input_size"] == [3, 12, 12]


def _train_in_background(tag: str, epochs: int = 40) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "zoo_core", "train", "simplecnn", "--dataset", "digits", "--epochs", str(epochs),
           "--batch-size", "8", "--tag", tag]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
                            preexec_fn=ctrl_c_default)  # fmt: skip


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), proc.communicate()[1]


def test_ctrl_c_marks_the_run_interrupted_and_prints_how_to_resume(capsys: pytest.CaptureFixture[str]) -> None:
    proc = _train_in_background("stopped")
    run_dir = runs_root() / "cnn-simplecnn-stopped"
    _wait_for(run_dir / "checkpoint.safetensors", proc)
    # while it trains, nobody else may resume it
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--tag", "stopped", "--resume")
    assert code == 2 and "run cnn-simplecnn-stopped is training in another process (pid" in err
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert last == ("zoo: interrupted: run cnn-simplecnn-stopped stopped; continue it with: zoo train "
                    "cnn:simplecnn --dataset digits --tag stopped --resume")
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    code, out, _ = run_cli(capsys, "runs", "--json")
    (row,) = [r for r in json.loads(out) if r["run_id"] == "cnn-simplecnn-stopped"]
    assert row["status"] == "interrupted" and row["epochs_done"] >= 1 and row["next"].endswith("--resume")
    code, _, err = run_cli(capsys, "train", "cnn:simplecnn", "--dataset", "digits", "--tag", "stopped", "--resume",
                           "--epochs", str(row["epochs_done"] + 1))  # fmt: skip
    assert code == 0, err
    assert store.get("simplecnn", "stopped").metrics["epochs"] == row["epochs_done"] + 1
    code, out, _ = run_cli(capsys, "runs")
    assert "cnn-simplecnn-stopped  finished" in out and "zoo eval simplecnn.stopped --dataset digits" in out
    code, _, err = run_cli(capsys, "runs", "remove", "cnn-simplecnn-stoped", "--yes")
    assert code == 2 and "did you mean cnn-simplecnn-stopped" in err
    assert run_cli(capsys, "runs", "remove", "cnn-simplecnn-stopped", "--yes")[0] == 0
    assert not run_dir.exists() and store.get("simplecnn", "stopped")  # the weights stay published


def test_a_run_killed_after_publishing_is_finished_by_resume(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = train("simplecnn", "digits", tag="late", epochs=1)
    record = json.loads((outcome.run_dir / "run.json").read_text())
    # as if killed between the publish and the run record's update
    record["status"] = "running"
    (outcome.run_dir / "run.json").write_text(json.dumps(record))
    code, out, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--tag", "late", "--resume")
    assert code == 0, err
    assert "published simplecnn.late" in out
    assert json.loads((outcome.run_dir / "run.json").read_text())["status"] == "finished"


def test_unwritable_places_are_one_line_errors(zoo_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    zoo_home.mkdir(parents=True, exist_ok=True)
    (zoo_home / "registry").write_text("not a folder")  # the registry cannot be written (even by root)
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "nowhere")
    assert code == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("zoo: error: trained, but the weights could not be published to the registry")
    assert last.endswith("zoo train cnn:simplecnn --dataset digits --tag nowhere --resume")
    run_dir = runs_root() / "cnn-simplecnn-nowhere"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "trained"
    assert (run_dir / "checkpoint.safetensors").is_file()  # nothing trained is lost
    (zoo_home / "registry").unlink()
    code, out, err = run_cli(capsys, "train", "cnn:simplecnn", "--dataset", "digits", "--tag", "nowhere", "--resume")
    assert code == 0 and "published simplecnn.nowhere" in out, err

    (zoo_home / "runs").rename(zoo_home / "runs.old")
    (zoo_home / "runs").write_text("a file where the runs folder goes")
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "1")
    assert code == 1 and err.count("\n") == 1 and "cannot write the run folder" in err and "ZOO_HOME" in err


def test_an_impossible_image_size_is_a_usage_error_that_blocks_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "timm:vit_tiny_patch16_224", "--dataset", "synthetic", "--data-opt", "train_size=40",
            "--data-opt", "test_size=10", "--data-opt", "num_classes=2", "--tag", "vit", "--epochs", "1"]
    code, _, err = run_cli(capsys, *args, "--img-size", "32")
    errors = [line for line in err.splitlines() if line.startswith("zoo: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert "timm:vit_tiny_patch16_224 cannot run on 32x32 inputs" in errors[0] and "--img-size" in errors[0]
    assert not (runs_root() / "timm-vit_tiny_patch16_224-vit").exists()  # the tag is free to use again


def test_the_final_test_reuses_the_last_validation_only_when_nothing_changed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import zoo_train.evaluation as evaluation
    from zoo_train.distributed import evaluate_sharded
    from zoo_train.pipeline import BatchPipeline

    from zoo_core.datasets import Split
    from zoo_core.distributed import Distributed

    calls: list[int] = []
    real = evaluation.predict
    monkeypatch.setattr(evaluation, "predict", lambda model, split, *a, **k: calls.append(len(split)) or real(
        model, split, *a, **k))  # fmt: skip
    # A run validated on the test split (--val-fraction 0) predicts it once per epoch and not again at the end.
    code, out, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "2",
                             "--val-fraction", "0", "--tag", "v0")  # fmt: skip
    assert code == 0, err
    assert len(calls) == 2 and calls[0] == calls[1] == store.get("simplecnn", "v0").metrics["num_samples"]
    epoch_2 = [ln for ln in err.splitlines() if ln.startswith("epoch   2")][0]
    assert f"val  {store.get('simplecnn', 'v0').metrics['top1']:.1f}%" in epoch_2

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3), torch.nn.BatchNorm1d(3)).eval()
    split = Split(torch.randint(0, 255, (40, 2, 2, 3), dtype=torch.uint8), torch.randint(0, 3, (40,)))
    pipeline = BatchPipeline(mean=[0.5] * 3, std=[0.25] * 3, size=(2, 2), channels=3, device=torch.device("cpu"))
    dist, labels = Distributed(), ["a", "b", "c"]
    calls.clear()
    first = evaluate_sharded(model, split, pipeline, labels, dist)
    assert evaluate_sharded(model, split, pipeline, labels, dist) == first and len(calls) == 1
    changes = [
        lambda: model[1].weight.mul_(-1),  # an in-place write
        lambda: model[1].bias.data.add_(1.0),  # through .data: no version bump, the sums change
        lambda: model[2].running_mean.add_(0.5),  # a buffer
    ]
    for change in changes:
        with torch.no_grad():
            change()
        evaluate_sharded(model, split, pipeline, labels, dist)
        evaluate_sharded(model, split, pipeline, labels, dist)
    assert len(calls) == 1 + len(changes)
    evaluate_sharded(model, split.subset(torch.arange(20)), pipeline, labels, dist)  # another split
    other = BatchPipeline(mean=[0.5] * 3, std=[0.25] * 3, size=(2, 2), channels=3, device=torch.device("cpu"))
    evaluate_sharded(model, split, other, labels, dist)  # another pipeline
    assert len(calls) == 3 + len(changes)


# A 128 MB buffer, the size of FastCNN's largest activation at batch 1024: glibc's defaults mmap it and unmap
# it on free (a page fault per page at the next step); kept, it comes from the heap and stays there, free for reuse.
HEAP_REUSE = """
import ctypes, sys
from zoo_core.devices import keep_freed_cpu_memory


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]


libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "keep":
    assert keep_freed_cpu_memory()
before = libc.mallinfo2().hblks
buffer = libc.malloc(128 << 20)
mapped = libc.mallinfo2().hblks - before
libc.free(buffer)
print(mapped, libc.mallinfo2().fordblks)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_keeping_freed_cpu_memory_serves_step_sized_buffers_from_the_heap_and_keeps_them() -> None:
    """The setting is applied; what it saves is measured by benchmarks/page_faults.py."""
    import platform

    libc, version = platform.libc_ver()
    if libc != "glibc" or tuple(int(part) for part in version.split(".")[:2]) < (2, 33):
        pytest.skip("glibc's mallinfo2")

    def allocate(mode: str) -> tuple[int, int]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GLIBC_TUNABLES", "MALLOC_"))}
        out = subprocess.run([sys.executable, "-c", HEAP_REUSE, mode], capture_output=True, text=True, env=env,
                             timeout=120)  # fmt: skip
        assert out.returncode == 0, out.stderr
        mapped, free_heap = out.stdout.split()
        return int(mapped), int(free_heap)

    assert allocate("default")[0] == 1  # glibc's default: a buffer this size is a fresh mapping
    mapped, free_heap = allocate("keep")
    assert mapped == 0 and free_heap >= 128 << 20


# -- degenerate class sets ---------------------------------------------------------------------------------


def test_one_class_or_an_empty_class_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = write_image_folder(tmp_path / "one", per_class=4)
    shutil.rmtree(one / "train" / "top")
    shutil.rmtree(one / "test" / "top")
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(one))
    assert code == 2 and "has 1 class (bottom): a classifier needs at least two" in err
    empty = write_image_folder(tmp_path / "empty", per_class=4)
    (empty / "train" / "side").mkdir()
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(empty))
    assert code == 2 and "side" in err and "would never be trained" in err
    runs = runs_root()
    assert not [p for p in runs.glob("*") if not p.name.startswith(".")]  # no run left to block a tag


def test_two_classes_report_top_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_image_folder(tmp_path / "two", per_class=6)
    code, out, err = run_cli(capsys, "train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(root),
                             "--epochs", "1", "--tag", "two")  # fmt: skip
    assert code == 0, err
    assert "top-2" in out and "top-5" not in out


def test_runs_remove_takes_y_as_well_as_yes(capsys: pytest.CaptureFixture[str]) -> None:
    short = train("simplecnn", "digits", tag="short", epochs=1)
    shorter = train("simplecnn", "digits", tag="shorter", epochs=1)
    code, _, err = run_cli(capsys, "runs", "remove", short.run_id)
    assert code == 2 and "add --yes to confirm" in err and short.run_dir.is_dir()
    code, out, err = run_cli(capsys, "runs", "remove", short.run_id, "-y")
    assert (code, err) == (0, "") and out.startswith(f"removed run {short.run_id}") and not short.run_dir.exists()
    code, out, err = run_cli(capsys, "runs", "remove", shorter.run_id, "--yes")
    assert (code, err) == (0, "") and out.startswith(f"removed run {shorter.run_id}") and not shorter.run_dir.exists()
    assert store.get("simplecnn", "short") and store.get("simplecnn", "shorter")  # the weights stay published


def test_planning_a_run_keeps_what_is_there_and_holds_the_run_while_it_trains() -> None:
    from contextlib import ExitStack

    from zoo_train.training import RunPlan, TrainConfig, plan_run

    from zoo_core.distributed import Distributed

    def plan(held: ExitStack, resume: bool = False, **settings) -> RunPlan:
        config = TrainConfig(model="cnn:simplecnn", dataset="digits", tag="planned", **settings)
        return plan_run(config, settings, resume=resume, command="zoo train simplecnn --dataset digits",
                        dist=Distributed(), reporter=Reporter(), held=held)  # fmt: skip

    run_dir = runs_root() / "cnn-simplecnn-planned"
    with ExitStack() as held:
        first = plan(held)
        record = json.loads((run_dir / "run.json").read_text())
        assert first.run_dir == run_dir and not first.published and record == first.record
        assert record["status"] == "running" and record["pid"] == os.getpid() and record["config"]["tag"] == "planned"
        # the other ranks rebuild the same plan from the JSON rank 0 sends them
        assert RunPlan.from_json(json.loads(json.dumps(first.to_json()))) == first
        with ExitStack() as other, pytest.raises(UsageError, match=rf"training in another process \(pid {os.getpid()}"):
            plan(other, resume=True)
    for status, message in [("failed", "failed before; start it again with --overwrite"),
                            ("running", "did not finish; continue it with --resume")]:  # fmt: skip
        (run_dir / "run.json").write_text(json.dumps({**record, "status": status}))
        with ExitStack() as held, pytest.raises(UsageError, match=message):
            plan(held)
    (run_dir / "stale.bin").write_bytes(b"from the run before")
    with ExitStack() as held:
        again = plan(held, overwrite=True)
    assert not (run_dir / "stale.bin").exists()  # --overwrite starts the run afresh
    assert json.loads((run_dir / "run.json").read_text()) == again.record and again.config.overwrite
