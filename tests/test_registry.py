"""The local registry: publish safetensors weights, load them back by tag, and refuse anything damaged."""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from zoo_registry import store
from zoo_registry.weights_file import load_weights, sha256_file

import zoo_core
from zoo_core import plugins
from zoo_core.cli import main
from zoo_core.errors import UnknownNameError, UsageError, WeightsError

KWARGS = {"num_classes": 3, "input_size": 16}
LABELS = ["cat", "dog", "bird"]
PREPROCESSING = {"input_size": [3, 16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return zoo_core.create_model("simplecnn", **KWARGS).eval()


def publish(tag: str, seed: int = 0, **options) -> store.PublishedEntry:
    options.setdefault("metrics", {"top1": 91.5, "top5": 100.0})
    options.setdefault("training", {"dataset": "digits", "epochs": 1, "lr": 1e-3, "seed": seed})
    return store.publish(
        tiny_model(seed), model_name="cnn:simplecnn", tag=tag, model_kwargs=KWARGS, labels=LABELS,
        preprocessing=PREPROCESSING, **options,
    )  # fmt: skip


def outputs(model: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(123)
    with torch.no_grad():
        return model.eval()(torch.randn(4, 3, 16, 16))


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def rewrite_weights(entry: store.PublishedEntry, tensors: dict[str, torch.Tensor]) -> None:
    """Replace an entry's weights with other (valid safetensors) tensors, keeping its checksum honest."""
    from safetensors.torch import save_file

    save_file(tensors, str(entry.weights_path), metadata={"format": "pt"})
    config = json.loads((entry.path / "config.json").read_text())
    config["sha256"] = sha256_file(entry.weights_path)
    (entry.path / "config.json").write_text(json.dumps(config))
    plugins.reset()


# -- publish and load back -----------------------------------------------------------------------------


def test_published_weights_load_back_by_tag_with_identical_outputs(zoo_home):
    original = tiny_model(seed=7)
    entry = store.publish(
        original, model_name="simplecnn", tag="digits-v1", model_kwargs=KWARGS, labels=LABELS,
        preprocessing=PREPROCESSING, metrics={"top1": 91.5}, training={"dataset": "digits", "epochs": 1},
    )  # fmt: skip
    assert entry.path == zoo_home / "registry" / "cnn" / "simplecnn" / "digits-v1" / "v1"  # its first version
    assert sorted(p.name for p in entry.path.iterdir()) == ["README.md", "config.json", "metrics.json",
                                                            "model.safetensors"]  # fmt: skip

    for model in (zoo_core.create_model("simplecnn", pretrained="digits-v1"),
                  zoo_core.create_model("cnn:simplecnn.digits-v1")):  # fmt: skip
        assert torch.equal(outputs(model), outputs(original))
        assert model.zoo_spec["tag"] == "digits-v1" and model.zoo_spec["num_classes"] == 3

    config = json.loads((entry.path / "config.json").read_text())
    assert config["architecture"] == "cnn:simplecnn"
    assert config["model_kwargs"] == KWARGS and config["labels"] == LABELS and config["num_classes"] == 3
    assert {k: config["preprocessing"][k] for k in PREPROCESSING} == PREPROCESSING  # and the schema's defaults
    assert config["preprocessing"]["crop_mode"] == "squash" and config["preprocessing"]["crop_pct"] == 1.0
    assert config["sha256"] == sha256_file(entry.weights_path)
    assert config["size_bytes"] == entry.weights_path.stat().st_size
    assert config["zoo_version"] == zoo_core.__version__ and config["created"].endswith("Z")
    assert config["training"] == {"dataset": "digits", "epochs": 1}
    assert json.loads((entry.path / "metrics.json").read_text()) == {"top1": 91.5}

    from safetensors import safe_open

    with safe_open(str(entry.weights_path), "pt") as f:
        assert f.metadata()["format"] == "pt"
        assert set(f.keys()) == set(original.state_dict())


def test_model_card_has_hub_front_matter_and_a_usage_snippet():
    entry = publish("card", metrics={"top1": 88.25, "top5": 99.5})
    text = (entry.path / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["library_name"] == "zoo" and meta["datasets"] == ["digits"]
    assert "image-classification" in meta["tags"]
    result = meta["model-index"][0]["results"][0]
    assert result["dataset"]["name"] == "digits"
    assert {"type": "accuracy", "value": 88.25, "name": "Top-1 accuracy"} in result["metrics"]
    assert 'create_model("simplecnn", pretrained="card")' in text
    assert "zoo eval simplecnn.card --dataset digits" in text
    assert all(label in text for label in LABELS) and entry.sha256 in text


def test_update_metrics_merges_and_rerenders_the_card():
    publish("bench", metrics={"top1": 80.0, "benchmark": {"cpu": {"samples_per_sec": 10.0}}})
    new = {"top5": 97.0, "benchmark": {"cuda": {"samples_per_sec": 9.0}}}
    store.update_metrics("simplecnn", "bench", new)
    entry = store.get("simplecnn", "bench")
    speeds = {"cpu": {"samples_per_sec": 10.0}, "cuda": {"samples_per_sec": 9.0}}
    assert entry.metrics == {"top1": 80.0, "top5": 97.0, "benchmark": speeds}
    assert "Top-5 accuracy" in (entry.path / "README.md").read_text()
    assert zoo_core.model_info("simplecnn", stats=False)["pretrained"]["bench"]["metrics"]["top5"] == 97.0
    with pytest.raises(UnknownNameError, match="simplecnn.nope"):
        store.update_metrics("simplecnn", "nope", {"top1": 1.0})


def test_publish_refuses_what_could_not_be_loaded_back():
    with pytest.raises(UsageError, match="invalid tag"):
        publish("bad/tag")
    with pytest.raises(UsageError, match="4 labels for a model with 3 classes"):
        store.publish(tiny_model(), model_name="simplecnn", tag="x", model_kwargs=KWARGS,
                      labels=[*LABELS, "fish"], preprocessing={})  # fmt: skip
    with pytest.raises(WeightsError, match="does not fit these weights.*wrong shapes: classifier"):
        store.publish(tiny_model(), model_name="simplecnn", tag="x", model_kwargs={"num_classes": 3},
                      labels=LABELS, preprocessing={})  # fmt: skip
    with pytest.raises(UnknownNameError):
        store.publish(tiny_model(), model_name="cnn:nosuchnet", tag="x", model_kwargs=KWARGS, labels=LABELS,
                      preprocessing={})  # fmt: skip
    assert store.list_entries() == []


# -- the catalogue and the CLI -------------------------------------------------------------------------


def test_zoo_list_pretrained_shows_published_tags(capsys):
    publish("a1")
    publish("b2", seed=1)
    code, out, _ = run_cli(capsys, "list", "simplecnn", "--pretrained", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["qualified"] == "cnn:simplecnn" and row["pretrained"] == ["a1", "b2"]
    assert zoo_core.list_models("simple*", pretrained=True) == ["simplecnn"]


def test_registry_cli_list_show_remove(capsys, zoo_home):
    code, out, _ = run_cli(capsys, "registry", "list", "--json")
    assert (code, json.loads(out)) == (0, [])
    entry = publish("mine")
    publish("other", seed=3)

    code, out, _ = run_cli(capsys, "registry", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["ref"] for r in rows] == ["cnn:simplecnn.mine", "cnn:simplecnn.other"]
    assert rows[0]["sha256"] == entry.sha256 and rows[0]["metrics"]["top1"] == 91.5
    code, out, _ = run_cli(capsys, "registry", "list")
    assert code == 0 and "2 entries" in out
    row = next(line.split() for line in out.splitlines() if line.startswith("simplecnn.mine "))
    assert row[:3] == ["simplecnn.mine", "digits", "91.50"]  # the dataset and the test top-1

    code, out, _ = run_cli(capsys, "registry", "show", "simplecnn.mine", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["config"]["labels"] == LABELS and "model.safetensors" in shown["files"]
    code, out, _ = run_cli(capsys, "registry", "show", "cnn:simplecnn.mine")
    assert code == 0 and entry.sha256 in out and "cat, dog, bird" in out

    code, _, err = run_cli(capsys, "registry", "show", "simplecnn.mien")
    assert code == 2 and err.strip() == ("zoo: error: unknown registry entry 'cnn:simplecnn.mien'; "
                                         "did you mean cnn:simplecnn.mine?")  # fmt: skip
    code, _, err = run_cli(capsys, "registry", "show", "simplecnn")
    assert code == 2 and err.strip() == ("zoo: error: simplecnn has no default weights; name a tag "
                                         "(simplecnn.mine, simplecnn.other) or set a default: "
                                         "zoo registry default simplecnn TAG")  # fmt: skip

    code, _, err = run_cli(capsys, "registry", "remove", "simplecnn.mine")
    assert code == 2 and "add --yes" in err and entry.path.is_dir()
    code, out, _ = run_cli(capsys, "registry", "remove", "simplecnn.mine", "--yes")
    assert code == 0 and "removed cnn:simplecnn.mine" in out and not entry.path.exists()
    code, _, err = run_cli(capsys, "registry", "remove", "simplecnn.mine", "--yes")
    assert code == 2 and "unknown registry entry" in err
    assert [e.tag for e in store.list_entries()] == ["other"]
    assert zoo_core.model_info("simplecnn", stats=False)["pretrained"].keys() == {"other"}
    with pytest.raises(UnknownNameError):
        zoo_core.create_model("simplecnn", pretrained="mine")


def test_a_broken_entry_is_skipped_with_a_warning_and_the_rest_still_load(capsys):
    good = publish("good")
    bad = publish("bad", seed=1)
    (bad.path / "config.json").write_text("{ not json")
    plugins.reset()
    code, out, err = run_cli(capsys, "list", "simplecnn", "--pretrained", "--json")
    assert code == 0 and json.loads(out)[0]["pretrained"] == ["good"]
    assert f"zoo: warning: registry entry {bad.path} skipped" in err
    assert torch.equal(outputs(zoo_core.create_model("simplecnn", pretrained="good")), outputs(tiny_model()))
    with pytest.raises(WeightsError, match="broken entry"):
        store.get("simplecnn", "bad")
    assert [e.tag for e in store.list_entries()] == [good.tag]


def test_listing_reads_json_only_and_imports_no_torch(zoo_home):
    publish("fast")
    plugins.get_catalogue()  # warm the catalogue cache, as any earlier zoo command does
    code = "import sys, zoo_core; print(zoo_core.get_catalogue().get('model', 'simplecnn').pretrained['fast']['source'], 'torch' in sys.modules)"  # noqa: E501
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["local", "False"]


# -- damaged or mismatched weights ------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "flip-byte"])
def test_damaged_weights_are_refused_by_checksum(damage):
    entry = publish("damaged")
    data = bytearray(entry.weights_path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[-10] ^= 0xFF  # inside the last tensor: the file still parses, only the checksum can tell
    entry.weights_path.write_bytes(bytes(data))
    expected = f"{entry.weights_path}: checksum mismatch (file is corrupted or was changed)"
    with pytest.raises(WeightsError) as info:
        zoo_core.create_model("simplecnn", pretrained="damaged")
    assert str(info.value) == expected
    with pytest.raises(WeightsError, match="checksum mismatch"):
        store.load_published(store.get("simplecnn", "damaged").path, tiny_model())


def test_missing_unexpected_and_misshaped_keys_are_one_error_naming_the_file():
    entry = publish("keys")
    state = {k: v.clone() for k, v in tiny_model().state_dict().items()}

    rewrite_weights(entry, {k: v for k, v in state.items() if not k.startswith("classifier")})
    with pytest.raises(WeightsError) as info:
        zoo_core.create_model("simplecnn", pretrained="keys")
    msg = str(info.value)
    assert msg.startswith(f"{entry.weights_path}: does not fit SimpleCNN: 4 missing keys: classifier.1.")
    assert "\n" not in msg

    rewrite_weights(entry, {**state, "head.extra": torch.zeros(2), "head.more": torch.zeros(1)})
    with pytest.raises(WeightsError, match=r"safetensors: does not fit SimpleCNN: 2 unexpected keys: head"):
        zoo_core.create_model("simplecnn", pretrained="keys")

    rewrite_weights(entry, {**state, "classifier.4.weight": torch.ones(5, 512),
                            "classifier.4.bias": torch.ones(5)})
    with pytest.raises(WeightsError) as info:
        zoo_core.create_model("simplecnn", pretrained="keys")
    assert "2 wrong shapes: classifier.4.weight (file [5, 512], model [3, 512])" in str(info.value)


def test_pickle_checkpoints_are_refused_without_unpickling(tmp_path, monkeypatch):
    entry = publish("pickled")
    model = tiny_model()
    torch.save(model.state_dict(), entry.weights_path)  # someone swaps in a torch.save checkpoint
    legacy = tmp_path / "legacy.pth"
    torch.save(model.state_dict(), legacy, _use_new_zipfile_serialization=False)

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_unpickling)
    with pytest.raises(WeightsError, match=r"model.safetensors: is a pickle checkpoint, not safetensors"):
        zoo_core.create_model("simplecnn", pretrained="pickled")
    with pytest.raises(WeightsError, match=r"legacy.pth: is a pickle checkpoint"):
        load_weights(model, legacy)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="junk.safetensors: not a valid safetensors file"):
        load_weights(model, tmp_path / "junk.safetensors")


# -- overwriting, concurrency, crashes ---------------------------------------------------------------------


def test_publishing_a_tag_again_adds_a_version_and_keeps_the_first(zoo_home):
    first = publish("v")
    second = publish("v", seed=1, metrics={"top1": 50.0})  # no flag needed: nothing is replaced
    assert (first.version, second.version) == (1, 2) and second.sha256 != first.sha256
    assert store.get("simplecnn", "v").sha256 == second.sha256 and store.get("simplecnn", "v").metrics == {"top1": 50.0}
    assert torch.equal(outputs(zoo_core.create_model("simplecnn", pretrained="v")), outputs(tiny_model(1)))
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.v@1")), outputs(tiny_model(0)))  # version 1 stays
    assert sha256_file(first.weights_path) == first.sha256
    registry = zoo_home / "registry"
    assert sorted(os.listdir(registry / "cnn" / "simplecnn")) == ["v"]  # one tag, two versions in it
    assert sorted(os.listdir(registry / "cnn" / "simplecnn" / "v")) == ["tag.json", "v1", "v2"]
    assert os.listdir(registry / ".staging") == []


def test_a_failure_mid_publish_leaves_the_old_entry_and_no_debris(monkeypatch, zoo_home):
    old = publish("keep")
    import zoo_registry.model_card

    def broken_render(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(zoo_registry.model_card, "render", broken_render)
    with pytest.raises(OSError, match="disk full"):
        publish("keep", seed=1, overwrite=True)
    assert store.get("simplecnn", "keep").sha256 == old.sha256 == sha256_file(old.weights_path)
    assert os.listdir(zoo_home / "registry" / ".staging") == []
    assert torch.equal(outputs(zoo_core.create_model("simplecnn", pretrained="keep")), outputs(tiny_model(0)))


def _publish_worker(tag: str, seed: int, overwrite: bool, barrier, results) -> None:
    """Child process: build the model, wait for the others, then publish at the same moment."""
    model = tiny_model(seed)
    store.qualify("simplecnn")  # load the catalogue before the race, so the publishes really overlap
    barrier.wait(timeout=120)
    try:
        entry = store.publish(model, model_name="simplecnn", tag=tag, model_kwargs=KWARGS, labels=LABELS,
                              preprocessing=PREPROCESSING, overwrite=overwrite)  # fmt: skip
        results.put((tag, seed, "ok", entry.sha256))
    except zoo_core.ZooError as e:
        results.put((tag, seed, "error", str(e)))


def _race(jobs: list[tuple[str, int, bool]]) -> list[tuple[str, int, str, str]]:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=_publish_worker, args=(*job, barrier, results)) for job in jobs]
    for p in procs:
        p.start()
    out: list[tuple[str, int, str, str]] = []
    deadline = time.monotonic() + 300
    while len(out) < len(procs):
        try:
            out.append(results.get(timeout=1))
        except queue.Empty:
            died = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not died and time.monotonic() < deadline, f"a publisher died or hung: exit codes {died}"
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return sorted(out)


def test_concurrent_publishes_leave_complete_loadable_entries(zoo_home):
    """Four processes publish at once, two to each of two tags: every publish becomes a version of its own."""
    publish("other")  # already saved: must survive the race untouched
    before = store.get("simplecnn", "other").sha256
    results = _race([("same", 1, True), ("same", 2, False), ("once", 3, False), ("once", 4, False)])

    assert [r[2] for r in results] == ["ok"] * 4, results
    entries = {e.tag: e for e in store.list_entries()}
    assert sorted(entries) == ["once", "other", "same"]
    assert entries["other"].sha256 == before
    plugins.reset()  # this process loaded its catalogue before the others published
    for tag in ("same", "once"):
        state, versions = store.versions_of("simplecnn", tag)
        assert [v.version for v in versions] == [1, 2] and state.current == 2, (tag, state)
        published = {sha: seed for t, seed, status, sha in results if t == tag}
        assert {v.sha256 for v in versions} == set(published)  # both publishes kept, none a mix of the two
        for v in versions:
            assert sha256_file(v.weights_path) == v.sha256
            loaded = zoo_core.create_model(f"simplecnn.{tag}@{v.version}")
            assert torch.equal(outputs(loaded), outputs(tiny_model(published[v.sha256])))
    assert os.listdir(zoo_home / "registry" / ".staging") == []
    assert sorted(os.listdir(zoo_home / "registry" / "cnn" / "simplecnn")) == ["once", "other", "same"]


def _crash_after_the_version_is_in_place(tag: str) -> None:
    """Child process: publish ``tag`` again but die (as if killed) right after the new version's folder was
    renamed into place, before the tag points at it."""
    real_rename = os.rename

    def rename(src, dst):
        real_rename(src, dst)
        if Path(dst).name == "v2":
            os._exit(9)

    os.rename = rename
    publish(tag, seed=5)


def test_a_process_killed_mid_publish_leaves_the_previous_version_current(zoo_home):
    old = publish("crash")
    proc = multiprocessing.get_context("spawn").Process(target=_crash_after_the_version_is_in_place, args=("crash",))
    proc.start()
    proc.join(timeout=180)
    assert proc.exitcode == 9

    # The tag still means version 1, whole; the version the kill cut short is complete, but not current.
    plugins.reset()
    assert torch.equal(outputs(zoo_core.create_model("simplecnn", pretrained="crash")), outputs(tiny_model()))
    assert store.get("simplecnn", "crash").sha256 == old.sha256 == sha256_file(old.weights_path)
    state, versions = store.versions_of("simplecnn", "crash")
    assert state.current == 1 and [v.version for v in versions] == [1, 2]
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.crash@2")), outputs(tiny_model(5)))
    publish("crash", seed=6)
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.crash")), outputs(tiny_model(6)))
    assert store.get("simplecnn", "crash").version == 3


def test_weights_of_a_later_plugins_model_become_its_tags():
    """The registry plugin loads before torchvision; its weights must still find torchvision's models."""
    import torch
    from zoo_registry import store

    from zoo_core import create_model, plugins

    model = create_model("resnet18", num_classes=3, in_chans=1).eval()
    store.publish(model, model_name="resnet18", tag="gray3", model_kwargs={"num_classes": 3, "in_chans": 1},
                  labels=["a", "b", "c"], preprocessing={"input_size": [1, 32, 32]})  # fmt: skip
    plugins.reset()
    assert plugins.get_catalogue().get("model", "resnet18").default_tag == "imagenet1k_v1"
    loaded = create_model("resnet18.gray3").eval()
    x = torch.randn(2, 1, 32, 32)
    assert torch.equal(model(x), loaded(x))


def test_a_model_has_default_weights_only_when_set(capsys):
    from zoo_core.cli import main

    publish("first")
    publish("second")
    with pytest.raises(UsageError, match=r"simplecnn has no default weights; name a tag \(simplecnn.first, "
                                         r"simplecnn.second\) or set a default: zoo registry default simplecnn TAG"):
        zoo_core.create_model("simplecnn", pretrained=True)
    assert main(["registry", "default", "simplecnn.first"]) == 0
    assert "simplecnn means simplecnn.first now" in capsys.readouterr().out
    assert zoo_core.create_model("simplecnn", pretrained=True).zoo_spec["tag"] == "first"
    plugins.reset()  # a new process sees it too
    assert plugins.get_catalogue().get("model", "simplecnn").default_tag == "first"
    assert main(["registry", "default", "simplecnn", "nosuch"]) == 2
    assert "did you mean" in capsys.readouterr().err
    assert main(["registry", "default", "simplecnn", "--clear"]) == 0
    plugins.reset()
    assert plugins.get_catalogue().get("model", "simplecnn").default_tag is None


# -- broken entries: shown as broken, removable, replaceable -----------------------------------------------


def test_a_broken_entry_is_shown_removed_and_replaced(capsys):
    entry = publish("torn")
    config = json.loads((entry.path / "config.json").read_text())
    config["labels"] = ["only-one"]  # disagrees with num_classes 3
    (entry.path / "config.json").write_text(json.dumps(config))
    code, _, err = run_cli(capsys, "registry", "show", "simplecnn.torn")
    assert code == 1 and "broken entry" in err and "disagrees with itself" in err
    code, _, err = run_cli(capsys, "registry", "remove", "simplecnn.torn", "--yes")
    assert code == 0, err
    assert not entry.path.exists()

    publish("torn")
    (entry.path / "config.json").write_text("{")
    code, _, err = run_cli(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "torn",
                           "--overwrite")  # fmt: skip
    assert code == 0, err
    assert store.get("simplecnn", "torn").metrics["dataset"] == "digits"


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_registry_show_checks_the_files_it_describes(damage, capsys):
    entry = publish("shown")
    if damage == "truncate":
        data = entry.weights_path.read_bytes()
        entry.weights_path.write_bytes(data[: len(data) // 2])
    else:
        entry.weights_path.unlink()
    code, out, _ = run_cli(capsys, "registry", "show", "simplecnn.shown")
    assert code == 1 and "PROBLEM" in out and ("truncated" in out or "missing" in out)
    code, out, _ = run_cli(capsys, "registry", "show", "simplecnn.shown", "--json")
    assert code == 1 and json.loads(out)["problems"]


# -- zoo doctor ----------------------------------------------------------------------------------------------


def test_doctor_finds_and_repairs_a_damaged_registry(capsys):
    root = store.registry_root()
    # other weights for each: identical ones would share one stored file, and damage to it would be damage to all
    healthy = publish("healthy")
    truncated = publish("truncated", seed=1)
    data = truncated.weights_path.read_bytes()
    truncated.weights_path.write_bytes(data[:-100])
    tampered = publish("tampered", seed=2)
    data = bytearray(tampered.weights_path.read_bytes())
    data[-5] ^= 0xFF
    tampered.weights_path.write_bytes(bytes(data))
    configless = publish("configless", seed=3)
    (configless.path / "config.json").unlink()
    half = publish("half", seed=4)  # a swap killed after its second rename: the old folder is still set aside
    shutil.copytree(half.tag_path, half.tag_path.parent / ".half.old")
    staging = root / ".staging" / "cnn-simplecnn-x-killed"
    staging.mkdir(parents=True)
    os.utime(staging, (1, 1))  # long ago
    (healthy.path / "README.md").unlink()
    store.set_default("simplecnn", "healthy")
    (healthy.tag_path.parent / ".default").write_text("gone\n")

    code, out, _ = run_cli(capsys, "doctor", "--json")
    problems = json.loads(out)
    assert code == 1
    found = {Path(p["path"]).parent.name if Path(p["path"]).name == "v1" else Path(p["path"]).name: p["problem"]
             for p in problems}  # a version's problem by its tag's name  # fmt: skip
    assert "truncated" in found["truncated"] and "sha256" in found["tampered"]
    assert "config.json is missing" in found["configless"] and "killed between its two renames" in found[".half.old"]
    assert "publish was killed" in found["cnn-simplecnn-x-killed"] and "README.md is missing" in found["healthy"]
    assert "'gone' is not published" in found[".default"]

    code, out, _ = run_cli(capsys, "doctor", "--fix")
    assert code == 0, out
    assert "fixed: moved to" in out
    assert sorted(p.name for p in (root / "cnn" / "simplecnn").iterdir() if not p.name.startswith(".")) == [
        "half", "healthy"]
    assert (healthy.path / "README.md").is_file() and not staging.exists()
    assert len(list((root / ".quarantine" / "cnn" / "simplecnn").iterdir())) == 3  # kept, out of the catalogue
    assert zoo_core.create_model("simplecnn.half") is not None
    code, out, _ = run_cli(capsys, "registry", "verify")
    assert code == 0 and out.startswith("the registry is healthy")


def test_registry_remove_takes_y_as_well_as_yes(capsys):
    first, second = publish("first"), publish("second", seed=1)
    code, out, err = run_cli(capsys, "registry", "remove", "simplecnn.first", "-y")
    assert (code, err) == (0, "") and f"removed cnn:simplecnn.first ({first.tag_path})" in out
    code, out, err = run_cli(capsys, "registry", "remove", "simplecnn.second", "--yes")
    assert (code, err) == (0, "") and f"removed cnn:simplecnn.second ({second.tag_path})" in out
    assert not first.path.exists() and not second.path.exists() and store.list_entries() == []
    code, _, err = run_cli(capsys, "registry", "remove", "simplecnn.first", "-y")
    assert code == 2 and "unknown registry entry" in err


def test_a_published_tag_stays_with_its_registry_when_the_catalogue_comes_from_what_zoo_ships(
    zoo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold cache lists the built-in models from the shipped catalogue, whose rows the process keeps: the tags a
    registry adds must stay its catalogue's, not reach the next one (another ZOO_HOME) in the same process."""
    from zoo_core import shipped

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cold_cache"))
    plugins.reset()
    assert shipped.catalogue_part("cnn", "zoo_cnn", "entries") is not None  # the rows come from what ships
    publish("mine")
    assert "mine" in plugins.get_catalogue().get("model", "simplecnn").pretrained
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "another_home"))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "another_cold_cache"))
    plugins.reset()
    assert "mine" not in plugins.get_catalogue().get("model", "simplecnn").pretrained
    publish("mine")  # and the tag is free to publish there
