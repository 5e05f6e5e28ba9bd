"""`zoo eval`: the accuracy arithmetic, the JSON report, the confusion-matrix picture and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from zoo_registry import store
from zoo_train.evaluation import accuracy_report

import zoo_core
from zoo_core.cli import main

DIGITS = [str(i) for i in range(10)]


def publish_digits_model(tag: str = "rand", reverse: bool = False) -> None:
    """Untrained (seeded) weights: enough to check what eval reports, with no training time. ``reverse``
    publishes the same model with its outputs and labels in reverse order."""
    torch.manual_seed(0)
    kwargs = {"num_classes": 10, "in_chans": 1, "input_size": [8, 8]}
    model = zoo_core.create_model("simplecnn", **kwargs)
    if reverse:
        head = model.classifier[-1]
        with torch.no_grad():
            head.weight.copy_(head.weight.flip(0))
            head.bias.copy_(head.bias.flip(0))
    pre = {"input_size": [1, 8, 8], "mean": [0.3], "std": [0.37]}
    labels = DIGITS[::-1] if reverse else DIGITS
    store.publish(model, model_name="simplecnn", tag=tag, labels=labels, model_kwargs=kwargs, preprocessing=pre)


def test_accuracy_arithmetic() -> None:
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    top = torch.tensor([[0, 1], [1, 0], [1, 2], [1, 0], [0, 1], [1, 0]])  # top-2 of 3 classes
    r = accuracy_report(top, labels, ["a", "b", "c"])
    assert r["top1"] == 50.0 and r["top5"] == pytest.approx(100 * 4 / 6, abs=0.01) and r["topk"] == 2
    assert r["per_class_top1"] == {"a": 50.0, "b": 100.0, "c": 0.0}
    assert r["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 1, 0]] and r["num_samples"] == 6


def test_eval_json_schema_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    publish_digits_model()
    plot = tmp_path / "out" / "confusion.png"
    assert main(["eval", "simplecnn.rand", "--dataset", "digits", "--json", "--plot", str(plot)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"model", "tag", "dataset", "split", "top1", "top5", "per_class_top1", "confusion", "labels",
            "num_samples", "preprocessing", "environment", "plot"} <= set(report)  # fmt: skip
    assert report["model"] == "cnn:simplecnn" and report["tag"] == "rand" and report["split"] == "test"
    assert report["labels"] == DIGITS and set(report["per_class_top1"]) == set(DIGITS)
    matrix = torch.tensor(report["confusion"])
    assert matrix.shape == (10, 10) and int(matrix.sum()) == report["num_samples"] == 359
    assert report["top1"] == pytest.approx(100 * int(matrix.trace()) / 359, abs=0.01)
    assert 0 <= report["top1"] <= report["top5"] <= 100
    pre = report["preprocessing"]
    assert (pre["input_size"], pre["mean"], pre["std"], pre["crop_mode"]) == ([1, 8, 8], [0.3], [0.37], "squash")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000

    assert main(["eval", "simplecnn.rand", "--dataset", "digits"]) == 0
    out = capsys.readouterr().out
    assert f"top-1 {report['top1']}%" in out and "class" in out


def test_labels_are_matched_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    publish_digits_model("rand")
    publish_digits_model("rev", reverse=True)  # the same predictions, under other output indices
    reports = {}
    for tag in ("rand", "rev"):
        assert main(["eval", f"simplecnn.{tag}", "--dataset", "digits", "--json"]) == 0
        reports[tag] = json.loads(capsys.readouterr().out)
    assert reports["rev"]["labels"] == DIGITS[::-1]
    assert reports["rev"]["per_class_top1"] == reports["rand"]["per_class_top1"]
    assert reports["rev"]["top1"] == reports["rand"]["top1"] and reports["rev"]["top5"] == reports["rand"]["top5"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["simplecnn.nope", "--dataset", "digits"], 2, "unknown tag"),
        (["simplecnnn", "--dataset", "digits"], 2, "did you mean"),
        (["improvedcnn", "--dataset", "digits"], 2, "has no trained weights"),
        (["simplecnn.rand", "--dataset", "cifar10", "--data-dir", "/no/such/dir"], 2, "does not exist"),
        (["simplecnn.rand", "--dataset", "synthetic", "--data-opt", "image_size=8"], 2, "does not know"),
        (["simplecnn.rand", "--dataset", "digits", "--device", "cuda:9"], 2, "--device cuda:9"),
        (["simplecnn.rand", "--dataset", "digits", "--plot", "confusion.txt"], 2, "cannot draw a .txt"),
        (["simplecnn.rand", "--dataset", "digits", "--plot", "/dev/null/confusion.png"], 2, "not a folder"),
    ],
)
def test_eval_errors_are_one_line(args: list[str], code: int, message: str, capsys) -> None:
    publish_digits_model()
    assert main(["eval", *args]) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
