"""`zoo eval`: the accuracy arithmetic, the JSON report, the confusion-matrix picture and the errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
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


# -- weights that crop: evaluation reads the files as their own library would ----------------------------

CLASSES = ["n01440764", "n01443537", "n01484850"]  # ImageNet WordNet ids: tench, goldfish, great white shark


def write_photo_folder(root: Path, split: str, per_class: int = 6) -> Path:
    """Photos of several sizes and aspect ratios, one colour cast per class (learnable, and crop-sensitive)."""
    rng = np.random.default_rng(1)
    for c, wnid in enumerate(CLASSES):
        folder = root / split / wnid
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = int(rng.integers(40, 70)), int(rng.integers(40, 70))
            pixels = rng.integers(0, 120, (h, w, 3))
            pixels[..., c] += 100 + int(rng.integers(0, 30))
            Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:02d}.{'jpg' if i % 2 else 'png'}")
    return root


def publish_cropping_model(tag: str, labels: list[str]) -> dict:
    """resnet18 at 32 px with torchvision-style preprocessing: resize the shorter side to 36, centre crop 32."""
    torch.manual_seed(0)
    model = zoo_core.create_model("resnet18", num_classes=3)
    pre = {"input_size": [3, 32, 32], "resize_size": 36, "crop_mode": "center", "crop_pct": 32 / 36,
           "interpolation": "bicubic", "mean": [0.5, 0.4, 0.3], "std": [0.25, 0.25, 0.25]}  # fmt: skip
    store.publish(model, model_name="resnet18", tag=tag, labels=labels, model_kwargs={"num_classes": 3},
                  preprocessing=pre)  # fmt: skip
    return pre


def reference_top1(folder: Path, model: torch.nn.Module, pre: dict) -> float:
    """torchvision's ImageFolder and transforms, and a plain loop: what a user would write by hand."""
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    transform = T.Compose([T.Resize(pre["resize_size"], interpolation=T.InterpolationMode.BICUBIC),
                           T.CenterCrop(32), T.ToTensor(), T.Normalize(pre["mean"], pre["std"])])  # fmt: skip
    hits = total = 0
    model.eval()
    with torch.no_grad():
        for image, label in ImageFolder(str(folder), transform):
            hits += int(model(image[None]).argmax(1).item() == label)
            total += 1
    return round(100.0 * hits / total, 2)


def test_eval_equals_the_reference_loop_on_a_val_only_folder(tmp_path: Path, capsys) -> None:
    root = write_photo_folder(tmp_path / "photos", "val")
    pre = publish_cropping_model("crop", labels=["tench", "goldfish", "great white shark"])
    import torchvision.models as tvm

    # the folders are WordNet ids, the weights name their classes: matched through ImageNet's ids needs 1000
    # outputs, so here the labels are the ids themselves -- and a second tag names them, to match by name
    publish_cropping_model("ids", labels=CLASSES)
    assert main(["eval", "resnet18.ids", "--dataset", "imagefolder", "--data-dir", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["read_from"] == "files" and report["split"] == "val" and report["num_samples"] == 18
    assert report["label_matching"] == "by name" and report["preprocessing"]["resize_size"] == 36
    model = zoo_core.create_model("resnet18.ids")
    assert report["top1"] == reference_top1(root / "val", model, pre)
    assert tvm is not None

    # --limit spreads its images over every class; --img-size keeps the crop share
    assert main(["eval", "-m", "resnet18.ids", "-d", "imagefolder", "--data-dir", str(root / "val"), "--limit", "6",
                 "--img-size", "24", "--json"]) == 0  # fmt: skip
    small = json.loads(capsys.readouterr().out)
    assert small["num_samples"] == 6 and set(small["per_class_top1"]) == set(CLASSES)
    assert small["preprocessing"]["input_size"] == [3, 24, 24]
    assert small["preprocessing"]["crop_pct"] == pytest.approx(32 / 36, abs=1e-5)


def test_imagenet_folders_match_a_1000_class_model_by_wordnet_id(tmp_path: Path, capsys) -> None:
    root = write_photo_folder(tmp_path / "imagenet", "val", per_class=2)
    from timm.data import ImageNetInfo

    names = ImageNetInfo("imagenet-1k").label_descriptions()
    torch.manual_seed(0)
    model = zoo_core.create_model("resnet18", num_classes=1000)
    store.publish(model, model_name="resnet18", tag="in1k", labels=names, model_kwargs={"num_classes": 1000},
                  preprocessing={"input_size": [3, 32, 32], "resize_size": 36, "crop_mode": "center"})  # fmt: skip
    assert main(["eval", "resnet18.in1k", "--dataset", "imagefolder", "--data-dir", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["label_matching"] == "by ImageNet id" and report["num_samples"] == 6
    assert set(report["per_class_top1"]) == set(CLASSES) and "confusion" not in report  # 1000 x 1000 left out
    assert main(["eval", "resnet18.in1k", "--dataset", "imagefolder", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "matched to the weights' by ImageNet id" in out and "resize 36 (bilinear), centre crop 32x32" in out
