"""Every zoo and torchvision model, and a sample of timm's, builds for 10 classes and trains a step."""

from __future__ import annotations

import pytest
import torch

import zoo_core
from zoo_core import plugins
from zoo_core.model_stats import count_params

OWN_AND_TORCHVISION = ["cnn", "torchvision"]
TIMM_SAMPLE = [
    "timm:resnet18", "timm:efficientnet_b0", "timm:mobilenetv3_small_100", "timm:convnext_atto",
    "timm:regnetx_002", "timm:densenet121", "timm:ghostnet_100", "timm:vit_tiny_patch16_224",
]  # fmt: skip


def catalogue_models() -> list[str]:
    return [e.qualified for e in plugins.get_catalogue().find("model") if e.plugin in OWN_AND_TORCHVISION]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "catalogue_model" in metafunc.fixturenames:
        plugins.reset()
        names = catalogue_models()
        plugins.reset()
        metafunc.parametrize("catalogue_model", names)


def small_input(name: str) -> tuple[int, int, int]:
    entry, _ = zoo_core.models.resolve(name)
    c, h, w = entry.input_size
    if entry.plugin == "cnn":
        return c, h, w
    side = 32
    if "min_input_size" in entry.metadata:
        side = max(side, *entry.metadata["min_input_size"][1:])
    return c, side, side


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
    """As torchvision's own schema test does: recompute what the metadata claims."""
    catalogue = plugins.get_catalogue()
    for entry in catalogue.find("model", plugin="torchvision"):
        extra = {"aux_logits": True} if entry.name == "inception_v3" else {}  # counted in its weights
        with torch.device("meta"):
            model = entry.builder(num_classes=1000, **extra)
        for tag, meta in entry.pretrained.items():
            assert meta["num_params"] == count_params(model), f"{entry.name}.{tag}"
            assert meta["url"].startswith("https://download.pytorch.org/")
            assert meta["metrics"]["imagenet_top1"] > 50


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
