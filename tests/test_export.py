"""`zoo export` and `--runtime onnxruntime`: verified ONNX and pt2 files that compute what the model computes, kept
beside their weights in the registry, refused (one line, nothing left) when they do not, int8 within an accuracy
budget, and the same answers from predict, eval and benchmark in onnxruntime as in eager torch."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_vision import one_thread

import zoo_core
from zoo_core import plugins
from zoo_core.cli import main

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

# A plugin installed as a real distribution: `moody` branches on its input's brightness (one head for bright
# pictures, another for dark ones), `steady` is the same network without the branch. Their weights come from the
# plugin (seeded), with no file checksum, as torchvision's and timm's do.
MOODY = '''
from typing import Any

from zoo_core import hookimpl

LABELS = ["north", "east", "south", "west"]


def _build(branching: bool, num_classes: int = 4, in_chans: int = 3, pretrained: str | None = None) -> Any:
    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(in_chans, 8, 3, padding=1), nn.ReLU(),
                                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.bright = nn.Linear(8, num_classes)
            self.dark = nn.Linear(8, num_classes)

        def forward(self, x):
            h = self.features(x)
            if branching and x.mean() > 0:
                return self.bright(h)
            return self.dark(h)

    torch.manual_seed(0)
    return Net()


def build_moody(**kwargs: Any) -> Any:
    return _build(True, **kwargs)


def build_steady(**kwargs: Any) -> Any:
    return _build(False, **kwargs)


@hookimpl
def zoo_register_models(register: Any) -> None:
    tag = {"v1": {"source": "moody", "num_classes": 4, "labels": LABELS}}
    for name, builder in (("moody", build_moody), ("steady", build_steady)):
        register(name, builder, input_size=(3, 16, 16), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                 num_classes=4, pretrained=tag, default_tag="v1")
'''


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def digits_registry(tmp_path_factory: pytest.TempPathFactory, zoo_cache: Path) -> Path:
    """`zoo train simplecnn --dataset digits --epochs 1` once for the module: its registry (simplecnn.d1)."""
    root = tmp_path_factory.mktemp("digits")
    with pytest.MonkeyPatch.context() as mp, one_thread():
        mp.setenv("ZOO_HOME", str(root / "home"))
        mp.setenv("ZOO_CACHE", str(zoo_cache))
        plugins.reset()
        assert main(["train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "d1",
                     "--device", "cpu"]) == 0  # fmt: skip
    plugins.reset()
    return root / "home" / "registry"


@pytest.fixture
def digits(digits_registry: Path, zoo_home: Path) -> str:
    shutil.copytree(digits_registry, zoo_home / "registry", copy_function=os.link, dirs_exist_ok=True)
    plugins.reset()
    return "simplecnn.d1"


@pytest.fixture
def moody(plugin_path) -> None:
    plugin_path("zoo-moody", "moody", "zoo_moody", MOODY)


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of a zoo command; stderr without warnings about other plugins."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, "".join(line for line in err.splitlines(keepends=True) if not line.startswith("zoo: warning"))


def exports_dir(zoo_home: Path) -> Path:
    return zoo_home / "registry" / ".exports"


def stored_files(zoo_home: Path) -> list[Path]:
    return sorted(p for p in exports_dir(zoo_home).rglob("*") if p.is_file()) if exports_dir(zoo_home).exists() else []


def digits_test_inputs(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The digits test split as a consumer would prepare it from the export's own metadata alone."""
    from zoo_core.plugin_api import load_dataset

    data = load_dataset("digits", for_training=False)
    split = data.split("test")
    return split.pixels.permute(0, 3, 1, 2).float().div(255).numpy(), split.labels.numpy()


# -- ONNX: verified, stored beside the weights, reused, carrying its metadata ------------------------------------


def test_onnx_export_is_verified_stored_beside_the_weights_and_reused(digits, zoo_home, tmp_path, capsys):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "out" / "d1.onnx"
    code, stdout, _ = run(capsys, "export", digits, "--format", "onnx", "--out", str(out), "--json")
    assert code == 0
    record = json.loads(stdout)
    assert record["reused"] is False and record["exporter"] == "dynamo" and record["opset"] >= 17
    parity = record["parity"]
    assert parity["passed"] and parity["images"] >= 64 and parity["batches"] == [1, 16]
    assert parity["source"] == "digits test" and parity["top1_differs"] == 0  # the weights' own evaluation data
    assert parity["max_abs_diff"] < 1e-3 and parity["tolerance"] == {"atol": 1e-3, "rtol": 1e-3,
                                                                    "rule": "|Δ| <= atol + rtol * max|eager logit|"}
    entry = zoo_core.weights_info(digits)
    assert record["weights"]["sha256"] == entry.sha256  # addressed by the weights it came from
    assert Path(record["file"]).parent.parent.name == entry.sha256
    assert out.read_bytes() == Path(record["file"]).read_bytes()
    sidecar = json.loads(out.with_name("d1.onnx.json").read_text())
    assert sidecar["labels"] == [str(i) for i in range(10)] and sidecar["file"] == "d1.onnx"
    assert sidecar["sha256"] == record["sha256"] and sidecar["size_bytes"] == out.stat().st_size
    assert record["latency"]["export_ms"] > 0 and record["latency"]["eager_ms"] > 0

    # a consumer needs nothing but the file: labels and preprocessing ride in its metadata_props
    props = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    pre = json.loads(props["preprocessing"])
    assert json.loads(props["labels"]) == sidecar["labels"] and pre["input_size"] == [1, 8, 8]
    pixels, labels = digits_test_inputs(digits)
    x = ((pixels - np.array(pre["mean"]).reshape(1, -1, 1, 1)) / np.array(pre["std"]).reshape(1, -1, 1, 1))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    exported = session.run(None, {"input": x.astype(np.float32)})[0]
    model = zoo_core.create_model(digits).eval()
    with torch.no_grad():
        eager = model(torch.from_numpy(x.astype(np.float32))).numpy()
    assert (exported.argmax(1) == eager.argmax(1)).all() and np.abs(exported - eager).max() < 1e-3

    # the same weights again, under any name form: the stored export, nothing exported
    assert main(["registry", "default", "simplecnn", "d1"]) == 0
    capsys.readouterr()
    for name in (digits, "cnn:simplecnn.d1", "simplecnn"):
        code, stdout, _ = run(capsys, "export", name, "--json")
        again = json.loads(stdout)
        assert code == 0 and again["reused"] is True and again["sha256"] == record["sha256"]

    code, stdout, _ = run(capsys, "registry", "show", digits, "--json")
    shown = json.loads(stdout)
    assert code == 0 and [e["variant"] for e in shown["exports"]] == ["onnx"]
    code, stdout, _ = run(capsys, "registry", "show", digits)
    assert "export         onnx" in stdout and "parity on 64 digits test images" in stdout


def test_an_hf_hub_name_exports_the_weights_it_pulls(digits, hub_server, capsys):
    code, _, err = run(capsys, "push", digits, "--repo", "alice/digits")
    assert code == 0, err
    code, stdout, err = run(capsys, "export", "hf-hub:alice/digits", "--json")
    assert code == 0, err
    record = json.loads(stdout)
    pulled = zoo_core.weights_info("hf-hub:alice/digits")
    assert record["model"] == "cnn:simplecnn.hub-alice-digits" and record["weights"]["sha256"] == pulled.sha256
    assert record["parity"]["passed"] and record["labels"] == [str(i) for i in range(10)]


def test_a_damaged_stored_export_is_not_reused(digits, zoo_home, capsys):
    code, stdout, _ = run(capsys, "export", digits, "--json")
    first = json.loads(stdout)
    Path(first["file"]).write_bytes(b"not onnx")  # cut short, edited: its size no longer matches its record
    code, stdout, _ = run(capsys, "export", digits, "--json")
    again = json.loads(stdout)
    assert code == 0 and again["reused"] is False and again["sha256"] == first["sha256"]
    assert Path(again["file"]).stat().st_size == again["size_bytes"]


def test_pt2_export_loads_with_torch_export_load_and_carries_metadata(digits, tmp_path, capsys):
    out = tmp_path / "d1.pt2"
    code, stdout, _ = run(capsys, "export", digits, "--format", "pt2", "--out", str(out), "--json")
    record = json.loads(stdout)
    assert code == 0 and record["exporter"] == "torch.export" and record["variant"] == "pt2"
    assert record["parity"]["passed"] and record["parity"]["batches"] == [1, 16]
    program = torch.export.load(str(out))
    x = torch.randn(3, 1, 8, 8)
    model = zoo_core.create_model(digits).eval()
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-5, atol=1e-5)
    from zoo_export.exporters import read_metadata

    assert read_metadata(out)["labels"] == [str(i) for i in range(10)]
    assert read_metadata(out)["preprocessing"]["input_size"] == [1, 8, 8]


def test_a_fixed_batch_and_an_opset_are_exports_of_their_own(digits, capsys):
    code, stdout, _ = run(capsys, "export", digits, "--batch", "4", "--opset", "18", "--json")
    record = json.loads(stdout)
    assert code == 0 and record["variant"] == "onnx-opset18-batch4" and record["opset"] == 18
    assert record["parity"]["batches"] == [4] and record["input"]["shape"][0] == 4
    from zoo_export.runtime import onnx_module

    module = onnx_module(record["file"])  # the runtime takes any batch: it runs the file in its own
    model = zoo_core.create_model(digits).eval()
    x = torch.randn(6, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(module(x), model(x), rtol=1e-4, atol=1e-4)


# -- the gate refuses what does not compute what the model computes ----------------------------------------------


def test_a_plugin_model_that_branches_on_its_input_is_refused_with_one_line(moody, zoo_home, tmp_path, capsys):
    out = tmp_path / "moody.onnx"
    code, stdout, stderr = run(capsys, "export", "moody.v1", "--out", str(out))
    assert code == 1 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error: moody.v1: export refused, nothing kept")
    assert "top-1 differs on" in lines[0] and "of 64 images" in lines[0] and "branches on its input" in lines[0]
    assert "Traceback" not in stderr
    assert not out.exists() and not out.with_name("moody.onnx.json").exists()
    assert stored_files(zoo_home) == []  # nothing registered
    assert [p for p in (zoo_home / "registry" / ".staging").iterdir()] == []  # nothing left half-made
    code, _, stderr = run(capsys, "export", "moody.v1", "--format", "pt2")
    assert code == 1 and "export refused" in stderr and stored_files(zoo_home) == []


def test_weights_without_a_checksum_export_by_their_loaded_tensors(moody, zoo_home, tmp_path, capsys):
    """A plugin's own weights (like torchvision's and timm's) have no file checksum: the export is addressed by
    the digest of the tensors as loaded, and predict in onnxruntime agrees with eager predict."""
    from zoo_export.verified import state_digest

    code, stdout, _ = run(capsys, "export", "steady", "--json")
    record = json.loads(stdout)
    assert code == 0 and record["parity"]["source"].startswith("generated")  # no dataset known for these weights
    assert record["weights"]["sha256"] == state_digest(zoo_core.create_model("steady.v1"))
    picture = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(picture)
    answers = {}
    for runtime in ("torch", "onnxruntime"):
        code, stdout, _ = run(capsys, "predict", "steady.v1", str(picture), "--runtime", runtime, "--json")
        answers[runtime] = json.loads(stdout)
    eager, exported = answers["torch"], answers["onnxruntime"]
    assert exported["runtime"]["runtime"] == "onnxruntime" and exported["runtime"]["reused"] is True
    assert eager["runtime"] == {"runtime": "torch"}
    top_e, top_o = eager["predictions"][0]["top"], exported["predictions"][0]["top"]
    assert [t["class"] for t in top_e] == [t["class"] for t in top_o]
    assert [t["probability"] for t in top_e] == pytest.approx([t["probability"] for t in top_o], abs=1e-5)


def test_the_gate_counts_ties_and_refuses_a_wrong_logit():
    from zoo_export.parity import ATOL, check

    x = np.zeros((64, 1, 2, 2), np.float32)
    logits = np.tile(np.array([[2.0, 2.0 + ATOL / 2, -1.0]]), (64, 1))  # classes 0 and 1 tie within tolerance
    same = check(lambda b: logits[: len(b)], lambda b: logits[: len(b)][:, [1, 0, 2]], x, [1, 16], "test")
    assert same.passed and same.ties == 64 and same.top1_differs == 0
    wrong = logits.copy()
    wrong[:, 2] = 3.0
    refused = check(lambda b: logits[: len(b)], lambda b: wrong[: len(b)], x, [1, 16], "test")
    assert not refused.passed and refused.top1_differs == 64
    assert refused.summary().startswith("top-1 differs on 64 of 64 images; max |Δlogit| 4")


def test_the_torchscript_exporter_is_used_when_dynamo_fails_and_says_so(digits, monkeypatch, capsys):
    from zoo_export import exporters

    def fail(*args, **kwargs):
        raise exporters.ExportFailed(exporters.DYNAMO, RuntimeError("no graph"), [])

    monkeypatch.setattr(exporters, "onnx_dynamo", fail)
    code, stdout, _ = run(capsys, "export", digits, "--json")
    record = json.loads(stdout)
    assert code == 0 and record["exporter"] == "torchscript" and record["opset"] == 17
    assert record["exporter_fallback"] == "dynamo: failed: RuntimeError: no graph" and record["parity"]["passed"]


def test_generated_parity_pictures_are_fixed_and_varied():
    from zoo_export.images import generated

    pre = zoo_core.Preprocessing((3, 16, 16), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    a, b = generated(pre), generated(pre)
    assert a.tensors.shape == (64, 3, 16, 16) and torch.equal(a.tensors, b.tensors)
    means = a.tensors.mean(dim=(1, 2, 3))
    assert (means > 0.5).sum() >= 8 and (means < -0.5).sum() >= 8  # bright ones and dark ones
    assert a.tensors.std(dim=(2, 3)).mean(dim=1).max() > 4 * a.tensors.std(dim=(2, 3)).mean(dim=1).min()


@pytest.mark.parametrize("args, message", [
    (["export", "simplecnn.d1", "--batch", "lots"], "--batch must be 'dynamic' or a number"),
    (["export", "simplecnn.d1", "--format", "pt2", "--opset", "17"], "--opset is for --format onnx"),
    (["export", "simplecnn.d1", "--int8", "--format", "pt2"], "--int8 quantizes the ONNX export"),
    (["export", "simplecnn.d1", "--int8", "--max-drop", "-1"], "--max-drop is in top-1 points"),
    (["export", "simplecnn.d1", "--calib", "digits"], "--calib is for --int8"),
    (["eval", "simplecnn.d1", "--dataset", "digits", "--int8"], "add --runtime onnxruntime"),
    (["predict", "simplecnn.d1", "x.png", "--runtime", "onnxruntime", "--img-size", "16"], "drop --img-size"),
])  # fmt: skip
def test_bad_options_are_one_line(digits, args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    code, _, stderr = run(capsys, *args)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and message in stderr


def test_a_missing_extra_says_what_to_install(digits, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # as if not installed
    code, _, stderr = run(capsys, "export", digits)
    assert code == 2 and "pip install 'zoo[export]'" in stderr and len(stderr.strip().splitlines()) == 1


# -- int8 within a budget, and the runtime behind eval and benchmark ---------------------------------------------


def test_int8_is_three_times_smaller_within_a_point_and_eval_and_benchmark_run_it(digits, tmp_path, capsys):
    code, stdout, _ = run(capsys, "export", digits, "--int8", "--calib", "digits", "--json")
    record = json.loads(stdout)
    assert code == 0 and record["variant"] == "onnx-int8" and record["int8"] is True
    q = record["quantization"]
    assert q["format"] == "QDQ" and q["per_channel"] and q["calibration"]["split"] == "train"
    assert q["calibration"]["images"] == 256 and q["evaluation"]["split"] == "test"
    assert record["fp32_export"]["size_bytes"] >= 3 * record["size_bytes"] and q["size_ratio"] >= 3
    assert q["evaluation"]["drop"] <= 1.0 and record["latency"]["int8_ms"] > 0

    code, stdout, _ = run(capsys, "eval", digits, "--dataset", "digits", "--json")
    eager = json.loads(stdout)
    code, stdout, _ = run(capsys, "eval", digits, "--dataset", "digits", "--runtime", "onnxruntime", "--int8",
                          "--json")  # fmt: skip
    int8 = json.loads(stdout)
    assert code == 0 and int8["runtime"]["export"] == "onnx-int8" and int8["runtime"]["reused"] is True
    assert set(int8) == set(eager) and int8["num_samples"] == eager["num_samples"] == 359
    assert eager["top1"] - int8["top1"] <= 1.0 and int8["top1"] == q["evaluation"]["int8_top1"]
    code, stdout, _ = run(capsys, "eval", digits, "--dataset", "digits", "--runtime", "onnxruntime", "--json")
    fp32 = json.loads(stdout)
    assert fp32["top1"] == eager["top1"] and fp32["confusion"] == eager["confusion"]

    code, stdout, _ = run(capsys, "benchmark", digits, "--runtime", "onnxruntime", "--int8", "--iters", "3",
                          "--warmup", "1", "--json")  # fmt: skip
    bench = json.loads(stdout)[0]
    assert code == 0 and bench["error"] is None and bench["infer"]["samples_per_sec"] > 0
    env = bench["environment"]
    assert (env["runtime"], env["provider"], env["export"]) == ("onnxruntime", "CPUExecutionProvider", "onnx-int8")
    assert bench["param_count"] == 163_850  # the weights' parameters, not the runtime wrapper's
    code, _, stderr = run(capsys, "benchmark", digits, "--runtime", "onnxruntime", "--mode", "train")
    assert code == 2 and "--runtime onnxruntime measures inference" in stderr
