"""`zoo push` / `zoo pull` and `hf-hub:` names, against a Hub-protocol server on 127.0.0.1
(tests/support/hub_server.py) driven by huggingface_hub's own client: the round trip, timm loading what zoo
pushed, sharding, branches and pull requests, offline mode, a Hub that never answers, hostile config.json
files, and every failure the issue lists."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import free_port
from hub_server import HubServer
from zoo_registry import store

import zoo_core
from zoo_core import plugins
from zoo_core.cli import main

# huggingface_hub hands file uploads to its HTTP library as `data=`, which that library deprecates: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
ALICE, ALICE_READ, BOB = "hf_alice_write", "hf_alice_read", "hf_bob_write"
DIGITS = [str(i) for i in range(10)]
TIMM_LABELS = [f"class{i}" for i in range(10)]


@pytest.fixture
def hub(hub_server: HubServer) -> HubServer:
    """The shared test Hub (tests/conftest.py), token alice's."""
    return hub_server


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    """The one error line of a failed command (progress bars and retry warnings may precede it)."""
    lines = [line for line in err.splitlines() if line.startswith("zoo: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """Another machine: an empty ZOO_HOME and an empty Hugging Face cache."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / name / "zoo"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / name / "hf"))
    plugins.reset()
    return tmp_path / name


def publish_digits(tag: str = "d1", seed: int = 0, metrics: dict | None = None) -> store.PublishedEntry:
    """Seeded, untrained SimpleCNN weights for 8x8 digits (what eval reports is deterministic)."""
    torch.manual_seed(seed)
    kwargs = {"num_classes": 10, "in_chans": 1, "input_size": [8, 8]}
    model = zoo_core.create_model("simplecnn", **kwargs)
    return store.publish(model, model_name="simplecnn", tag=tag, labels=DIGITS, model_kwargs=kwargs,
                         preprocessing={"input_size": [1, 8, 8], "mean": [0.3], "std": [0.37]},
                         metrics=metrics or {"dataset": "digits", "top1": 11.5}, training={"dataset": "digits"})


def snapshot(entry: store.PublishedEntry) -> dict[str, bytes]:
    """Every file of a local entry, to show that a failed command changed none of them."""
    return {p.name: p.read_bytes() for p in sorted(entry.path.iterdir())}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tensors(data: bytes | Path) -> bytes:
    """A safetensors file's tensor bytes, after its header: a push adds the version and lineage to the header only."""
    data = data.read_bytes() if isinstance(data, Path) else data
    return data[8 + int.from_bytes(data[:8], "little") :]


def card_meta(server: HubServer, repo: str) -> dict:
    text = server.file(repo, "README.md").decode()
    return yaml.safe_load(text.split("---\n")[1])


def weight_gets(server: HubServer) -> list:
    return server.state.requests("GET", "model.safetensors")


# -- the round trip -----------------------------------------------------------------------------------------


def train_digits(tag: str) -> store.PublishedEntry:
    """SimpleCNN trained one quick epoch on digits (a plain loop: `zoo train` is tested elsewhere), published
    with its recipe."""
    from zoo_core.datasets import load_dataset

    data = load_dataset("digits")
    train = data.split("train")
    mean, std = 0.3, 0.37
    torch.manual_seed(0)
    kwargs = {"num_classes": 10, "in_chans": 1, "input_size": [8, 8]}
    model = zoo_core.create_model("simplecnn", **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    inputs = (train.images.float() / 255 - mean) / std
    for i in range(0, len(train), 64):
        loss = torch.nn.functional.cross_entropy(model(inputs[i : i + 64]), train.labels[i : i + 64])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    recipe = {"dataset": "digits", "epochs": 1, "batch_size": 64, "optimizer": "adam", "lr": 3e-3, "seed": 0}
    store.publish(model.eval(), model_name="simplecnn", tag=tag, labels=list(data.classes), model_kwargs=kwargs,
                  preprocessing={"input_size": [1, 8, 8], "mean": [mean], "std": [std]}, training=recipe)  # fmt: skip
    return store.get("simplecnn", tag)


def test_push_then_pull_elsewhere_gives_identical_weights_and_accuracy(hub, capsys, tmp_path, monkeypatch):
    train_digits("d1")
    code, out, _ = run(capsys, "eval", "simplecnn.d1", "--dataset", "digits", "--json")
    before = json.loads(out)
    assert before["top1"] > 50  # it learned something, so equal accuracies below mean something
    store.update_metrics("simplecnn", "d1", {"dataset": "digits", "top1": before["top1"], "top5": before["top5"]})
    original = store.get("simplecnn", "d1")

    code, out, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits", "--license", "mit")
    assert code == 0, err
    commit = hub.head("alice/digits")
    assert out.splitlines()[0] == (f"pushed simplecnn.d1 to alice/digits@{commit[:12]} (main): model.safetensors, "
                                   "config.json, README.md")  # fmt: skip
    assert hub.files("alice/digits") == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    pushed_file = hub.file("alice/digits", "model.safetensors")
    assert tensors(pushed_file) == tensors(original.weights_path)  # the very tensor bytes; the header says more:
    header = json.loads(pushed_file[8 : 8 + int.from_bytes(pushed_file[:8], "little")])["__metadata__"]
    assert (header["zoo_pushed_from"], header["zoo_tag_version"]) == ("cnn:simplecnn.d1@1", "1")
    assert json.loads(header["zoo_lineage"])["dataset"]["name"] == "digits"
    assert len(hub.state.requests("POST", "/commit/")) == 1  # one commit

    config = json.loads(hub.file("alice/digits", "config.json"))
    assert config["architecture"] == "cnn:simplecnn" and config["label_names"] == DIGITS
    assert config["zoo"]["files"] == {"model.safetensors": sha256(pushed_file)}
    assert config["zoo"]["model_kwargs"] == original.config["model_kwargs"]
    meta = card_meta(hub, "alice/digits")
    assert meta["license"] == "mit" and meta["library_name"] == "zoo" and meta["datasets"] == ["digits"]
    top1 = {m["type"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}["accuracy"]
    assert top1 == original.metrics["top1"]
    card = hub.file("alice/digits", "README.md").decode()
    assert 'zoo.create_model("hf-hub:alice/digits")' in card and "zoo pull alice/digits" in card
    assert "| optimizer | adam |" in card  # the recipe
    (pushed,) = store.get("simplecnn", "d1").config["pushed"]
    assert (pushed["repo"], pushed["revision"], pushed["commit"]) == ("alice/digits", "main", commit)

    fresh_home(tmp_path, monkeypatch, "elsewhere")
    code, out, err = run(capsys, "pull", "alice/digits")
    assert code == 0, err
    assert out.strip() == f"pulled alice/digits@{commit[:12]} as simplecnn.hub-alice-digits (sha256 " \
                          f"{sha256(pushed_file)[:16]}...)"  # fmt: skip
    pulled = store.get("simplecnn", "hub-alice-digits")
    assert pulled.sha256 == sha256(pushed_file) == sha256(pulled.weights_path.read_bytes())  # pulled byte for byte
    info = zoo_core.weights_info("simplecnn.hub-alice-digits")
    assert (info.source, info.hf_hub_id, info.license) == ("hub", "alice/digits", "mit")
    assert info.extra["origin"] == "hf-hub:alice/digits" and info.extra["revision"] == commit
    assert list(info.labels) == DIGITS and info.metrics["top1"] == original.metrics["top1"]

    code, out, _ = run(capsys, "registry", "show", "simplecnn.hub-alice-digits")
    assert f"origin         hf-hub:alice/digits at commit {commit}" in out

    code, out, err = run(capsys, "eval", "hf-hub:alice/digits", "--dataset", "digits", "--json")
    assert code == 0, err
    after = json.loads(out)
    assert after["tag"] == "hub-alice-digits"
    assert (after["top1"], after["top5"], after["confusion"]) == (before["top1"], before["top5"], before["confusion"])

    gets = len(weight_gets(hub))
    code, out, _ = run(capsys, "pull", "alice/digits")
    assert code == 0 and out.strip() == f"simplecnn.hub-alice-digits is up to date with alice/digits@{commit[:12]}"
    model = zoo_core.create_model("hf-hub:alice/digits")
    assert model.zoo_spec["tag"] == "hub-alice-digits" and len(weight_gets(hub)) == gets  # nothing downloaded again


def test_pushing_again_refreshes_the_card_and_sends_only_what_changed(hub, capsys):
    publish_digits("d1", metrics={"dataset": "digits", "top1": 11.5})
    assert run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")[0] == 0
    first = hub.head("alice/digits")
    assert "license" not in card_meta(hub, "alice/digits")  # none given, none made up
    puts = len(hub.state.requests("PUT"))

    store.update_metrics("simplecnn", "d1", {"top1": 42.25, "top5": 90.0})
    code, out, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits", "--message", "new metrics")
    assert code == 0, err
    assert hub.head("alice/digits") != first and hub.state.repos["alice/digits"].commits[
        hub.head("alice/digits")].title == "new metrics"  # fmt: skip
    values = {m["type"]: m["value"] for m in card_meta(hub, "alice/digits")["model-index"][0]["results"][0]["metrics"]}
    assert values == {"accuracy": 42.25, "top_5_accuracy": 90.0}
    assert json.loads(hub.file("alice/digits", "config.json"))["zoo"]["metrics"]["top1"] == 42.25
    assert len(hub.state.requests("PUT")) == puts  # the weights were already there: not uploaded again
    assert [p["commit"] for p in store.get("simplecnn", "d1").config["pushed"]] == [hub.head("alice/digits")]


def test_the_saved_login_token_works_and_a_private_repo_needs_one(hub, capsys, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN")
    Path(constants.HF_TOKEN_PATH).parent.mkdir(parents=True, exist_ok=True)
    Path(constants.HF_TOKEN_PATH).write_text(ALICE)  # what `hf auth login` leaves behind
    entry = publish_digits("d1")
    code, _, err = run(capsys, "push", "simplecnn.d1", "--repo", "zoo-org/private-digits", "--private")
    assert code == 0, err
    assert hub.state.repos["zoo-org/private-digits"].private

    fresh_home(tmp_path, monkeypatch, "elsewhere")
    Path(constants.HF_TOKEN_PATH).unlink()  # anonymous: the repository does not exist for us
    code, _, err = run(capsys, "pull", "zoo-org/private-digits")
    assert code == 2 and "(or it is private and no token is set)" in error_line(err)
    monkeypatch.setenv("HF_TOKEN", ALICE)
    assert run(capsys, "pull", "zoo-org/private-digits")[0] == 0
    assert tensors(store.get("simplecnn", "hub-zoo-org-private-digits").weights_path) == tensors(entry.weights_path)
    assert "push " in run(capsys, "--help")[1] and "pull " in run(capsys, "--help")[1]


# -- timm ------------------------------------------------------------------------------------------------------


def test_timm_loads_a_pushed_timm_model_and_a_dropped_download_resumes(hub, capsys, tmp_path, monkeypatch):
    torch.manual_seed(0)
    kwargs = {"num_classes": 10}
    model = zoo_core.create_model("timm:resnet10t", **kwargs).eval()
    pre = {"input_size": [3, 64, 64], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25], "interpolation": "bicubic"}
    recipe = {"dataset": "synthetic", "pretrained": "c3_in1k"}  # as if fine-tuned from timm's ImageNet weights
    entry = store.publish(model, model_name="timm:resnet10t", tag="tiny", labels=TIMM_LABELS, model_kwargs=kwargs,
                          preprocessing=pre, metrics={"top1": 50.0, "dataset": "synthetic"}, training=recipe)
    code, _, err = run(capsys, "push", "timm:resnet10t.tiny", "--repo", "alice/tiny-resnet")
    assert code == 0, err
    config = json.loads(hub.file("alice/tiny-resnet", "config.json"))
    assert config["architecture"] == "resnet10t" and config["num_classes"] == 10
    assert config["label_names"] == TIMM_LABELS and "model_args" not in config
    cfg = config["pretrained_cfg"]
    assert (cfg["input_size"], cfg["interpolation"], cfg["first_conv"], cfg["classifier"]) == (
        [3, 64, 64], "bicubic", "conv1.0", "fc")
    assert "license" not in cfg and "hf_hub_id" not in cfg  # nothing of the architecture's ImageNet weights
    meta = card_meta(hub, "alice/tiny-resnet")
    assert meta["library_name"] == "timm" and meta["base_model"] == "timm/resnet10t.c3_in1k" and "timm" in meta["tags"]

    out_file = tmp_path / "timm_out.safetensors"
    script = (
        "import sys, timm, torch\nfrom safetensors.torch import save_file\n"
        "m = timm.create_model('hf-hub:alice/tiny-resnet', pretrained=True).eval()\n"
        "torch.manual_seed(1)\nx = torch.randn(2, 3, 64, 64)\n"
        "with torch.no_grad():\n    y = m(x)\n"
        "save_file({'y': y, 'x': x}, sys.argv[1])\n"
        "print(m.pretrained_cfg['label_names'][3], tuple(m.pretrained_cfg['input_size']), m.num_classes)\n"
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "timm_hf")}  # timm reads HF_ENDPOINT at import
    proc = subprocess.run([sys.executable, "-c", script, str(out_file)], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "class3 (3, 64, 64) 10"
    from safetensors.torch import load_file

    got = load_file(str(out_file))
    with torch.no_grad():
        assert torch.equal(got["y"], model(got["x"]))

    # zoo pulls it too; a connection dropped three quarters into the 20 MB download resumes with a byte range
    fresh_home(tmp_path, monkeypatch, "elsewhere")
    hub.state.faults["download_drop"] = 1
    code, out, err = run(capsys, "pull", "alice/tiny-resnet")
    assert code == 0, err
    ranges = [r for r in weight_gets(hub) if r[2] == 206]
    assert ranges, "the dropped download did not resume with a Range request"
    assert tensors(store.get("timm:resnet10t", "hub-alice-tiny-resnet").weights_path) == tensors(entry.weights_path)


# -- sharding, branches and pull requests ------------------------------------------------------------------------


def test_weights_above_the_shard_limit_go_as_shards_with_an_index(hub, capsys, tmp_path, monkeypatch):
    original = publish_digits("big")
    code, out, err = run(capsys, "push", "simplecnn.big", "--repo", "alice/sharded", "--max-shard-size", "200KB")
    assert code == 0, err
    files = hub.files("alice/sharded")
    shards = [f for f in files if re.fullmatch(r"model-\d{5}-of-\d{5}\.safetensors", f)]
    assert len(shards) >= 3 and "model.safetensors" not in files and "model.safetensors.index.json" in files
    index = json.loads(hub.file("alice/sharded", "model.safetensors.index.json"))
    tensors = zoo_core.create_model("simplecnn.big").state_dict()
    assert set(index["weight_map"]) == set(tensors) and set(index["weight_map"].values()) == set(shards)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in tensors.values())
    config = json.loads(hub.file("alice/sharded", "config.json"))
    assert set(config["zoo"]["files"]) == {*shards, "model.safetensors.index.json"}

    fresh_home(tmp_path, monkeypatch, "elsewhere")
    assert run(capsys, "pull", "alice/sharded")[0] == 0
    pulled = zoo_core.create_model("simplecnn.hub-alice-sharded").state_dict()
    assert pulled.keys() == tensors.keys() and all(torch.equal(pulled[k], tensors[k]) for k in tensors)
    assert store.get("simplecnn", "hub-alice-sharded").sha256 == sha256(
        store.get("simplecnn", "hub-alice-sharded").weights_path.read_bytes())  # fmt: skip

    # One file again (no limit): the same commit deletes the shards and the index.
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo_home"))
    plugins.reset()
    assert store.get("simplecnn", "big").sha256 == original.sha256
    assert run(capsys, "push", "simplecnn.big", "--repo", "alice/sharded")[0] == 0
    assert hub.files("alice/sharded") == [".gitattributes", "README.md", "config.json", "model.safetensors"]


def test_push_to_a_branch_and_as_a_pull_request(hub, capsys, tmp_path, monkeypatch):
    publish_digits("d1")
    assert run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")[0] == 0
    main_head = hub.head("alice/digits")
    d2 = publish_digits("d2", seed=1)
    code, out, err = run(capsys, "push", "simplecnn.d2", "--repo", "alice/digits", "--revision", "dev")
    assert code == 0, err
    assert hub.head("alice/digits") == main_head and hub.head("alice/digits", "dev") != main_head
    code, out, err = run(capsys, "push", "simplecnn.d2", "--repo", "alice/digits", "--create-pr", "--message", "try")
    assert code == 0, err
    assert f"{hub.url}/alice/digits/discussions/1" in out
    records = {p["revision"]: p for p in store.get("simplecnn", "d2").config["pushed"]}
    assert set(records) == {"dev", "refs/pr/1"} and records["refs/pr/1"]["pr_url"].endswith("/discussions/1")
    assert hub.head("alice/digits") == main_head  # a pull request leaves main alone

    fresh_home(tmp_path, monkeypatch, "elsewhere")
    assert run(capsys, "pull", "alice/digits@dev")[0] == 0
    dev = store.get("simplecnn", "hub-alice-digits-dev")
    assert tensors(dev.weights_path) == tensors(d2.weights_path) and dev.config["revision"] == hub.head(
        "alice/digits", "dev")  # fmt: skip
    model = zoo_core.create_model("hf-hub:alice/digits@refs/pr/1")
    assert model.zoo_spec["tag"] == "hub-alice-digits-refs-pr-1"


# -- offline ------------------------------------------------------------------------------------------------------


OFFLINE_SCRIPT = """
import os, sys, time
import zoo_core
from zoo_core import plugins
from zoo_core.cli import main

for home in sys.argv[1:]:  # a ZOO_HOME that pulled the repo, then one that has only the Hugging Face cache
    os.environ["ZOO_HOME"] = home
    plugins.reset()
    model = zoo_core.create_model("hf-hub:alice/digits")
    print(model.zoo_spec["model"], model.zoo_spec["tag"])
start = time.monotonic()
code = main(["pull", "alice/never-pulled"])
print(code, time.monotonic() - start < 10)
"""


def test_offline_a_pulled_or_cached_repo_loads_without_the_network_and_an_uncached_one_fails_at_once(
        hub, capsys, tmp_path, monkeypatch):  # fmt: skip
    publish_digits("d1")
    assert run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")[0] == 0
    elsewhere = fresh_home(tmp_path, monkeypatch, "elsewhere")
    assert run(capsys, "pull", "alice/digits")[0] == 0
    requests = len(hub.state.log)

    # A fresh process, so that huggingface_hub reads HF_HUB_OFFLINE when it is imported, as it does for users.
    proc = subprocess.run([sys.executable, "-c", OFFLINE_SCRIPT, str(elsewhere / "zoo"), str(tmp_path / "third")],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["cnn:simplecnn hub-alice-digits"] * 2 + ["1 True"]
    assert error_line(proc.stderr) == ("zoo: error: alice/never-pulled is not in the Hugging Face cache and "
                                       "HF_HUB_OFFLINE=1 forbids downloading it; pull it once with the network "
                                       "(`zoo pull alice/never-pulled`)")  # fmt: skip
    assert len(hub.state.log) == requests  # not one request reached the server


# -- failures: one line, a non-zero exit, the local entry untouched ------------------------------------------------


@pytest.mark.parametrize(("setup", "args", "code", "message"), [
    ({"HF_TOKEN": None}, ("--repo", "alice/x"), 1,
     "no Hugging Face token: set HF_TOKEN to a token with write access, or run `hf auth login`"),
    ({"HF_TOKEN": "hf_not_a_token"}, ("--repo", "alice/x"), 1, "rejected the token (401 Unauthorized) while checking"),
    ({"HF_TOKEN": ALICE_READ}, ("--repo", "alice/x"), 1,
     "no permission for creating alice/x (403 Forbidden): the token needs write access to 'alice'"),
    ({}, ("--repo", "bob/x"), 1, "no permission for creating bob/x (403 Forbidden)"),
    ({}, ("--repo", "alice/x", "--max-shard-size", "lots"), 2, "invalid size 'lots'"),
    ({}, ("--repo", "not a repo"), 2, "invalid Hub repository 'not a repo'"),
    ({"HF_HUB_OFFLINE": "1"}, ("--repo", "alice/x"), 1, "HF_HUB_OFFLINE=1 is set: pushing to the Hub needs the"),
    ({"HF_ENDPOINT": "closed"}, ("--repo", "alice/x"), 1, "cannot reach the Hub at http://127.0.0.1:"),
])  # fmt: skip
def test_push_failures_are_one_line_and_change_nothing(hub, capsys, monkeypatch, setup, args, code, message):
    entry = publish_digits("d1")
    before = snapshot(entry)
    for var, value in setup.items():
        if value is None:
            monkeypatch.delenv(var)
        else:
            monkeypatch.setenv(var, f"http://127.0.0.1:{free_port()}" if value == "closed" else value)
    got, _, err = run(capsys, "push", "simplecnn.d1", *args)
    assert got == code and message in error_line(err)
    assert snapshot(store.get("simplecnn", "d1")) == before
    assert not hub.state.repos  # not even a repository was created


def test_push_refuses_unknown_entries_and_repos_holding_other_content(hub, capsys):
    code, _, err = run(capsys, "push", "simplecnn.nope", "--repo", "alice/x")
    assert code == 2 and "unknown registry entry 'cnn:simplecnn.nope'" in error_line(err)
    code, _, err = run(capsys, "push", "nosuchnet.v1", "--repo", "alice/x")
    assert code == 2 and "unknown model 'nosuchnet'" in error_line(err)

    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=hub.url, token=ALICE)
    api.create_repo("alice/theirs")
    api.create_commit("alice/theirs", [CommitOperationAdd("pytorch_model.bin", b"\x80\x02pickle")], commit_message="x")
    entry = publish_digits("d1")
    before = snapshot(entry)
    code, _, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/theirs")
    assert code == 2 and error_line(err) == (
        "zoo: error: alice/theirs already holds other content (pytorch_model.bin); zoo pushes only to a new "
        "repository or one it pushed the same model to: choose another --repo")  # fmt: skip
    assert hub.files("alice/theirs") == [".gitattributes", "pytorch_model.bin"]

    torch.manual_seed(0)
    other = zoo_core.create_model("improvedcnn", num_classes=10)
    store.publish(other, model_name="improvedcnn", tag="i1", labels=DIGITS, model_kwargs={"num_classes": 10},
                  preprocessing={})  # fmt: skip
    assert run(capsys, "push", "improvedcnn.i1", "--repo", "alice/mine")[0] == 0
    code, _, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/mine")
    assert code == 2 and "alice/mine already holds weights of cnn:improvedcnn, not cnn:simplecnn" in error_line(err)
    assert snapshot(store.get("simplecnn", "d1")) == before


def test_a_500_on_the_commit_fails_cleanly_and_running_again_sends_only_the_commit(hub, capsys):
    entry = publish_digits("d1")
    before = snapshot(entry)
    hub.state.faults["commit_500"] = 1
    code, _, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")
    assert code == 1 and error_line(err) == (
        "zoo: error: the Hub answered 500 Internal Server Error while committing to alice/digits; the local entry "
        "is unchanged: run the same command again (files the Hub has are not re-sent)")  # fmt: skip
    assert snapshot(store.get("simplecnn", "d1")) == before
    assert hub.files("alice/digits") == [".gitattributes"]  # nothing committed
    puts = len(hub.state.requests("PUT"))
    assert puts == 1

    code, _, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")
    assert code == 0, err
    assert len(hub.state.requests("PUT")) == puts  # the weights had arrived the first time
    assert tensors(hub.file("alice/digits", "model.safetensors")) == tensors(entry.weights_path)
    assert store.get("simplecnn", "d1").config["pushed"][0]["commit"] == hub.head("alice/digits")


def test_a_dropped_upload_is_retried_and_one_that_keeps_failing_is_one_line(hub, capsys, monkeypatch):
    entry = publish_digits("d1")
    before = snapshot(entry)
    hub.state.faults["lfs_drop"] = 1  # huggingface_hub retries the upload once the connection drops
    code, _, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/once")
    assert code == 0, err
    assert tensors(hub.file("alice/once", "model.safetensors")) == tensors(entry.weights_path)
    assert len(hub.state.requests("PUT")) == 1  # the dropped attempt got no answer, the retry did

    import huggingface_hub.utils._http as hf_http

    class NoWait:  # the client backs off 1+2+4+8+8 s between its six attempts; the test need not wait
        def __getattr__(self, name: str):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            pass

    monkeypatch.setattr(hf_http, "time", NoWait())
    store.update_metrics("simplecnn", "d1", {"top1": 1.0})
    before = snapshot(store.get("simplecnn", "d1"))
    hub.state.faults["lfs_drop"] = 100
    code, _, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/flaky")
    line = error_line(err)
    assert code == 1 and line.startswith("zoo: error: lost the connection to the Hub at ")
    assert "while uploading to alice/flaky" in line and line.endswith("run the same command again (files the Hub "
                                                                      "has are not re-sent)")  # fmt: skip
    assert snapshot(store.get("simplecnn", "d1")) == before
    assert hub.files("alice/flaky") == [".gitattributes"]

    hub.state.faults["lfs_drop"] = 0
    assert run(capsys, "push", "simplecnn.d1", "--repo", "alice/flaky")[0] == 0
    assert tensors(hub.file("alice/flaky", "model.safetensors")) == tensors(entry.weights_path)


def test_pull_failures_are_one_line_and_leave_the_registry_alone(hub, capsys, tmp_path, monkeypatch):
    from huggingface_hub import CommitOperationAdd, HfApi

    publish_digits("d1")
    assert run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")[0] == 0
    api = HfApi(endpoint=hub.url, token=ALICE)
    api.create_repo("alice/alien")
    alien = {"architecture": "x", "zoo": {"architecture": "nosuch:net", "tag": "t", "model_kwargs": {},
                                           "files": {"model.safetensors": "0" * 64}}}  # fmt: skip
    api.create_commit("alice/alien", [CommitOperationAdd("config.json", json.dumps(alien).encode())],
                      commit_message="x")  # fmt: skip
    api.create_repo("alice/secret", private=True)
    home = fresh_home(tmp_path, monkeypatch, "elsewhere")

    cases = [
        ("alice/missing", 2, "repository alice/missing not found at http://127.0.0.1:"),
        ("alice/digits@nobranch", 2, "alice/digits has no such revision"),
        ("alice/alien", 2, "holds weights of nosuch:net, which no installed plugin provides"),
        ("alice", 2, "invalid Hub repository 'alice': expected OWNER/NAME or OWNER/NAME@REVISION"),
    ]
    for spec, code, message in cases:
        got, _, err = run(capsys, "pull", spec)
        assert got == code and message in error_line(err), (spec, err)
    monkeypatch.setenv("HF_TOKEN", BOB)  # bob cannot see alice's private repository
    got, _, err = run(capsys, "pull", "alice/secret")
    assert got == 2 and "not found" in error_line(err) and "the token cannot read it" in err
    monkeypatch.setenv("HF_TOKEN", ALICE)

    hub.state.faults["download_corrupt"] = 1
    got, _, err = run(capsys, "pull", "alice/digits")
    assert got == 1 and re.search(r"model.safetensors has sha256 \w+\.\.\., config.json says \w+\.\.\.; the "
                                  r"download was corrupt and is removed from the cache", error_line(err))  # fmt: skip
    assert store.list_entries() == []
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    got, _, err = run(capsys, "pull", "alice/digits")
    assert got == 1 and "cannot reach the Hub at http://127.0.0.1:" in error_line(err)
    assert "not in the Hugging Face cache" in err
    assert store.list_entries() == [] and not (home / "zoo" / "registry" / "cnn").exists()

    monkeypatch.setenv("HF_ENDPOINT", hub.url)  # the network is back: the same command works
    got, out, err = run(capsys, "pull", "alice/digits")
    assert got == 0 and out.startswith("pulled alice/digits@"), err


# -- a Hub that never answers: bounded waits ---------------------------------------------------------------------


def timed(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str, float]:
    start = time.monotonic()
    code, out, err = run(capsys, *args)
    return code, out, err, time.monotonic() - start


def within(seconds: float, limit: float) -> bool:
    """Whether a command that waited out a ``limit`` s timeout took about that long: at least the limit, and
    not the minutes of retries an unbounded client spends (the slack is for a loaded machine)."""
    return limit - 0.05 <= seconds < limit + 4


def test_pull_from_a_hub_that_never_answers_is_one_line_within_the_timeout(hub, capsys, tmp_path, monkeypatch):
    publish_digits("d1")
    assert run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")[0] == 0
    head = hub.head("alice/digits")
    home = fresh_home(tmp_path, monkeypatch, "elsewhere")

    with hub.hanging():
        code, out, err, seconds = timed(capsys, "pull", "alice/digits", "--timeout", "2")
        assert code == 1 and out == "" and within(seconds, 2), (seconds, err)
        assert error_line(err) == (f"zoo: error: the Hub at {hub.url} did not answer within 2 s while reading "
                                   "alice/digits/config.json (set --timeout or ZOO_HUB_TIMEOUT)")  # fmt: skip
        assert "Retrying" not in err and len(hub.unanswered()) == 1  # one request, no rounds of retries
        monkeypatch.setenv("ZOO_HUB_TIMEOUT", "1.5")  # the environment's value, when --timeout is not given
        code, _, err, seconds = timed(capsys, "pull", "alice/digits")
        assert code == 1 and within(seconds, 1.5) and "did not answer within 1.5 s" in error_line(err)
    assert store.list_entries() == [] and not (home / "zoo" / "registry" / "cnn").exists()
    assert hub.head("alice/digits") == head

    code, out, err = run(capsys, "pull", "alice/digits")  # the Hub is back: the same command works
    assert code == 0 and out.startswith(f"pulled alice/digits@{head[:12]}"), err


def test_push_to_a_hub_that_never_answers_changes_nothing_here_or_there(hub, capsys, monkeypatch):
    entry = publish_digits("d1")
    before = snapshot(entry)
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2")
    again = "(set --timeout or ZOO_HUB_TIMEOUT)"
    with hub.hanging():
        code, _, err, seconds = timed(capsys, "push", "simplecnn.d1", "--repo", "alice/ok2")
    assert code == 1 and within(seconds, 2), (seconds, err)
    assert error_line(err) == (f"zoo: error: the Hub at {hub.url} did not answer within 2 s while checking the token "
                               f"{again}")  # fmt: skip
    assert not hub.state.repos

    # Stuck later on: the weights' upload (a transfer: no byte moved for 2 s), then the commit.
    with hub.hanging("/lfs-upload/"):
        code, _, err, seconds = timed(capsys, "push", "simplecnn.d1", "--repo", "alice/ok2")
    assert code == 1 and within(seconds, 2), (seconds, err)
    assert error_line(err) == (f"zoo: error: the Hub at {hub.url} moved no data for 2 s while uploading to "
                               f"alice/ok2 {again}")  # fmt: skip
    with hub.hanging("/commit/"):
        code, _, err, seconds = timed(capsys, "push", "simplecnn.d1", "--repo", "alice/ok2")
    assert code == 1 and within(seconds, 2), (seconds, err)
    assert error_line(err) == (f"zoo: error: the Hub at {hub.url} did not answer within 2 s while committing to "
                               f"alice/ok2 {again}")  # fmt: skip
    assert hub.files("alice/ok2") == [".gitattributes"]  # nothing committed
    assert snapshot(store.get("simplecnn", "d1")) == before and "pushed" not in store.get("simplecnn", "d1").config

    code, _, err = run(capsys, "push", "simplecnn.d1", "--repo", "alice/ok2")
    assert code == 0, err
    assert tensors(hub.file("alice/ok2", "model.safetensors")) == tensors(entry.weights_path)


@pytest.mark.parametrize("command", [("info", "hf-hub:alice/digits"),
                                     ("eval", "hf-hub:alice/digits", "--dataset", "digits")])  # fmt: skip
def test_hub_names_against_a_hub_that_never_answers(hub, capsys, tmp_path, monkeypatch, command):
    publish_digits("d1")
    assert run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")[0] == 0
    fresh_home(tmp_path, monkeypatch, "elsewhere")
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2")
    with hub.hanging():
        code, out, err, seconds = timed(capsys, *command)
    assert code == 1 and out == "" and within(seconds, 2), (seconds, err)
    assert error_line(err) == (f"zoo: error: the Hub at {hub.url} did not answer within 2 s while reading "
                               "alice/digits/config.json (set ZOO_HUB_TIMEOUT)")  # fmt: skip
    assert store.list_entries() == []

    # Pulled once, the name keeps working while the Hub hangs: after the timeout, with a warning.
    assert run(capsys, "pull", "alice/digits")[0] == 0
    with hub.hanging():
        code, out, err, seconds = timed(capsys, *command)
    assert code == 0 and within(seconds, 2), (seconds, err)
    assert f"zoo: warning: cannot reach the Hub at {hub.url} (no answer within 2 s); using the cached alice/digits@" \
        in err  # fmt: skip


def test_a_slow_download_that_keeps_moving_is_not_cut_off_and_a_stalled_one_is(hub, capsys, tmp_path, monkeypatch):
    entry = publish_digits("d1")
    assert run(capsys, "push", "simplecnn.d1", "--repo", "alice/digits")[0] == 0
    fresh_home(tmp_path, monkeypatch, "elsewhere")
    hub.state.pace = 0.3  # the weights arrive in eighths 0.3 s apart: 2.4 s in all, more than the timeout
    code, _, err, seconds = timed(capsys, "pull", "alice/digits", "--timeout", "1")
    assert code == 0 and seconds > 2.4, (seconds, err)
    assert tensors(store.get("simplecnn", "hub-alice-digits").weights_path) == tensors(entry.weights_path)

    fresh_home(tmp_path, monkeypatch, "third")
    hub.state.pace = 0.0
    hub.state.faults["download_stall"] = 1  # half the weights, then nothing
    code, _, err, seconds = timed(capsys, "pull", "alice/digits", "--timeout", "1")
    assert code == 1 and within(seconds, 1), (seconds, err)
    assert error_line(err) == (f"zoo: error: the Hub at {hub.url} moved no data for 1 s while downloading "
                               "model.safetensors from alice/digits (set --timeout or ZOO_HUB_TIMEOUT)")  # fmt: skip
    assert store.list_entries() == []
    code, _, err = run(capsys, "pull", "alice/digits", "--timeout", "1")
    assert code == 0, err
    assert tensors(store.get("simplecnn", "hub-alice-digits").weights_path) == tensors(entry.weights_path)


@pytest.mark.parametrize(("args", "env", "message"), [
    (("--timeout", "0"), None, "--timeout=0.0 is not a number of seconds: give a positive number such as 30"),
    (("--timeout", "nan"), None, "--timeout=nan is not a number of seconds"),
    ((), "soon", "ZOO_HUB_TIMEOUT='soon' is not a number of seconds: give a positive number such as 30"),
    ((), "-5", "ZOO_HUB_TIMEOUT='-5' is not a number of seconds"),
])  # fmt: skip
def test_a_bad_timeout_is_a_usage_error(hub, capsys, monkeypatch, args, env, message):
    if env is not None:
        monkeypatch.setenv("ZOO_HUB_TIMEOUT", env)
    code, _, err = run(capsys, "pull", "alice/digits", *args)
    assert code == 2 and message in error_line(err)
    assert not hub.state.log  # refused before any request


# -- hostile config.json: every field read from the Hub is untrusted ------------------------------------------


def valid_config() -> dict:
    """The config.json zoo pushes for seeded digits weights (what the mutations below start from)."""
    return {"architecture": "cnn:simplecnn", "num_classes": 10, "label_names": DIGITS, "zoo": {
        "hub_format": 1, "architecture": "cnn:simplecnn", "tag": "d1", "labels": DIGITS,
        "model_kwargs": {"num_classes": 10, "in_chans": 1, "input_size": [8, 8]},
        "preprocessing": {"input_size": [1, 8, 8], "mean": [0.3], "std": [0.37]},
        "metrics": {"dataset": "digits", "top1": 11.5}, "training": {"dataset": "digits"}, "num_params": 12345,
        "files": {"model.safetensors": "ab" * 32}}}  # fmt: skip


def mutated(path: str, value: object) -> dict:
    """``valid_config()`` with the field at ``path`` (dots) set to ``value``, or removed for ``DELETE``."""
    config = valid_config()
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return config


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


DELETE = object()
WHERE = "alice/bad@0123456789ab"
BAD_CONFIGS = [  # (field, value, exit code, the error's message after "WHERE: ")
    ("zoo.hub_format", "2", 1, "config.json: field 'zoo.hub_format' must be an integer >= 1, got '2'"),
    ("zoo.hub_format", 0, 1, "config.json: field 'zoo.hub_format' must be an integer >= 1, got 0"),
    ("zoo.hub_format", 7, 2, "written by a newer zoo (zoo.hub_format 7; this zoo reads up to 1); upgrade zoo"),
    ("zoo.architecture", DELETE, 1, "config.json: field 'zoo.architecture' is missing"),
    ("zoo.architecture", ["cnn:simplecnn"], 1, "field 'zoo.architecture' must be a string of 1 to 129 characters"),
    ("zoo.architecture", "simplecnn", 1, "field 'zoo.architecture' must be a qualified model name, PLUGIN:MODEL"),
    ("zoo.architecture", "hf-hub:alice/other", 1, "field 'zoo.architecture' must be a qualified model name"),
    ("zoo.tag", 5, 1, "config.json: field 'zoo.tag' must be a string of 1 to 96 characters, got 5"),
    ("zoo.tag", "../../etc", 1, "field 'zoo.tag' must be a tag (letters, digits, '_' and '-'), got '../../etc'"),
    ("zoo.files", DELETE, 1, "config.json: field 'zoo.files' is missing"),
    ("zoo.files", [], 1, "field 'zoo.files' must be an object of 1 to 10,000 weights files, got []"),
    ("zoo.files", {"../model.safetensors": "ab" * 32}, 1, "field 'zoo.files' must be model.safetensors, or "),
    ("zoo.files", {"model.safetensors": "x"}, 1, "field 'zoo.files.model.safetensors' must be a sha256"),
    ("zoo.files", {"model.safetensors.index.json": "ab" * 32, "model-00001-of-00002.safetensors": "ab" * 32}, 1,
     "field 'zoo.files' must be model.safetensors, or model.safetensors.index.json and shards"),
    ("zoo.model_kwargs", "num_classes=10", 1, "field 'zoo.model_kwargs' must be an object, got 'num_classes=10'"),
    ("zoo.model_kwargs.num_classes", "10", 1,
     "field 'zoo.model_kwargs.num_classes' must be an integer from 1 to 10,000,000, got '10'"),
    ("zoo.model_kwargs.num_classes", 10**12, 1,
     "field 'zoo.model_kwargs.num_classes' must be an integer from 1 to 10,000,000, got 1000000000000"),
    ("zoo.model_kwargs.input_size", [8, 10**12], 1,
     "field 'zoo.model_kwargs.input_size[1]' must be an integer from -10,000,000 to 10,000,000, got 1000000000000"),
    ("zoo.labels", "0123456789", 1, "field 'zoo.labels' must be a list of at most 100,000 strings"),
    ("zoo.labels", [str(i) for i in range(200_000)], 1, "field 'zoo.labels' must be a list of at most 100,000 strings"),
    ("zoo.labels", [0, 1], 1, "field 'zoo.labels[0]' must be a string of at most 1,000 characters, got 0"),
    ("zoo.preprocessing.input_size", [1, 10**9, 8], 1,
     "field 'zoo.preprocessing.input_size[1]' must be an integer from 1 to 16,384, got 1000000000"),
    ("zoo.preprocessing.mean", "0.3", 1, "field 'zoo.preprocessing.mean' must be a list of 1 to 64 numbers"),
    ("zoo.preprocessing.gamma", 2.2, 1, "field 'zoo.preprocessing.gamma' must be one of crop_mode, crop_pct"),
    ("zoo.metrics", {"top1": float("nan")}, 1, "field 'zoo.metrics' must be plain JSON with finite numbers"),
    ("zoo.training", {"recipe": nested(40)}, 1, "field 'zoo.training' must be JSON nested at most 32 deep"),
    ("zoo.num_params", -1, 1, "field 'zoo.num_params' must be an integer from 0 to 10,000,000,000,000, got -1"),
    ("zoo.num_params", True, 1, "field 'zoo.num_params' must be an integer from 0 to 10,000,000,000,000, got True"),
    ("zoo.license", {"id": "mit"}, 1, "field 'zoo.license' must be a string of 1 to 100 characters"),
    ("zoo", ["not", "an", "object"], 1, "config.json: field 'zoo' must be an object, got ['not', 'an', 'object']"),
]


@pytest.mark.parametrize(("field", "value", "code", "message"), BAD_CONFIGS,
                         ids=[f"{field}-{i}" for i, (field, *_) in enumerate(BAD_CONFIGS)])  # fmt: skip
def test_each_malformed_config_field_is_one_line_naming_the_field(field, value, code, message):
    from zoo_registry.hub_files import read_hub_config

    with pytest.raises(zoo_core.ZooError) as caught:
        read_hub_config(mutated(field, value), WHERE)
    text = str(caught.value)
    assert caught.value.exit_code == code and text.startswith(f"{WHERE}") and message in text, text
    assert "\n" not in text and len(text) < 300


def test_the_valid_config_reads_back():
    from zoo_registry.hub_files import read_hub_config

    entry = read_hub_config(valid_config(), WHERE)
    assert (entry.architecture, entry.tag, entry.labels, entry.num_params) == ("cnn:simplecnn", "d1", DIGITS, 12345)
    assert entry.files == {"model.safetensors": "ab" * 32} and not entry.sharded


def commit_config(hub: HubServer, repo: str, content: bytes) -> None:
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=hub.url, token=ALICE)
    api.create_repo(repo, exist_ok=True)
    api.create_commit(repo, [CommitOperationAdd("config.json", content)], commit_message="hostile")


@pytest.mark.parametrize(("content", "message"), [
    (json.dumps(mutated("zoo.hub_format", "2")).encode(), "config.json: field 'zoo.hub_format' must be an integer"),
    (json.dumps(mutated("zoo.files", {"model.safetensors": None})).encode(), "field 'zoo.files.model.safetensors'"),
    (b"[" * 200_000 + b"]" * 200_000, "config.json is not readable JSON"),
    (b"\xff\xfe{}", "config.json is not readable JSON"),
    (b'{"zoo": {"labels": "' + b"x" * (9 * 2**20) + b'"}}', "config.json is 9,437,207 bytes, above the 8,388,608"),
], ids=["format-as-string", "null-sha256", "nested-200000-deep", "not-utf8", "9-MB"])  # fmt: skip
def test_pulling_a_hostile_config_is_one_line_and_changes_nothing(hub, capsys, content, message):
    commit_config(hub, "alice/bad", content)
    code, out, err = run(capsys, "pull", "alice/bad")
    line = error_line(err)
    assert code == 1 and out == "" and line.startswith(f"zoo: error: alice/bad@{hub.head('alice/bad')[:12]}: ")
    assert message in line and len(line) < 300
    assert store.list_entries() == []


def test_a_hostile_index_of_shards_is_one_line(hub, capsys, tmp_path, monkeypatch):
    publish_digits("big")
    assert run(capsys, "push", "simplecnn.big", "--repo", "alice/sharded", "--max-shard-size", "200KB")[0] == 0
    from huggingface_hub import CommitOperationAdd, HfApi

    # An index whose weight map points at lists (unhashable): once a TypeError deep in the pull.
    index = {"weight_map": {"conv.weight": ["model-00001-of-00003.safetensors"]}}
    HfApi(endpoint=hub.url, token=ALICE).create_commit("alice/sharded", [CommitOperationAdd(
        "model.safetensors.index.json", json.dumps(index).encode())], commit_message="hostile")  # fmt: skip
    config = json.loads(hub.file("alice/sharded", "config.json"))
    config["zoo"]["files"]["model.safetensors.index.json"] = sha256(json.dumps(index).encode())
    commit_config(hub, "alice/sharded", json.dumps(config).encode())
    fresh_home(tmp_path, monkeypatch, "elsewhere")
    code, _, err = run(capsys, "pull", "alice/sharded")
    assert code == 1 and error_line(err).endswith(
        "model.safetensors.index.json does not map the tensors to the shards config.json lists")
    assert store.list_entries() == []


# -- the server itself ---------------------------------------------------------------------------------------------


def test_the_test_server_answers_the_rest_of_the_client_api(hub, tmp_path):
    """Listings zoo does not call itself but huggingface_hub's other entry points do (snapshot_download)."""
    from huggingface_hub import CommitOperationAdd, HfApi, snapshot_download

    api = HfApi(endpoint=hub.url, token=ALICE)
    api.create_repo("alice/misc")
    weights = os.urandom(300_000)
    api.create_commit("alice/misc", [CommitOperationAdd("sub/model.safetensors", weights),
                                     CommitOperationAdd("notes.txt", b"hello")], commit_message="m")  # fmt: skip
    tree = {f.path: f for f in api.list_repo_tree("alice/misc", recursive=True)}
    assert set(tree) == {".gitattributes", "notes.txt", "sub/model.safetensors"}
    assert tree["sub/model.safetensors"].lfs.sha256 == sha256(weights) and tree["notes.txt"].lfs is None
    assert {f.path for f in api.list_repo_tree("alice/misc")} == {".gitattributes", "notes.txt", "sub"}
    (info,) = api.get_paths_info("alice/misc", ["notes.txt"])
    assert info.size == 5 and info.blob_id == hashlib.sha1(b"blob 5\0hello").hexdigest()
    api.create_commit("alice/misc", [CommitOperationAdd("notes.txt", b"bye")], commit_message="pr", create_pr=True)
    refs = api.list_repo_refs("alice/misc", include_pull_requests=True)
    assert [b.name for b in refs.branches] == ["main"] and [p.ref for p in refs.pull_requests] == ["refs/pr/1"]
    folder = Path(snapshot_download("alice/misc", endpoint=hub.url, cache_dir=str(tmp_path / "snap")))
    assert (folder / "sub" / "model.safetensors").read_bytes() == weights
    assert (folder / "notes.txt").read_text() == "hello"
    assert folder.name == hub.head("alice/misc")
