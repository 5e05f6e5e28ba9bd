"""Every command that takes a model takes every name form, through the one resolver: a plain name (its default
weights where weights are needed), a qualified name with its tag, a registry tag, and an `hf-hub:` name pulled from
the test Hub on 127.0.0.1 (tests/support/hub_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from zoo_registry import store

import zoo_core
from zoo_core import plugins
from zoo_core.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
DIGITS = [str(i) for i in range(10)]
FORMS = {
    "plain": "simplecnn",  # the default weights, set with `zoo registry default`
    "qualified": "cnn:simplecnn.d1",
    "tag": "simplecnn.d1",
    "hub": "hf-hub:alice/spine",
}
# the tag each form means
TAGS = {"plain": "d1", "qualified": "d1", "tag": "d1", "hub": "hub-alice-spine"}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def spine(hub_server, capsys, tmp_path: Path) -> dict[str, Path]:
    """SimpleCNN weights for 8x8 digits published as simplecnn.d1 (the model's default), pushed to alice/spine,
    and a digit as a PNG."""
    from PIL import Image
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    kwargs = {"num_classes": 10, "in_chans": 1, "input_size": [8, 8]}
    model = zoo_core.create_model("simplecnn", **kwargs)
    store.publish(model, model_name="simplecnn", tag="d1", labels=DIGITS, model_kwargs=kwargs,
                  preprocessing={"input_size": [1, 8, 8], "mean": [0.3], "std": [0.37]},
                  metrics={"dataset": "digits", "top1": 11.5}, training={"dataset": "digits"})  # fmt: skip
    store.set_default("simplecnn", "d1")
    plugins.refresh_weights()
    assert main(["push", "simplecnn.d1", "--repo", "alice/spine"]) == 0
    digit = load_digits().images[3]  # a 3
    image = tmp_path / "three.png"
    Image.fromarray((digit * 255 / 16).astype("uint8"), mode="L").save(image)
    capsys.readouterr()
    return {"image": image}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("form", FORMS)
def test_list_info_eval_and_the_python_api(form, spine, capsys):
    name, tag = FORMS[form], TAGS[form]
    rows = run_json(capsys, "list", name)
    assert any(r["name"].startswith("simplecnn") for r in rows)
    info = run_json(capsys, "info", name, "--no-stats")
    assert info["qualified"] == "cnn:simplecnn"
    report = run_json(capsys, "eval", name, "--dataset", "digits")
    assert (report["model"], report["tag"]) == ("cnn:simplecnn", tag) and 0 <= report["top1"] <= 100
    model = zoo_core.create_model(name, pretrained=True)
    assert model.zoo_spec["tag"] == tag and model.pretrained_cfg["label_names"] == DIGITS
    assert zoo_core.weights_info(name).ref == f"cnn:simplecnn.{tag}"
    assert zoo_core.model_info(name, stats=False)["qualified"] == "cnn:simplecnn"


@pytest.mark.parametrize("form", FORMS)
def test_predict_activations_and_gradcam(form, spine, capsys, tmp_path):
    name, image = FORMS[form], str(spine["image"])
    report = run_json(capsys, "predict", name, image, "--top-k", "3")
    (prediction,) = report["predictions"]
    assert len(prediction["top"]) == 3 and prediction["top"][0]["class"] in DIGITS
    maps = tmp_path / f"maps-{form}.png"
    assert run(capsys, "activations", name, "--image", image, "--out", str(maps))[0] == 0 and maps.is_file()
    cam = tmp_path / f"cam-{form}.png"
    code, _, err = run(capsys, "gradcam", name, "--image", image, "--out", str(cam))
    assert code == 0 and cam.is_file(), err


@pytest.mark.parametrize("form", FORMS)
def test_train_fine_tunes_from_every_form_and_runs_finds_it(form, spine, capsys):
    name, tag = FORMS[form], TAGS[form]
    code, out, err = run(capsys, "train", name, "--dataset", "digits", "--epochs", "1", "--tag", f"ft-{form}")
    assert code == 0, err
    entry = store.get("cnn:simplecnn", f"ft-{form}")
    if form == "plain":  # a bare name trains the architecture from scratch
        assert entry.config["training"]["pretrained"] is None
    else:  # weights named any way are the start of a fine-tune
        assert entry.config["training"]["pretrained"] == tag
    runs = run_json(capsys, "runs", "-m", "simplecnn")  # every run of the model
    assert f"ft-{form}" in {r["tag"] for r in runs}
    for run_name in (f"simplecnn.ft-{form}", f"cnn:simplecnn.ft-{form}"):  # the run that made these weights
        assert [r["tag"] for r in run_json(capsys, "runs", "-m", run_name)] == [f"ft-{form}"]
    assert run_json(capsys, "runs", "-m", name) == [] or form == "plain"  # no run made the parent weights


@pytest.mark.parametrize("form", FORMS)
def test_benchmark_push_and_registry_show(form, spine, capsys, hub_server):
    name, tag = FORMS[form], TAGS[form]
    (record,) = run_json(capsys, "benchmark", name, "--device", "cpu", "--iters", "2", "--warmup", "1",
                         "--batch-size", "2", "--no-isolate")  # fmt: skip
    assert record["qualified"] == "cnn:simplecnn" and record.get("tag") == (tag if form != "plain" else None)
    shown = run_json(capsys, "registry", "show", name)
    assert shown["tag"] == tag and not shown["problems"]
    pushed = run_json(capsys, "push", name, "--repo", f"alice/out-{form}")
    assert pushed["ref"] == f"cnn:simplecnn.{tag}"
    assert "model.safetensors" in hub_server.files(f"alice/out-{form}")
