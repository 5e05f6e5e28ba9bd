"""`zoo predict`, `zoo activations`, `zoo gradcam` and their Python API (zoo_vision): what the weights' own
library would compute, pictures of the right size, the known traps of hooks and gradients, and a real check of
Grad-CAM (the pointing game on a model trained by `zoo train` on pictures whose evidence sits at a known place)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from zoo_registry import store
from zoo_vision import activations, gradcam, gradcam_maps, list_layers, load_model, predict
from zoo_vision.geometry import input_window
from zoo_vision.pictures import grid_layout

import zoo_core
from zoo_core import plugins
from zoo_core.cli import main
from zoo_core.data_config import create_transform
from zoo_core.errors import UsageError
from zoo_core.weights import Preprocessing

# -- helpers -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def one_thread():
    """Small models at small sizes run as fast on one thread, and do not slow to a crawl when other processes
    share the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def copy_registry(source: Path, zoo_home: Path) -> None:
    """A registry made once for the module, into this test's ZOO_HOME (hard links: entries are replaced by
    renames, never written in place)."""
    import os

    shutil.copytree(source, zoo_home / "registry", copy_function=os.link, dirs_exist_ok=True)
    plugins.reset()


def hooks_left(model: nn.Module) -> list[str]:
    """Every hook still attached to the model's modules and parameters, or torch-wide."""
    left = []
    for name, module in model.named_modules():
        for kind in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            if getattr(module, kind):
                left.append(f"{name or 'model'}.{kind}")
    left += [f"{name}._backward_hooks" for name, p in model.named_parameters() if p._backward_hooks]
    from torch.nn.modules import module as torch_module

    for kind in ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                 "_global_backward_pre_hooks"):  # fmt: skip
        if getattr(torch_module, kind):
            left.append(kind)
    return left


def photo(path: Path, size: tuple[int, int] = (70, 50), seed: int = 0) -> Path:
    """A noisy colour picture of ``size`` (width, height)."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


TV_PRE = {"input_size": [3, 64, 64], "resize_size": 72, "crop_mode": "center", "crop_pct": 64 / 72,
          "interpolation": "bilinear", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # fmt: skip
TIMM_PRE = {"input_size": [3, 64, 64], "crop_pct": 0.875, "crop_mode": "center", "interpolation": "bicubic",
            "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}  # fmt: skip
LABELS = ["apple", "banana", "cherry"]


def publish_random(model_name: str, pre: dict, tag: str = "rand") -> nn.Module:
    """Seeded random weights with labels and preprocessing, published like trained ones (no downloads here)."""
    torch.manual_seed(0)
    model = zoo_core.create_model(model_name, num_classes=3)
    store.publish(model, model_name=model_name, tag=tag, labels=LABELS, model_kwargs={"num_classes": 3},
                  preprocessing=pre)  # fmt: skip
    return model


# -- geometry: the model's input window on the picture ------------------------------------------------------

WINDOWS = {
    "torchvision": Preprocessing((3, 32, 32), (0, 0, 0), (1, 1, 1), "bilinear", 32 / 36, "center", 36),
    "timm": Preprocessing((3, 32, 32), (0, 0, 0), (1, 1, 1), "bicubic", 0.875, "center"),
    "wide": Preprocessing((3, 24, 40), (0, 0, 0), (1, 1, 1), "bilinear", 0.9, "center"),
    "squash": Preprocessing((3, 32, 32), (0, 0, 0), (1, 1, 1), "bilinear", 1.0, "squash"),
    "border": Preprocessing((3, 32, 32), (0, 0, 0), (1, 1, 1), "bilinear", 1.0, "border"),
    "pads": Preprocessing((3, 32, 32), (0, 0, 0), (1, 1, 1), "bilinear", 1.25, "center"),
}


@pytest.mark.parametrize("size", [(70, 50), (50, 70), (33, 33), (90, 21)])
@pytest.mark.parametrize("preset", list(WINDOWS))
def test_input_window_follows_the_transform(preset: str, size: tuple[int, int]) -> None:
    """A picture whose red and green channels encode each pixel's x and y: after the weights' transform,
    every input pixel must show the picture point the window says it shows."""
    pre = WINDOWS[preset]
    w, h = size
    xs, ys = np.meshgrid(np.arange(w), np.arange(h))
    coded = np.stack([xs * 255 / (w - 1), ys * 255 / (h - 1), np.full_like(xs, 128)], axis=-1)
    tensor = create_transform(pre)(Image.fromarray(coded.round().astype(np.uint8))).numpy()
    window = input_window(pre, size)
    th, tw = pre.input_size[1:]
    errors, padded = [], 0
    for v in range(th):
        for u in range(tw):
            x, y = window.to_image(u + 0.5, v + 0.5)
            if not (1.5 < x < w - 1.5 and 1.5 < y < h - 1.5):
                if x < 0 or y < 0 or x > w or y > h:  # outside the picture: the crop padded it
                    padded += 1
                    assert tensor[:, v, u].max() < 0.5 / 255 + 1e-6 or np.allclose(tensor[:, v, u], tensor[:, 0, 0])
                continue
            errors.append(abs(tensor[0, v, u] * (w - 1) - (x - 0.5)))
            errors.append(abs(tensor[1, v, u] * (h - 1) - (y - 0.5)))
    assert errors, "no input pixel inside the picture"
    assert np.median(errors) < 0.6 and max(errors) < 2.0, (np.median(errors), max(errors))
    x0, y0, x1, y1 = window.box()
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    if preset == "pads":
        assert padded > 0


def test_project_puts_the_map_on_the_picture_and_nothing_outside() -> None:
    pre = WINDOWS["torchvision"]
    # 70x50 -> resize to 50x36 -> crop 32x32 from (9, 2): picture x 12.6..57.4, y 2.8..47.2
    window = input_window(pre, (70, 50))
    assert window.box() == pytest.approx((12.6, 50 / 36 * 2, 57.4, 50 / 36 * 34))
    hot = torch.zeros(1, 4, 4)
    hot[0, 0, 3] = 1.0  # the top-right cell of the input
    over, seen = window.project(hot)
    assert over.shape == (1, 50, 70) and seen.shape == (50, 70)
    assert not seen[:, :12].any() and not seen[:, 58:].any() and not seen[:2].any() and not seen[48:].any()
    assert seen[3:47, 13:57].all()
    assert float(over[0][~seen].abs().max()) == 0.0
    y, x = divmod(int(over[0].argmax()), 70)
    x0, y0, x1, y1 = window.box()
    assert x > (x0 + x1) / 2 and y < (y0 + y1) / 2  # the top-right of what the model sees


# -- the traps: in-place ReLU, frozen parameters, hooks left behind, an all-zero map, NHWC ---------------------


class TinyCNN(nn.Module):
    """conv -> ReLU -> conv -> ReLU -> pool -> linear; ``inplace`` ReLUs overwrite the convs' outputs."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU(inplace=inplace)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
        self.relu2 = nn.ReLU(inplace=inplace)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x))))).flatten(1))


TINY_PRE = Preprocessing((3, 16, 16), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "bilinear", 1.0, "squash")


def tiny(model: nn.Module):
    return load_model(model, preprocessing=TINY_PRE, device="cpu")


def tiny_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(3)
    inplace = TinyCNN(inplace=True)
    plain = TinyCNN(inplace=False)
    plain.load_state_dict(inplace.state_dict())
    return inplace, plain


@pytest.mark.parametrize("layer", ["conv2", "relu2", "conv1"])
def test_in_place_relu_changes_nothing(tmp_path: Path, layer: str) -> None:
    inplace, plain = tiny_pair()
    picture = photo(tmp_path / "p.png", (20, 16))
    maps = [gradcam(tiny(m), picture, layer=layer, target=1) for m in (inplace, plain)]
    assert torch.allclose(maps[0].layer_map, maps[1].layer_map, atol=1e-6) and float(maps[0].layer_map.max()) > 0
    assert maps[0].peak == maps[1].peak
    acts = [activations(tiny(m), picture, layer=layer).maps for m in (inplace, plain)]
    assert torch.allclose(acts[0], acts[1])
    if layer.startswith("conv"):  # what the conv computed, before the in-place ReLU overwrote it
        assert float(acts[0].min()) < 0
    assert hooks_left(inplace) == [] and hooks_left(plain) == []


def test_frozen_parameters_and_inference_mode(tmp_path: Path) -> None:
    model, reference = tiny_pair()
    for p in model.parameters():
        p.requires_grad_(False)
    picture = photo(tmp_path / "p.png", (16, 16))
    expected = gradcam(tiny(reference), picture, layer="conv2").layer_map
    with torch.inference_mode():
        frozen = gradcam(tiny(model), picture, layer="conv2").layer_map
    assert torch.allclose(frozen, expected, atol=1e-6) and float(frozen.max()) > 0
    assert all(not p.requires_grad and p.grad is None for p in model.parameters())
    assert all(p.grad is None for p in reference.parameters())  # nothing accumulated into .grad either


def test_no_hook_is_left_even_when_a_call_fails(tmp_path: Path) -> None:
    model, _ = tiny_pair()
    model.train()
    picture = photo(tmp_path / "p.png", (16, 16))
    inputs = create_transform(TINY_PRE)(Image.open(picture))[None]
    maps = gradcam_maps(model, inputs, torch.tensor([0]), "conv2")
    assert maps.shape == (1, 8, 8) and model.training  # the caller's mode is restored
    with pytest.raises(Exception):  # noqa: B017 - whatever captum raises for a class the model lacks
        gradcam_maps(model, inputs, torch.tensor([7]), "conv2")
    assert model.training and hooks_left(model) == []
    with pytest.raises(UsageError, match="did you mean conv2"):
        gradcam(tiny(model), picture, layer="conv22")
    with pytest.raises(UsageError, match="classes 0..2"):
        gradcam(tiny(model), picture, target=5)
    assert hooks_left(model) == []


def test_an_all_zero_map_has_no_nan_and_no_peak(tmp_path: Path) -> None:
    """A class whose score only falls as the layer's (non-negative) maps rise: Grad-CAM is zero everywhere."""
    model, _ = tiny_pair()
    with torch.no_grad():
        model.fc.weight.fill_(-1.0)
        model.fc.bias.zero_()
    cam = gradcam(tiny(model), photo(tmp_path / "p.png"), layer="relu2", target=0)
    assert torch.isfinite(cam.map).all() and float(cam.map.abs().max()) == 0.0 and cam.peak is None
    assert cam.to_dict()["peak"] is None
    out = tmp_path / "zero.png"
    figure = cam.figure()
    figure.savefig(out, dpi=figure.dpi)
    assert Image.open(out).size == (70, 50)


class ChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class ChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


def test_an_nhwc_layer_gives_the_map_of_its_nchw_twin(tmp_path: Path) -> None:
    """A pointwise Linear over N x H x W x C (as in ConvNeXt or Swin blocks) against the same 1x1 convolution
    over N x C x H x W: one function, so one Grad-CAM map."""
    torch.manual_seed(5)
    stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))
    mix = nn.Linear(8, 6)  # 6 channels over 8x8: no mistaking N x H x W x C for N x C x H x W
    conv = nn.Conv2d(8, 6, 1)
    with torch.no_grad():
        conv.weight.copy_(mix.weight[:, :, None, None])
        conv.bias.copy_(mix.bias)
    nhwc = nn.Sequential(stem, ChannelsLast(), mix, ChannelsFirst(), nn.ReLU(), head)
    nchw = nn.Sequential(stem, conv, nn.ReLU(), head)
    picture = photo(tmp_path / "p.png", (24, 16))
    a = tiny(nhwc)
    assert a.layer("2").layout == "NHWC" and a.layer("2").channels == 6
    cam_nhwc = gradcam(a, picture, layer="2", target=2)
    cam_nchw = gradcam(tiny(nchw), picture, layer="1", target=2)
    assert cam_nhwc.layer_map.shape == (8, 8) and float(cam_nchw.layer_map.max()) > 0
    assert torch.allclose(cam_nhwc.layer_map, cam_nchw.layer_map, atol=1e-5)
    acts = activations(a, picture, layer="2")
    assert acts.maps.shape == (6, 8, 8) and acts.layout == "NHWC"
    assert hooks_left(nhwc) == []


def test_a_plain_timm_model_and_a_preprocessing_dict(tmp_path: Path) -> None:
    """A model built by timm itself: its own pretrained_cfg is the preprocessing, feature_info the layer."""
    import timm

    torch.manual_seed(0)
    net = timm.create_model("resnet10t", num_classes=4)
    loaded = load_model(net, img_size=64, device="cpu")
    assert loaded.preprocessing.input_size == (3, 64, 64) and loaded.preprocessing.interpolation == "bicubic"
    assert loaded.labels == ["0", "1", "2", "3"] and loaded.name == "ResNet"
    cam = gradcam(loaded, photo(tmp_path / "p.png"))
    assert (cam.layer, cam.layer_source) == ("layer4", "timm feature_info") and cam.map.shape == (50, 70)
    given = load_model(TinyCNN(inplace=False), device="cpu", labels=["a", "b", "c"],
                       preprocessing={"input_size": [3, 16, 16], "mean": [0.5] * 3, "std": [0.25] * 3})  # fmt: skip
    assert given.preprocessing.input_size == (3, 16, 16) and given.labels == ["a", "b", "c"]
    with pytest.raises(UsageError, match="2 labels given"):
        load_model(TinyCNN(inplace=False), preprocessing=TINY_PRE, labels=["a", "b"])
    with pytest.raises(UsageError, match="give preprocessing="):
        load_model(TinyCNN(inplace=False))
    with pytest.raises(UsageError, match="preprocessing: "):
        load_model(TinyCNN(inplace=False), preprocessing={"input_size": [3, 16], "mean": [0.5] * 3, "std": [1] * 3})


def test_a_model_without_feature_maps_is_a_clear_error(tmp_path: Path) -> None:
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 3))
    loaded = tiny(flat)
    with pytest.raises(UsageError, match="no layer with a feature-map output"):
        gradcam(loaded, photo(tmp_path / "p.png"))
    with pytest.raises(UsageError, match="no layer with a feature-map output"):
        activations(loaded, photo(tmp_path / "p.png"))


# -- every CNN of a small set: a finite map at the picture's size, no hook left --------------------------------

CNNS = [
    ("simplecnn", None, "features.7", "plugin", "features.0"),
    ("improvedcnn", None, "features.20", "plugin", "features.0"),
    ("torchvision:resnet18", 64, "layer4", "last feature map", "conv1"),
    ("torchvision:densenet121", 64, "features", "last feature map", "features.conv0"),
    ("timm:resnet18", 64, "layer4", "timm feature_info", "conv1"),
    ("timm:efficientnet_b0", 64, "blocks.6", "timm feature_info", "conv_stem"),
]


@pytest.mark.parametrize(("name", "img_size", "layer", "source", "first_conv"), CNNS)
def test_catalogue_cnns(tmp_path: Path, name: str, img_size: int | None, layer: str, source: str,
                        first_conv: str) -> None:  # fmt: skip
    picture = photo(tmp_path / "p.png", (70, 50))
    loaded = load_model(name, pretrained=False, img_size=img_size, device="cpu")
    cam = gradcam(loaded, picture)
    acts = activations(loaded, picture)
    assert (cam.layer, cam.layer_source) == (layer, source)
    assert cam.map.shape == (50, 70) and torch.isfinite(cam.map).all()
    assert 0 <= float(cam.map.min()) and float(cam.map.max()) <= 1
    assert cam.peak is None or (0 <= cam.peak[0] < 70 and 0 <= cam.peak[1] < 50)
    assert 0 < cam.probability <= 1 and cam.index == cam.predicted
    assert acts.layer == first_conv and acts.maps.dim() == 3 and torch.isfinite(acts.maps).all()
    assert [row["name"] for row in list_layers(loaded)][0] == first_conv
    assert hooks_left(loaded.model) == []


# -- the commands on published weights: torchvision's resnet18 and a timm CNN ----------------------------------


@pytest.fixture(scope="module")
def published_registry(tmp_path_factory: pytest.TempPathFactory, zoo_cache: Path) -> tuple[Path, dict]:
    """resnet18.rand and timm:efficientnet_b0.rand, published once for the module: (registry, the models)."""
    root = tmp_path_factory.mktemp("published")
    with pytest.MonkeyPatch.context() as mp, one_thread():
        mp.setenv("ZOO_HOME", str(root))
        mp.setenv("ZOO_CACHE", str(zoo_cache))
        plugins.reset()
        models = {"resnet18.rand": publish_random("resnet18", TV_PRE),
                  "timm:efficientnet_b0.rand": publish_random("timm:efficientnet_b0", TIMM_PRE)}  # fmt: skip
    plugins.reset()
    return root / "registry", models


@pytest.fixture
def published(published_registry: tuple[Path, dict], zoo_home: Path) -> dict[str, nn.Module]:
    copy_registry(published_registry[0], zoo_home)
    return published_registry[1]


def test_predict_reads_pictures_as_the_weights_library_does(tmp_path: Path, published: dict) -> None:
    """Probabilities equal a hand-written torchvision pipeline (resnet18) and timm's own data config."""
    import timm.data
    import torchvision.transforms as T

    pictures = [photo(tmp_path / f"{i}.png", size, seed=i) for i, size in enumerate([(70, 50), (40, 90), (64, 64)])]
    references = {
        "resnet18.rand": T.Compose([T.Resize(72), T.CenterCrop(64), T.ToTensor(), T.Normalize(TV_PRE["mean"],
                                                                                              TV_PRE["std"])]),
    }  # fmt: skip
    timm_model = published["timm:efficientnet_b0.rand"]
    timm_model.pretrained_cfg = {**timm_model.pretrained_cfg, **{k: TIMM_PRE[k] for k in TIMM_PRE if k != "input_size"},
                                 "input_size": tuple(TIMM_PRE["input_size"])}  # fmt: skip
    references["timm:efficientnet_b0.rand"] = timm.data.create_transform(
        **timm.data.resolve_data_config({}, model=timm_model))
    for spec, transform in references.items():
        batches: list[tuple[int, int]] = []
        results = predict(spec, [str(p) for p in pictures], top_k=3, batch_size=2, device="cpu",
                          progress=lambda done, total, seen=batches: seen.append((done, total)))  # fmt: skip
        assert batches == [(2, 3), (3, 3)] and [len(r.top) for r in results] == [3, 3, 3]
        net = published[spec].eval()
        with torch.no_grad():
            expected = torch.softmax(net(torch.stack([transform(Image.open(p).convert("RGB"))
                                                      for p in pictures])), dim=1)  # fmt: skip
        got = torch.stack([r.probabilities for r in results])
        assert torch.allclose(got, expected, atol=1e-5), spec
        assert [r.top[0][1] for r in results] == [LABELS[int(i)] for i in expected.argmax(1)]


def test_the_three_commands_on_resnet18_and_timm(tmp_path: Path, published: dict, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    pictures = [photo(folder / "a.png", (70, 50)), photo(folder / "b.jpg", (50, 70), 1),
                photo(folder / "more" / "c.png", (33, 33), 2)]  # fmt: skip
    for spec in published:
        assert main(["predict", spec, str(folder), "--top-k", "2", "--batch-size", "2", "--json",
                     "--device", "cpu"]) == 0  # fmt: skip
        report = json.loads(capsys.readouterr().out)
        assert [Path(p["image"]).name for p in report["predictions"]] == ["a.png", "b.jpg", "c.png"]
        for p in report["predictions"]:
            probs = [t["probability"] for t in p["top"]]
            assert len(probs) == 2 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
            assert {t["class"] for t in p["top"]} <= set(LABELS)
        assert report["preprocessing"]["input_size"] == [3, 64, 64] and report["errors"] == []

        assert main(["gradcam", spec, "--image", str(pictures[0]), "--json", "--save-map", "m.npy",
                     "--out", "cam.png", "--device", "cpu"]) == 0  # fmt: skip
        cam = json.loads(capsys.readouterr().out)
        assert set(cam) >= {"class", "index", "probability", "layer", "peak"}
        assert cam["class"] == report["predictions"][0]["top"][0]["class"]
        assert cam["probability"] == pytest.approx(report["predictions"][0]["top"][0]["probability"], abs=1e-5)
        assert Image.open("cam.png").size == (70, 50)
        heat = np.load("m.npy")
        assert heat.shape == (50, 70) and heat.dtype == np.float32 and np.isfinite(heat).all()
        if cam["peak"] is not None:
            assert heat[cam["peak"][1], cam["peak"][0]] == heat.max() == pytest.approx(1.0)

        assert main(["activations", spec, "--image", str(pictures[1]), "--json", "--max-maps", "10",
                     "--device", "cpu"]) == 0  # fmt: skip
        acts = json.loads(capsys.readouterr().out)
        rows, columns, scale, (h, w) = grid_layout(10, tuple(acts["size"]))
        assert (rows, columns) == (3, 4) and acts["shown"] == 10
        assert Image.open(acts["out"]).size == (w, h) and Path(acts["out"]).parent == Path(".")


def test_gradcam_target_layer_and_text_output(tmp_path: Path, published: dict, capsys) -> None:
    picture = str(photo(tmp_path / "p.png"))
    out = str(tmp_path / "out" / "cam.png")
    assert main(["gradcam", "resnet18.rand", "--image", picture, "--target", "cherry", "--layer", "layer3",
                 "--out", out, "--device", "cpu"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "cherry" in text and "layer layer3 (--layer)" in text and f"wrote {out}" in text
    assert Image.open(out).size == (70, 50)
    assert main(["gradcam", "resnet18.rand", "--image", picture, "--target", "2", "--json", "--out", out]) == 0
    assert json.loads(capsys.readouterr().out)["class"] == "cherry"
    assert main(["activations", "resnet18.rand", "--list-layers", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = [r["name"] for r in rows]
    assert names[0] == "conv1" and "layer4" in names and len(names) == len(set(names))
    assert {"name", "type", "channels", "size", "stride", "layout"} <= set(rows[0])
    assert main(["activations", "improvedcnn", "--list-layers"]) == 0  # no weights needed to list layers
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("features.20 "))
    assert row.split() == ["features.20", "ReLU", "256", "4x4", "8", "NCHW"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gradcam", "resnet18.rand", "--image", "IMG", "--target", "cherri"], "did you mean cherry"),
        (["gradcam", "resnet18.rand", "--image", "IMG", "--layer", "layer44"], "did you mean layer4"),
        (["gradcam", "resnet18.rand", "--image", "IMG", "--layer", "fc"], "has no feature-map output"),
        (["gradcam", "resnet18.rand", "--image", "IMG", "--out", "cam.txt"], "cannot draw a .txt"),
        (["gradcam", "resnet18.rand", "--image", "IMG", "--save-map", "map.png"], "name it FILE.npy"),
        (["gradcam", "resnet18.rand", "--image", "IMG", "--img-size", "0"], "--img-size must be positive"),
        (["gradcam", "resnet18.rand"], "give a picture"),
        (["gradcam", "resnet18.rand", "--image", "missing.png"], "cannot decode image missing.png"),
        (["gradcam", "improvedcnn", "--image", "IMG"], "has no trained weights"),
        (["activations", "resnet18.rand", "--image", "IMG", "--out", "/dev/null/x.png"], "not a folder"),
        (["activations", "resnet18.rand", "--image", "IMG", "--layer", "layer9"], "unknown layer"),
        (["predict", "resnet18.rand"], "give one or more images"),
        (["predict", "resnet18.rand", "nowhere/"], "no such file or folder"),
        (["predict", "resnet18.rand", "IMG", "--top-k", "0"], "at least 1"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, published: dict, capsys, monkeypatch, args: list[str],
                             message: str) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    picture = str(photo(tmp_path / "p.png"))
    assert main([picture if a == "IMG" else a for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_predict_skips_an_unreadable_picture_and_says_so(tmp_path: Path, published: dict, capsys) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    photo(folder / "a.png")
    (folder / "broken.jpg").write_bytes(b"not a picture")
    photo(folder / "c.png", seed=3)
    assert main(["predict", "resnet18.rand", str(folder), "--top-k", "1"]) == 1
    captured = capsys.readouterr()
    assert "a.png" in captured.out and "c.png" in captured.out and "broken.jpg" not in captured.out
    assert "skipped cannot decode image" in captured.err and "1 of 3 images could not be read" in captured.err


def test_missing_captum_is_a_one_line_error(tmp_path: Path, published: dict, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for module in [m for m in sys.modules if m == "captum" or m.startswith("captum.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "captum", None)  # import captum now raises ImportError
    picture = str(photo(tmp_path / "p.png"))
    assert main(["gradcam", "resnet18.rand", "--image", picture]) == 2
    err = capsys.readouterr().err
    assert 'pip install "zoo[vision]"' in err and err.count("\n") == 1
    # the other two commands do not need it
    assert main(["predict", "resnet18.rand", picture, "--top-k", "1"]) == 0
    assert main(["activations", "resnet18.rand", "--image", picture]) == 0
    assert Path("p_activations_conv1.png").is_file()


def test_a_model_without_feature_maps_from_the_command_line(tmp_path: Path, plugin_path, capsys) -> None:
    plugin_path("zoo-flatnet", "flatnet", "zoo_flatnet", FLATNET)
    torch.manual_seed(0)
    model = zoo_core.create_model("flatnet", num_classes=3)
    store.publish(model, model_name="flatnet", tag="rand", labels=LABELS, model_kwargs={"num_classes": 3},
                  preprocessing={"input_size": [3, 8, 8], "mean": [0.5] * 3, "std": [0.25] * 3})  # fmt: skip
    picture = str(photo(tmp_path / "p.png"))
    for command in (["gradcam", "flatnet.rand", "--image", picture], ["activations", "flatnet.rand", "--image",
                                                                       picture]):  # fmt: skip
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "no layer with a feature-map output" in err and err.count("\n") == 1
    assert main(["predict", "flatnet.rand", picture, "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["predictions"][0]["top"]) == 3


FLATNET = '''
from zoo_core import hookimpl


def build_flatnet(num_classes=3):
    import torch.nn as nn

    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, num_classes))


@hookimpl
def zoo_register_models(register):
    register("flatnet", build_flatnet, family="mlp", input_size=(3, 8, 8), num_classes=3)
'''


# -- Grad-CAM finds the evidence: the pointing game on a model `zoo train` trained ------------------------------

SPOT_CLASSES = ["blue", "red"]  # the class folders' (sorted) order
SPOT_COLOURS = np.array([[0.25, 0.25, 0.75], [0.75, 0.25, 0.25]])


def spot_pictures(count: int, side: int, seed: int, grid: int = 4) -> tuple[list, np.ndarray, list]:
    """Pictures tiled ``grid`` x ``grid`` with random colours; one tile, at a random place, has its class's
    colour (bluish or reddish), which no other tile comes near. -> (PIL images, labels, evidence boxes)."""
    rng = np.random.default_rng(seed)
    cell = side // grid
    labels = rng.integers(0, 2, count)
    where = rng.integers(0, grid * grid, count)
    colours = rng.uniform(0, 1, (count * grid * grid * 4, 3))
    far = np.linalg.norm(colours[:, None] - SPOT_COLOURS[None], axis=2).min(axis=1) > 0.45
    colours = colours[far][: count * grid * grid].reshape(count, grid, grid, 3)
    colours[np.arange(count), where // grid, where % grid] = SPOT_COLOURS[labels]
    pixels = np.repeat(np.repeat(colours, cell, axis=1), cell, axis=2) + rng.normal(0, 0.1, (count, side, side, 3))
    pixels = (np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)
    boxes = [((w % grid) * cell, (w // grid) * cell, (w % grid + 1) * cell, (w // grid + 1) * cell) for w in where]
    return [Image.fromarray(p) for p in pixels], labels, boxes


@pytest.fixture(scope="module")
def spot_registry(tmp_path_factory: pytest.TempPathFactory, zoo_cache: Path) -> Path:
    """`zoo train simplecnn` on 1,000 32x32 spot pictures (3 epochs, seconds): its registry, published as
    simplecnn.spot."""
    root = tmp_path_factory.mktemp("spot")
    for split, count, seed in (("train", 1000, 0), ("test", 100, 1)):
        images, labels, _ = spot_pictures(count, 32, seed)
        for name in SPOT_CLASSES:
            (root / "data" / split / name).mkdir(parents=True)
        for i, (image, label) in enumerate(zip(images, labels, strict=True)):
            image.save(root / "data" / split / SPOT_CLASSES[label] / f"{i:04d}.png")
    with pytest.MonkeyPatch.context() as mp, one_thread():
        mp.setenv("ZOO_HOME", str(root / "home"))
        mp.setenv("ZOO_CACHE", str(zoo_cache))
        plugins.reset()
        assert main(["train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(root / "data"),
                     "--epochs", "3", "--tag", "spot", "--val-fraction", "0", "--device", "cpu"]) == 0  # fmt: skip
    plugins.reset()
    return root / "home" / "registry"


@pytest.fixture
def spot(spot_registry: Path, zoo_home: Path) -> str:
    copy_registry(spot_registry, zoo_home)
    return "simplecnn.spot"


def pointing_game(model, images: list, labels: np.ndarray, boxes: list, margin: int = 4) -> tuple[float, float]:
    """(share of pictures whose Grad-CAM peak for their class falls on the evidence tile, give or take
    ``margin`` pixels; the share a peak placed uniformly at random would hit)."""
    hits, chance = 0, 0.0
    for image, label, (x0, y0, x1, y1) in zip(images, labels, boxes, strict=True):
        w, h = image.size
        cam = gradcam(model, image, target=int(label))
        if cam.peak is not None:
            hits += x0 - margin <= cam.peak[0] < x1 + margin and y0 - margin <= cam.peak[1] < y1 + margin
        chance += (min(w, x1 + margin) - max(0, x0 - margin)) * (min(h, y1 + margin) - max(0, y0 - margin)) / (w * h)
    return hits / len(images), chance / len(images)


def test_gradcam_points_at_the_evidence_and_random_weights_do_not(spot: str) -> None:
    # Pictures at 64x64, twice the training size: the tag's own preprocessing resizes them, and the peak is
    # reported in the pictures' pixels, so the geometry is part of what is checked.
    images, labels, boxes = spot_pictures(100, 64, seed=2)
    loaded = load_model(spot, device="cpu")
    assert loaded.labels == SPOT_CLASSES
    hit, chance = pointing_game(loaded, images, labels, boxes)
    assert hit >= 0.8 and hit >= 5 * chance, (hit, chance)
    accuracy = np.mean([p.top[0][1] == SPOT_CLASSES[y] for p, y in zip(predict(loaded, images), labels,
                                                                      strict=True)])  # fmt: skip
    assert accuracy >= 0.7, accuracy  # far above the 50% of guessing
    randomised = []
    for seed in range(3):  # the same network and pictures, its weights drawn afresh
        torch.manual_seed(seed)
        for module in loaded.model.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        randomised.append(pointing_game(loaded, images, labels, boxes)[0])
    assert np.mean(randomised) <= 2 * chance, (randomised, chance)
    assert hooks_left(loaded.model) == []


def test_the_three_commands_on_a_trained_simplecnn(spot: str, tmp_path: Path, capsys) -> None:
    images, labels, _ = spot_pictures(3, 48, seed=5)
    for i, image in enumerate(images):
        image.save(tmp_path / f"{i}.png")
    assert main(["predict", spot, str(tmp_path / "0.png"), str(tmp_path / "1.png"), "--top-k", "2"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("simplecnn.spot: resize 32 (bilinear), squash then crop 32x32")
    assert text.count("%  blue") + text.count("%  red ") == 4
    out = tmp_path / "cam.png"
    assert main(["gradcam", "-m", spot, "--image", str(tmp_path / "2.png"), "--out", str(out), "--json"]) == 0
    cam = json.loads(capsys.readouterr().out)
    assert cam["layer"] == "features.7" and cam["class"] in SPOT_CLASSES and Image.open(out).size == (48, 48)
    grid = tmp_path / "maps.png"
    assert main(["activations", spot, "--image", str(tmp_path / "2.png"), "--out", str(grid)]) == 0
    assert "features.0 (Conv2d): 32 maps of 32x32, stride 1" in capsys.readouterr().out
    rows, columns, scale, (h, w) = grid_layout(32, (32, 32))
    assert (rows, columns, scale) == (6, 6, 2) and Image.open(grid).size == (w, h) == (6 * 64 + 7 * 2,) * 2


def test_the_cnn_plugin_declares_the_last_relu_before_the_last_pool() -> None:
    for name in ("simplecnn", "improvedcnn"):
        entry = plugins.get_catalogue().get("model", name)
        model = zoo_core.create_model(name)
        modules = dict(model.named_modules())
        layer = entry.metadata["gradcam_layer"]
        index = int(layer.rsplit(".", 1)[1])
        assert isinstance(modules[layer], nn.ReLU) and isinstance(model.features[index + 1], nn.MaxPool2d)
        assert index + 2 == len(model.features)
