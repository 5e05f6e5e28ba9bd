"""Every zoo and torchvision model, and a sample of timm's, builds for 10 classes and trains a step."""

from __future__ import annotations

import pytest
import torch

import zoo_core
from zoo_core import plugins
from zoo_core.catalogue import ModelEntry
from zoo_core.model_stats import build_on_meta, count_params
from zoo_core.stats_cache import model_query

OWN_AND_TORCHVISION = ["cnn", "torchvision"]
TIMM_SAMPLE = [
    "timm:resnet18", "timm:efficientnet_b0", "timm:mobilenetv3_small_100", "timm:convnext_atto",
    "timm:regnetx_002", "timm:densenet121", "timm:ghostnet_100", "timm:vit_tiny_patch16_224",
]  # fmt: skip
# A model trains a step in the normal suite when it is this small and takes inputs this small; the others
# are built on the meta device there, and build and train for real in the slow suite.
QUICK_PARAMS, QUICK_SIDE = 30e6, 96
HUGE_PARAMS = 150e6  # beyond this the slow suite only runs a forward pass


def published_params(entry: ModelEntry) -> int:
    """Parameters as the weights' metadata gives them (zoo's own CNNs have none, and are small)."""
    return model_query(entry).known.get("num_params", 0)


def small_input(name: str) -> tuple[int, int, int]:
    entry = zoo_core.resolve(name).entry
    c, h, w = entry.input_size
    if entry.plugin == "cnn":
        return c, h, w
    side = 32
    if "min_input_size" in entry.metadata:
        side = max(side, *entry.metadata["min_input_size"][1:])
    return c, side, side


def catalogue_models(quick: bool) -> list[str]:
    names = []
    for e in plugins.get_catalogue().find("model"):
        if e.plugin in OWN_AND_TORCHVISION:
            fits = published_params(e) < QUICK_PARAMS and max(small_input(e.qualified)[1:]) <= QUICK_SIDE
            if fits == quick:
                names.append(e.qualified)
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, quick in (("catalogue_model", True), ("large_catalogue_model", False)):
        if fixture in metafunc.fixturenames:
            plugins.reset()
            names = catalogue_models(quick)
            plugins.reset()
            metafunc.parametrize(fixture, names)


def forward_backward(name: str, size: tuple[int, int, int], **kwargs) -> None:
    torch.manual_seed(0)
    model = zoo_core.create_model(name, num_classes=10, **kwargs)
    model.train()
    out = model(torch.randn(2, *size))
    assert out.shape == (2, 10)
    assert torch.isfinite(out).all()
    out.float().logsumexp(dim=1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: parameters without a gradient: {missing[:5]}"
    assert model.zoo_spec["num_classes"] == 10


def test_catalogue_model_trains(catalogue_model: str) -> None:
    forward_backward(catalogue_model, small_input(catalogue_model))


def test_large_catalogue_model_builds_for_10_classes(large_catalogue_model: str) -> None:
    """Shapes only (the meta device: no memory, no time); the slow suite runs them for real."""
    model = build_on_meta(lambda: zoo_core.create_model(large_catalogue_model, num_classes=10))
    with torch.no_grad():
        out = model.eval()(torch.zeros(2, *small_input(large_catalogue_model), device="meta"))
    assert out.shape == (2, 10)
    assert model.zoo_spec["num_classes"] == 10


@pytest.mark.slow
def test_large_catalogue_model_trains(large_catalogue_model: str) -> None:
    entry = zoo_core.resolve(large_catalogue_model).entry
    if published_params(entry) <= HUGE_PARAMS:
        forward_backward(large_catalogue_model, small_input(large_catalogue_model))
        return
    model = zoo_core.create_model(large_catalogue_model, num_classes=10).eval()
    with torch.no_grad():
        out = model(torch.randn(1, *small_input(large_catalogue_model)))
    assert out.shape == (1, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", TIMM_SAMPLE)
def test_timm_sample_trains(name: str) -> None:
    kwargs = {"img_size": 64} if "vit" in name else {}
    forward_backward(name, (3, 64, 64), **kwargs)


def test_own_models_follow_their_input():
    for name in ("simplecnn", "improvedcnn"):
        model = zoo_core.create_model(name, num_classes=5, in_chans=1, input_size=(28, 20))
        assert model(torch.zeros(3, 1, 28, 20)).shape == (3, 5)
    bn = [m for m in zoo_core.create_model("improvedcnn").modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [m.num_features for m in bn] == [32, 64, 64, 128, 128, 256]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in zoo_core.create_model("simplecnn").modules())


def test_simplecnn_is_the_tutorial_network():
    model = zoo_core.create_model("simplecnn")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (3, 32, (3, 3), (1, 1)), (32, 64, (3, 3), (1, 1)), (64, 128, (3, 3), (1, 1))
    ]  # fmt: skip
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(128 * 4 * 4, 512), (512, 10)]
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.5]


def test_torchvision_metadata_matches_the_models():
    """As torchvision's own schema test does: recompute what the metadata claims, for every classification
    model torchvision has and every weight of each (built on the meta device, as the tag needs it)."""
    import torchvision.models as tvm

    entries = {e.name: e for e in plugins.get_catalogue().find("model", plugin="torchvision")}
    assert sorted(entries) == sorted(tvm.list_models(module=tvm)) and len(entries) >= 80
    assert {"mobilenet_v3_large", "vgg16", "convnext_tiny", "regnet_y_400mf", "vit_b_16", "swin_t", "maxvit_t",
            "shufflenet_v2_x1_0", "squeezenet1_1", "mnasnet1_0", "googlenet", "alexnet"} <= set(entries)  # fmt: skip
    for entry in entries.values():
        assert entry.family == tvm.get_model_builder(entry.name).__module__.rsplit(".", 1)[-1]
        assert set(entry.pretrained) == {w.name.lower() for w in tvm.get_model_weights(entry.name)}
        counted: dict[str, int] = {}
        for tag, meta in entry.pretrained.items():
            kwargs = {"num_classes": meta["num_classes"], **meta.get("model_kwargs", {})}
            if entry.name == "inception_v3":
                kwargs["aux_logits"] = True  # counted in its weights
            key = repr(sorted(kwargs.items()))
            if key not in counted:
                model = build_on_meta(lambda kwargs=kwargs, entry=entry: entry.builder(**kwargs))
                counted[key] = count_params(model)
            assert meta["num_params"] == counted[key], f"{entry.name}.{tag}"
            assert meta["url"].startswith("https://download.pytorch.org/")
            if tag == "imagenet1k_features":  # VGG16's feature extractor publishes no accuracy (NaN)
                assert meta["metrics"]["imagenet_top1"] is None
            else:
                assert meta["metrics"]["imagenet_top1"] > 50
            pre = meta["preprocessing"]
            assert pre["resize_size"] >= pre["input_size"][1] and pre["crop_pct"] <= 1


def test_models_of_one_image_size_take_the_size_of_their_weights():
    """ViT's SWAG weights are for 384 px: the model is rebuilt for them; without weights it takes 224."""
    vit = plugins.get_catalogue().get("model", "vit_b_16")
    assert vit.input_size == (3, 224, 224) and vit.metadata["min_input_size"] == [3, 224, 224]
    e2e = vit.pretrained["imagenet1k_swag_e2e_v1"]
    assert e2e["model_kwargs"] == {"image_size": 384} and e2e["preprocessing"]["input_size"] == [3, 384, 384]
    assert "model_kwargs" not in vit.pretrained["imagenet1k_v1"] or not vit.pretrained["imagenet1k_v1"]["model_kwargs"]
    huge = plugins.get_catalogue().get("model", "vit_h_14")  # its default weights are for 518 px
    assert huge.default_tag == "imagenet1k_swag_e2e_v1" and huge.input_size == (3, 224, 224)
    resnet = plugins.get_catalogue().get("model", "resnet50").pretrained["imagenet1k_v1"]["preprocessing"]
    assert (resnet["resize_size"], resnet["crop_pct"]) == (256, 0.875)  # torchvision's preset default resize


@pytest.fixture
def fake_torchvision_weights(monkeypatch):
    """torchvision weights without the network: each arch's state as its ``weights=`` path would load it."""
    import torchvision.models as tvm
    from torchvision.models._api import WeightsEnum

    def get_state_dict(self, *args, **kwargs):
        arch = next(a for a in tvm.list_models(module=tvm) if tvm.get_model_weights(a) is type(self))
        extra = {"aux_logits": True, "init_weights": False} if arch in ("googlenet", "inception_v3") else {}
        if arch.startswith("vit_"):
            extra["image_size"] = self.meta["min_size"][0]
        torch.manual_seed(1)
        build = lambda: tvm.get_model(arch, weights=None, num_classes=len(self.meta["categories"]), **extra)  # noqa: E731
        return (build_on_meta(build) if arch.startswith("vit_") else build()).state_dict()

    monkeypatch.setattr(WeightsEnum, "get_state_dict", get_state_dict)


def test_torchvision_weights_load_into_the_model_they_need(fake_torchvision_weights):
    # SqueezeNet's classifier is a 1x1 convolution: a new one for 10 classes, the features loaded.
    squeeze = zoo_core.create_model("squeezenet1_1", pretrained=True, num_classes=10)
    torch.manual_seed(1)
    import torchvision.models as tvm

    reference = tvm.squeezenet1_1(num_classes=1000)
    assert torch.equal(squeeze.features[0].weight, reference.features[0].weight)
    assert squeeze.classifier[1].out_channels == 10
    assert squeeze.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    # GoogLeNet: Google's input transform on, the auxiliary heads left out, plain logits while training.
    google = zoo_core.create_model("googlenet", pretrained=True, num_classes=10)
    assert google.transform_input and google.aux1 is None and google.fc.out_features == 10
    assert google.train()(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    # ViT's SWAG end-to-end weights are for 384 px: the model is built for 384 (shapes only, on the meta device).
    vit = build_on_meta(lambda: zoo_core.create_model("vit_b_16", pretrained="imagenet1k_swag_e2e_v1",
                                                      num_classes=10))  # fmt: skip
    assert vit.image_size == 384 and vit.heads.head.out_features == 10


def test_densenet121_info():
    info = zoo_core.model_info("densenet121")
    assert info["num_params"] == 7_978_856
    assert info["qualified"] == "torchvision:densenet121" and info["also_in"] == ["timm"]
    assert 2.8 < info["gmacs"] < 2.9  # torchvision's published 2.83 GFLOPS (as MACs)
    assert info["pretrained"]["imagenet1k_v1"]["metrics"]["imagenet_top1"] == pytest.approx(74.434)


def test_adapting_pretrained_shaped_models():
    """A new head and a one-channel stem, on a model built as if its weights were loaded."""
    from zoo_core.adapt import adapt_input_channels, reset_classifier

    model = zoo_core.create_model("resnet18", num_classes=1000)
    conv_sum = model.conv1.weight.sum(dim=1, keepdim=True).clone()
    reset_classifier(model, 7, 1000)
    adapt_input_channels(model, 1)
    assert model.fc.out_features == 7
    assert torch.equal(model.conv1.weight, conv_sum)
    assert model(torch.zeros(2, 1, 64, 64)).shape == (2, 7)
    inception = zoo_core.create_model("inception_v3", num_classes=1000, aux_logits=True)
    reset_classifier(inception, 3, 1000)
    assert inception.fc.out_features == 3 and inception.AuxLogits.fc.out_features == 3


def test_pretrained_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import urllib.request

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable (test)")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(zoo_core.WeightsError, match="cannot get torchvision weights resnet18.imagenet1k_v1"):
        zoo_core.create_model("resnet18", pretrained=True)
    with pytest.raises(zoo_core.WeightsError, match="cannot get timm weights resnet18.a1_in1k"):
        zoo_core.create_model("timm:resnet18", pretrained="a1_in1k")
    with pytest.raises(zoo_core.UnknownNameError, match="did you mean imagenet1k_v1"):
        zoo_core.create_model("resnet18", pretrained="imagenet1k_v9")


@pytest.mark.parametrize("name, size", [
    ("simplecnn", 32), ("improvedcnn", 32), ("resnet18", 64), ("densenet121", 64), ("efficientnet_b0", 64),
    ("timm:resnet18", 64), ("timm:efficientnet_b0", 64),
])  # fmt: skip
def test_every_cnn_is_a_feature_extractor_and_a_headless_model(name, size):
    x = torch.randn(2, 3, size, size)
    features = zoo_core.create_model(name, features_only=True).eval()
    maps = features(x)
    info = features.feature_info
    channels = info.channels() if hasattr(info, "channels") else [f["num_chs"] for f in info]
    reductions = info.reduction() if hasattr(info, "reduction") else [f["reduction"] for f in info]
    assert len(maps) == len(channels) >= 3
    for fmap, chans, stride in zip(maps, channels, reductions, strict=True):
        assert fmap.shape[:2] == (2, chans) and fmap.shape[2] == -(-size // stride) or fmap.shape[2] == size // stride
    headless = zoo_core.create_model(name, num_classes=0).eval()
    pooled = headless(x)
    assert pooled.dim() == 2 and pooled.shape[0] == 2 and pooled.shape[1] > 10
    assert headless.zoo_spec["num_classes"] == 0


def test_weights_carry_their_preprocessing_and_labels():
    from zoo_registry import store

    model = zoo_core.create_model("simplecnn", num_classes=3)
    store.publish(model, model_name="simplecnn", tag="abc", labels=["a", "b", "c"],
                  model_kwargs={"num_classes": 3}, preprocessing={"mean": [0.1, 0.2, 0.3], "std": [1, 1, 1]})
    built = zoo_core.create_model("simplecnn.abc")
    cfg = built.pretrained_cfg
    assert cfg["label_names"] == ["a", "b", "c"] and cfg["input_size"] == (3, 32, 32)
    assert cfg["mean"] == (0.1, 0.2, 0.3) and cfg["crop_mode"] == "squash" and cfg["zoo_weights"] == "cnn:simplecnn.abc"
    features = zoo_core.create_model("simplecnn.abc", features_only=True)
    assert features.pretrained_cfg["label_names"] == ["a", "b", "c"]
