"""Tests of the example plugin, run where zoo and zoo-example are installed: ``python -m pytest tests``.

They drive zoo the way a user does: the Python API for the catalogue and the weights, the command line
(``zoo_core.plugin_api.cli_main``, in this process) for training and for the plugin's own command.
"""

from __future__ import annotations

import json

import pytest

import zoo_core
from zoo_core.plugin_api import WeightsError, get_catalogue, reset_plugins
from zoo_core.plugin_api import cli_main as main


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo"))  # runs and published weights stay in the test
    reset_plugins()
    yield
    reset_plugins()


def test_the_plugin_registers_a_model_a_dataset_a_trainer_and_a_command(capsys):
    assert main(["plugins", "--json"]) == 0
    mine = next(row for row in json.loads(capsys.readouterr().out) if row["name"] == "example")
    assert (mine["status"], mine["errors"]) == ("ok", [])
    catalogue = get_catalogue()
    for kind, name in [("model", "pocketnet"), ("dataset", "stripes"), ("trainer", "pocket-sgd"),
                       ("command", "stripes-demo")]:  # fmt: skip
        assert catalogue.get(kind, f"example:{name}").plugin == "example"


def test_the_pretrained_tag_reaches_the_accuracy_it_declares():
    import torch

    from zoo_core.plugin_api import batches, load_dataset

    info = zoo_core.weights_info("example:pocketnet.stripes")
    assert info.labels == ("horizontal", "vertical", "diagonal", "antidiagonal")
    pre = info.preprocessing
    model = zoo_core.create_model("example:pocketnet", pretrained="stripes").eval()
    test = load_dataset("example:stripes").split("test")
    mean, std = torch.tensor(pre.mean).view(1, -1, 1, 1), torch.tensor(pre.std).view(1, -1, 1, 1)
    correct = 0
    with torch.inference_mode():
        for images, labels in batches(test, 128):
            correct += int((model((images.float() / 255 - mean) / std).argmax(1) == labels).sum())
    assert round(100 * correct / len(test), 2) == info.metrics["top1"]


def test_pretrained_weights_take_a_new_head_and_one_input_channel():
    import torch

    model = zoo_core.create_model("example:pocketnet", pretrained="stripes", num_classes=10, in_chans=1)
    assert model(torch.zeros(2, 1, 16, 16)).shape == (2, 10)


def test_weights_that_fail_their_checksum_are_refused(monkeypatch):
    from zoo_example import PRETRAINED
    from zoo_example.models import load_weights, pocketnet

    monkeypatch.setitem(PRETRAINED["stripes"], "sha256", "0" * 64)
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(pocketnet(), "stripes")


def test_the_trainer_learns_stripes(capsys):
    args = ["train", "example:pocketnet", "--dataset", "stripes", "--trainer", "pocket-sgd", "--epochs", "2",
            "--lr", "0.05", "--device", "cpu", "--tag", "quick", "--json"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    history = result["training"]["history"]
    assert result["training"]["trainer"] == "example:pocket-sgd" and [h["epoch"] for h in history] == [1, 2]
    assert history[1]["loss"] < history[0]["loss"] and result["metrics"]["top1"] > 40  # four classes: chance is 25%
    assert zoo_core.weights_info("example:pocketnet.quick").source == "local"  # published: a tag of pocketnet


def test_the_command_draws_and_classifies_stripes(capsys):
    assert main(["stripes-demo", "--count", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 16 + 2 + 1 and lines[-1].startswith("truth above, pocketnet.stripes below: ")
    assert int(lines[-1].rsplit(" ", 2)[-2].split("/")[0]) >= 2
    assert main(["stripes-demo", "--count", "0"]) == 2
    assert capsys.readouterr().err == "zoo: error: --count must be between 1 and 8, got 0\n"
