"""Numbered versions of every tag: MODEL.TAG@N wherever a name is taken, aliases, rollback, history, diff,
removing versions and gc, weights stored once by content, `zoo doctor`, and registries written before versions
(migrated on first open)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch
from test_registry import outputs
from test_registry import run_cli as run
from zoo_registry import store
from zoo_registry.weights_file import sha256_file

import zoo_core
from zoo_core import plugins

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))
import legacy_registry  # noqa: E402

KWARGS = {"num_classes": 3, "input_size": 16}
LABELS = ["cat", "dog", "bird"]
PREPROCESSING = {"input_size": [3, 16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return zoo_core.create_model("simplecnn", **KWARGS).eval()


def publish(tag: str, seed: int = 0, top1: float = 50.0) -> store.PublishedEntry:
    return store.publish(tiny_model(seed), model_name="simplecnn", tag=tag, model_kwargs=KWARGS, labels=LABELS,
                         preprocessing=PREPROCESSING, metrics={"top1": top1},
                         training={"dataset": "digits", "seed": seed})  # fmt: skip


def run_json(capsys, *args: str):
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def one_error(capsys, *args: str) -> str:
    code, out, err = run(capsys, *args)
    lines = [line for line in err.splitlines() if line.startswith("zoo: error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    return lines[0]


# -- the done-when: two trainings, eval of @1, an alias, a rollback ------------------------------------


def test_two_trainings_into_one_tag_are_versions_1_and_2_and_a_rollback_keeps_both(capsys):
    train = ["train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "r"]
    first = run_json(capsys, *train)
    second = run_json(capsys, *train, "--lr", "0.003", "--seed", "1")  # the same tag: no flag needed
    assert (first["version"], second["version"]) == (1, 2)
    top1 = {1: first["metrics"]["top1"], 2: second["metrics"]["top1"]}

    rows = run_json(capsys, "registry", "history", "simplecnn.r")
    assert [(r["version"], r["metrics"]["top1"], r["current"]) for r in rows] == [(1, top1[1], False),
                                                                                   (2, top1[2], True)]
    assert rows[0]["source"] == "run cnn-simplecnn-r" and rows[0]["metrics"]["dataset"] == "digits"
    code, out, _ = run(capsys, "registry", "history", "simplecnn.r")
    lines = out.splitlines()[2:]
    assert [line.split()[0] for line in lines] == ["1", "2"] and lines[1].endswith("(current)")

    def evaluated(name: str) -> float:
        return run_json(capsys, "eval", name, "--dataset", "digits")["top1"]

    assert evaluated("simplecnn.r@1") == top1[1]  # version 1 reproduces the first training
    assert evaluated("simplecnn.r") == evaluated("simplecnn.r@2") == top1[2]

    assert run(capsys, "registry", "alias", "simplecnn.champion", "simplecnn.r@1")[1].strip() == \
        "simplecnn.champion -> simplecnn.r@1"  # fmt: skip
    assert evaluated("simplecnn.champion") == top1[1]

    v2 = store.get_version("simplecnn", "r", 2)
    code, out, _ = run(capsys, "registry", "rollback", "simplecnn.r", "1")
    assert code == 0 and out.strip() == "simplecnn.r means simplecnn.r@1 now (was @2; every version is kept)"
    assert evaluated("simplecnn.r") == top1[1]
    assert evaluated("simplecnn.r@2") == top1[2] and sha256_file(v2.weights_path) == v2.sha256  # @2 intact
    assert [r["current"] for r in run_json(capsys, "registry", "history", "simplecnn.r")] == [True, False]

    # the same names in the Python API, `zoo info` and `zoo benchmark`
    api = zoo_core.create_model("simplecnn.r@2", pretrained=True)
    assert api.zoo_spec["tag"] == "r--v2"
    x = torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(zoo_core.create_model("simplecnn.champion").eval()(x), zoo_core.create_model(
            "simplecnn.r").eval()(x))  # fmt: skip
    assert zoo_core.weights_info("simplecnn.r@2").metrics["top1"] == top1[2]
    info = run_json(capsys, "info", "simplecnn.r@2")
    assert info["pretrained"]["r--v2"]["metrics"]["top1"] == top1[2]
    assert info["pretrained"]["r--v2"]["path"] == str(v2.path)
    (bench,) = run_json(capsys, "benchmark", "simplecnn.r@2", "--dataset", "digits", "--no-isolate", "--device",
                        "cpu", "--warmup", "1", "--iters", "3")  # fmt: skip
    assert bench["accuracy"]["top1"] == pytest.approx(top1[2], abs=0.01) and bench["registry"] == "recorded"
    assert "benchmark" in store.get_version("simplecnn", "r", 2).metrics  # recorded with version 2, not the tag


def test_a_version_that_is_not_there_is_one_line(capsys):
    publish("r")
    assert one_error(capsys, "eval", "simplecnn.r@3", "--dataset", "digits") == (
        "zoo: error: simplecnn.r has no version 3 (it has 1; see `zoo registry history simplecnn.r`)")
    assert "no version 1 of simplecnn.nosuch" in one_error(capsys, "info", "simplecnn.nosuch@1")
    publish("other", seed=1)
    assert run(capsys, "registry", "alias", "simplecnn.best", "simplecnn.r")[0] == 0
    assert "simplecnn.best is an alias (of simplecnn.r@1)" in one_error(capsys, "info", "simplecnn.best@1")


# -- storage: versions, content addressing ---------------------------------------------------------------------


def test_identical_weights_are_stored_once_and_versions_share_them(zoo_home):
    a1 = publish("a")
    b1 = publish("b")  # the same weights under another tag
    a2 = publish("a")  # and again under the first
    assert a1.sha256 == b1.sha256 == a2.sha256 and a2.version == 2
    blobs = list((zoo_home / "registry" / ".weights").iterdir())
    assert [p.name for p in blobs] == [f"{a1.sha256}.safetensors"]
    assert blobs[0].stat().st_nlink == 4  # the stored file and the three versions: one copy on disk
    assert all(os.path.samefile(blobs[0], e.weights_path) for e in (a1, b1, a2))
    other = publish("a", seed=1)
    assert len(list((zoo_home / "registry" / ".weights").iterdir())) == 2 and other.version == 3


def test_a_stored_file_that_was_damaged_is_not_shared(zoo_home):
    first = publish("a")
    data = bytearray(first.weights_path.read_bytes())
    data[-3] ^= 0xFF
    first.weights_path.write_bytes(bytes(data))  # in place: the stored file is the same file
    second = publish("b")
    assert not os.path.samefile(first.weights_path, second.weights_path)
    assert sha256_file(second.weights_path) == second.sha256
    stored = zoo_home / "registry" / ".weights" / f"{second.sha256}.safetensors"
    assert os.path.samefile(stored, second.weights_path)  # the sound copy is the stored one now
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.b")), outputs(tiny_model()))


def test_a_publish_whose_pointer_cannot_be_written_leaves_no_version(monkeypatch, zoo_home):
    import errno

    first = publish("r")

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    real = store.write_pointer
    monkeypatch.setattr(store, "write_pointer", disk_full)
    with pytest.raises(OSError, match="No space left"):
        publish("r", seed=1)
    assert sorted(os.listdir(first.tag_path)) == ["tag.json", "v1"] and store.get("simplecnn", "r").version == 1
    assert os.listdir(zoo_home / "registry" / ".staging") == []
    monkeypatch.setattr(store, "write_pointer", real)
    assert publish("r", seed=1).version == 2


# -- aliases ---------------------------------------------------------------------------------------------------


def test_aliases_name_versions_move_in_one_command_and_shadow_nothing(capsys):
    publish("r", seed=1)
    publish("r", seed=2)
    assert run(capsys, "registry", "alias", "simplecnn.prod", "simplecnn.r")[1].strip() == "simplecnn.prod -> " \
                                                                                         "simplecnn.r@2"  # fmt: skip
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.prod")), outputs(tiny_model(2)))
    code, out, _ = run(capsys, "registry", "alias", "simplecnn.prod", "simplecnn.r@1")
    assert out.strip() == "simplecnn.prod -> simplecnn.r@1 (moved from simplecnn.r@2)"
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.prod")), outputs(tiny_model(1)))
    assert run_json(capsys, "registry", "alias", "simplecnn.prod") == {"alias": "cnn:simplecnn.prod",
                                                                        "names": "cnn:simplecnn.r@1"}  # fmt: skip
    assert [r["aliases"] for r in run_json(capsys, "registry", "history", "simplecnn.r")] == [["prod"], []]

    assert "simplecnn.r is a tag; an alias cannot take a tag's name" in one_error(
        capsys, "registry", "alias", "simplecnn.r", "simplecnn.r@1")  # fmt: skip
    store.publish(zoo_core.create_model("resnet18", num_classes=3), model_name="resnet18", tag="mine",
                  labels=LABELS, model_kwargs={"num_classes": 3}, preprocessing=PREPROCESSING)  # fmt: skip
    assert "has its own pretrained tag 'imagenet1k_v1' (from plugin torchvision); an alias cannot shadow it" in \
        one_error(capsys, "registry", "alias", "resnet18.imagenet1k_v1", "resnet18.mine")  # fmt: skip
    assert "names ending in --vN are how zoo lists versions" in one_error(
        capsys, "registry", "alias", "simplecnn.x--v2", "simplecnn.r@1")  # fmt: skip
    assert "is an alias of cnn:simplecnn.r@1; publish under another tag" in str(
        pytest.raises(zoo_core.ZooError, publish, "prod").value)  # fmt: skip

    code, out, _ = run(capsys, "registry", "alias", "simplecnn.prod", "--delete")
    assert code == 0 and "deleted the alias simplecnn.prod (it named simplecnn.r@1)" in out
    with pytest.raises(zoo_core.ZooError, match="unknown tag"):
        zoo_core.create_model("simplecnn.prod")
    assert len(store.versions_of("simplecnn", "r")[1]) == 2  # the version stays


def test_a_default_may_be_an_alias(capsys):
    publish("r", seed=1)
    publish("r", seed=2)
    assert run(capsys, "registry", "alias", "simplecnn.stable", "simplecnn.r@1")[0] == 0
    assert run(capsys, "registry", "default", "simplecnn", "stable")[0] == 0
    plugins.reset()
    assert zoo_core.create_model("simplecnn", pretrained=True).zoo_spec["tag"] == "stable"
    assert torch.equal(outputs(zoo_core.create_model("simplecnn", pretrained=True)), outputs(tiny_model(1)))


# -- removing: one version, gc ---------------------------------------------------------------------------------


def test_rm_takes_one_named_version_and_refuses_the_current_and_aliased_ones(capsys, zoo_home):
    v1, v2, v3 = publish("r", seed=1), publish("r", seed=2), publish("r", seed=3)
    assert run(capsys, "registry", "alias", "simplecnn.keep", "simplecnn.r@1")[0] == 0
    assert "add --yes to confirm" in one_error(capsys, "registry", "rm", "simplecnn.r@2")
    assert "is the version cnn:simplecnn.r means; roll back first" in one_error(
        capsys, "registry", "rm", "simplecnn.r@3", "-y")  # fmt: skip
    assert "is named by the alias keep" in one_error(capsys, "registry", "rm", "simplecnn.r@1", "-y")
    code, out, err = run(capsys, "registry", "rm", "simplecnn.r@2", "-y")
    assert code == 0 and out.strip() == f"removed cnn:simplecnn.r@2 ({v2.path})", err
    assert not v2.path.exists() and v1.path.exists() and v3.path.exists()
    assert not (zoo_home / "registry" / ".weights" / f"{v2.sha256}.safetensors").exists()  # its weights went too
    assert [v.version for v in store.versions_of("simplecnn", "r")[1]] == [1, 3]
    assert publish("r", seed=4).version == 4  # a number is never given twice


def test_gc_keeps_the_newest_current_and_aliased_versions_and_asks_first(capsys):
    entries = [publish("r", seed=s) for s in range(1, 6)]  # versions 1..5
    assert run(capsys, "registry", "rollback", "simplecnn.r@2")[0] == 0
    assert run(capsys, "registry", "alias", "simplecnn.old", "simplecnn.r@1")[0] == 0
    publish("other")

    dry = run_json(capsys, "registry", "gc", "--keep", "1", "--dry-run")
    assert [r["ref"] for r in dry["removed"]] == ["cnn:simplecnn.r@3", "cnn:simplecnn.r@4"]
    assert all(e.path.exists() for e in entries)  # a dry run removes nothing
    assert "gc would remove 2 version(s) (cnn:simplecnn.r@3, cnn:simplecnn.r@4); add --yes" in one_error(
        capsys, "registry", "gc", "--keep", "1")  # fmt: skip
    code, out, _ = run(capsys, "registry", "gc", "--keep", "1", "--yes")
    assert code == 0 and out.splitlines()[-1].startswith("2 version(s) removed, ")
    assert [v.version for v in store.versions_of("simplecnn", "r")[1]] == [1, 2, 5]
    assert store.get("simplecnn", "r").version == 2
    assert run_json(capsys, "registry", "gc", "simplecnn.r", "--keep", "0", "--yes")["removed"][0]["version"] == 5


# -- diff ------------------------------------------------------------------------------------------------------


def test_diff_compares_metrics_settings_and_each_tensor(capsys):
    publish("r", seed=1, top1=40.0)
    model = tiny_model(1)
    with torch.no_grad():
        model.classifier[-1].weight.mul_(2)  # one layer changed: relative L2 change exactly 1
    store.publish(model, model_name="simplecnn", tag="r", model_kwargs=KWARGS, labels=LABELS,
                  preprocessing=PREPROCESSING, metrics={"top1": 55.5}, training={"dataset": "digits", "seed": 2})
    d = run_json(capsys, "registry", "diff", "simplecnn.r@1", "simplecnn.r")
    assert (d["a"], d["b"], d["same_weights"]) == ("cnn:simplecnn.r@1", "cnn:simplecnn.r@2", False)
    assert d["metrics"]["top1"] == {"a": 40.0, "b": 55.5, "change": 15.5}
    assert {"setting": "seed", "a": 1, "b": 2} in d["settings"]
    weights = d["weights"]
    (changed,) = weights["most_changed"]
    assert changed["tensor"] == "classifier.4.weight" and changed["relative_l2"] == pytest.approx(1.0)
    assert weights["changed"] == 1 and weights["unchanged"] == weights["tensors"] - 1
    code, out, _ = run(capsys, "registry", "diff", "simplecnn.r@1", "simplecnn.r@2")
    assert "top1          40  ->  55.5  (+15.5)" in out and "classifier.4.weight" in out
    assert run_json(capsys, "registry", "diff", "simplecnn.r@2", "simplecnn.r")["weights"] == {"identical": True}


# -- zoo doctor ------------------------------------------------------------------------------------------------


def test_doctor_knows_versions(capsys, zoo_home):
    publish("r", seed=1)
    v2 = publish("r", seed=2)
    publish("s", seed=3)
    assert run(capsys, "registry", "alias", "simplecnn.a", "simplecnn.r@1")[0] == 0
    tag_dir = v2.tag_path
    (tag_dir / "tag.json").unlink()  # the pointer lost
    data = bytearray(v2.weights_path.read_bytes())
    data[-7] ^= 0xFF
    v2.weights_path.write_bytes(bytes(data))  # and the current version damaged
    stray = zoo_home / "registry" / ".weights" / ("0" * 64 + ".safetensors")
    stray.write_bytes(b"left by a removal that was killed")

    code, out, _ = run(capsys, "doctor", "--json")
    problems = {(Path(p["path"]).relative_to(zoo_home / "registry").as_posix(), p["problem"].split(" (")[0])
                for p in json.loads(out)}  # fmt: skip
    assert code == 1
    assert problems == {("cnn/simplecnn/r/v2", "model.safetensors does not match its sha256"),
                        ("cnn/simplecnn/r/tag.json", "tag.json is missing"),
                        (f".weights/{stray.name}", "weights no version uses")}  # fmt: skip
    code, out, _ = run(capsys, "doctor", "--fix")
    assert code == 0, out
    assert store.get("simplecnn", "r").version == 1  # the damaged version quarantined, the tag on the one left
    assert not stray.exists() and run(capsys, "doctor")[0] == 0
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.a")), outputs(tiny_model(1)))


# -- registries written before versions ------------------------------------------------------------------------


def test_a_registry_written_by_the_previous_release_is_migrated_on_first_open(capsys, zoo_home):
    """Entries written byte for byte as the release before versions wrote them (tests/support/legacy_registry.py)
    open as version 1 of their tags, keep their weights, default and card, and take new versions."""
    registry = zoo_home / "registry"
    old = {}
    for tag, seed in (("first", 1), ("second", 2)):
        model = tiny_model(seed)
        pre = {**PREPROCESSING, "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "squash",
               "resize_size": None}  # fmt: skip
        old[tag] = legacy_registry.write_entry(
            registry, model, plugin="cnn", name="simplecnn", tag=tag, model_kwargs=KWARGS, labels=LABELS,
            preprocessing=pre, metrics={"top1": 70.0 + seed}, training={"dataset": "digits", "epochs": 1,
                                                                        "run_id": f"cnn-simplecnn-{tag}"})  # fmt: skip
    legacy_registry.set_default(registry, "cnn", "simplecnn", "first")
    files = {tag: {p.name: p.read_bytes() for p in path.iterdir()} for tag, path in old.items()}
    plugins.reset()

    code, out, err = run(capsys, "registry", "list", "--json")  # the first open
    assert code == 0 and "2 registry tag(s) now keep numbered versions" in err
    assert [(r["tag"], r["version"], r["versions"]) for r in json.loads(out)] == [("first", 1, 1), ("second", 1, 1)]
    for tag, path in old.items():
        assert sorted(os.listdir(path)) == ["tag.json", "v1"]
        moved = {p.name: p.read_bytes() for p in (path / "v1").iterdir()}
        assert moved.keys() == files[tag].keys()
        assert {k: v for k, v in moved.items() if k != "config.json"} == {k: v for k, v in files[tag].items()
                                                                           if k != "config.json"}  # fmt: skip
        assert json.loads(moved["config.json"]) == {**json.loads(files[tag]["config.json"]), "version": 1}
    assert sorted(os.listdir(registry / "cnn" / "simplecnn")) == [".default", "first", "second"]

    assert zoo_core.create_model("simplecnn", pretrained=True).zoo_spec["tag"] == "first"  # the default kept
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.second@1")), outputs(tiny_model(2)))
    (row,) = run_json(capsys, "registry", "history", "simplecnn.first")
    assert row["source"] == "run cnn-simplecnn-first" and row["metrics"]["top1"] == 71.0
    lineage = run_json(capsys, "registry", "lineage", "simplecnn.first")
    assert lineage["recorded"] is False and lineage["dataset"]["name"] == "digits"  # from its training record
    new = publish("first", seed=9)
    assert new.version == 2 and torch.equal(outputs(zoo_core.create_model("simplecnn.first@1")),
                                            outputs(tiny_model(1)))  # fmt: skip
    assert run(capsys, "doctor")[0] == 0


def test_an_old_entry_is_read_in_place_where_the_registry_cannot_be_written(capsys, zoo_home, monkeypatch):
    import errno

    registry = zoo_home / "registry"
    pre = {**PREPROCESSING, "interpolation": "bilinear", "crop_pct": 1.0, "crop_mode": "squash", "resize_size": None}
    path = legacy_registry.write_entry(registry, tiny_model(3), plugin="cnn", name="simplecnn", tag="ro",
                                       model_kwargs=KWARGS, labels=LABELS, preprocessing=pre, metrics={},
                                       training=None)  # fmt: skip

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(store, "_migrate", read_only)  # a registry mounted read-only (root could write anywhere)
    plugins.reset()
    assert torch.equal(outputs(zoo_core.create_model("simplecnn.ro@1")), outputs(tiny_model(3)))
    assert (path / "config.json").is_file()  # still the old layout: read as version 1 where it lies
    assert [(r["version"], r["current"]) for r in run_json(capsys, "registry", "history", "simplecnn.ro")] == [
        (1, True)]  # fmt: skip
