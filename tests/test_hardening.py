"""Fifteen ways zoo was made to fail, one test each (and the neighbours the same mechanism covers), and the
`zoo doctor` that finds and repairs a damaged registry. The README's "What zoo guarantees" points here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_datasets import write_image_folder
from test_registry import publish
from zoo_registry import store

import zoo_core
import zoo_core.paths
from zoo_core import plugins
from zoo_core.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def zoo(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zoo_core", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300, **kwargs)  # fmt: skip


# 1. a third-party plugin cannot take a built-in's name ------------------------------------------------------

IMPOSTOR = """
from zoo_core import hookimpl

@hookimpl
def zoo_register_models(register):
    register("impostor", lambda num_classes=10: None)
"""


def test_a_builtin_plugin_name_cannot_be_taken(plugin_path, capsys):
    publish("kept")
    plugin_path("aaa-impostor", "cnn", "zoo_impostor_plugin", IMPOSTOR)  # sorts before zoo, same plugin name
    assert zoo_core.create_model("simplecnn", pretrained="kept").zoo_spec["model"] == "cnn:simplecnn"
    code, out, _ = run(capsys, "plugins", "--json")
    rows = [p for p in json.loads(out) if p["name"] == "cnn"]
    assert [(r["dist"], r["status"]) for r in rows] == [("zoo", "ok"), ("aaa-impostor", "error")]
    assert "already taken by zoo" in rows[1]["error"]


# 3. a weights hook that raises keeps nothing ------------------------------------------------------------

HALF_WEIGHTS = """
from zoo_core import hookimpl

@hookimpl
def zoo_register_weights(register):
    register("simplecnn", "ghost", lambda model: None, source="elsewhere")
    raise RuntimeError("the index was half read")
"""


def test_a_weights_hook_that_raises_keeps_nothing(plugin_path, capsys):
    plugin_path("zoo-halfweights", "halfweights", "zoo_halfweights_plugin", HALF_WEIGHTS)
    assert "ghost" not in plugins.get_catalogue().get("model", "simplecnn").pretrained
    code, _, err = run(capsys, "eval", "simplecnn.ghost", "--dataset", "digits")
    assert code == 2 and "unknown tag of cnn:simplecnn 'ghost'" in err


# 4 and 15. no home, or one that cannot be written -----------------------------------------------------------


def test_a_zoo_home_that_is_a_file_is_one_line(tmp_path):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    env = {"ZOO_HOME": str(home), "ZOO_CACHE": str(home / "cache")}
    listed = zoo("list", "simplecnn", env=env)
    assert listed.returncode == 0 and "simplecnn" in listed.stdout
    assert listed.stderr.count("cannot write the catalogue cache") == 1  # once, not once per plugin
    trained = zoo("train", "simplecnn", "--dataset", "digits", "--epochs", "1", env=env)
    errors = [line for line in trained.stderr.splitlines() if line.startswith("zoo: error:")]
    assert trained.returncode == 1 and len(errors) == 1 and "Traceback" not in trained.stderr
    assert "set ZOO_HOME to a folder zoo can write" in errors[0]


def test_no_home_at_all_names_zoo_home(monkeypatch, capsys):
    import pwd

    for var in ("HOME", "ZOO_HOME", "ZOO_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)

    def unknown_uid(uid: int):  # a container user with no passwd entry
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", unknown_uid)
    code, out, err = run(capsys, "list", "simplecnn")
    assert code == 2 and out == ""
    assert err == "zoo: error: zoo cannot find a home directory for its files; set ZOO_HOME to a writable folder\n"


# 5, 12, 13. broken registry entries: shown as broken, removable, replaceable --------------------------------


def test_a_broken_entry_is_shown_removed_and_replaced(capsys):
    entry = publish("torn")
    config = json.loads((entry.path / "config.json").read_text())
    config["labels"] = ["only-one"]  # 13: disagrees with num_classes 3
    (entry.path / "config.json").write_text(json.dumps(config))
    code, _, err = run(capsys, "registry", "show", "simplecnn.torn")
    assert code == 1 and "broken entry" in err and "disagrees with itself" in err
    code, _, err = run(capsys, "registry", "remove", "simplecnn.torn", "--yes")
    assert code == 0, err
    assert not entry.path.exists()

    publish("torn")
    (entry.path / "config.json").write_text("{")
    code, _, err = run(capsys, "train", "simplecnn", "--dataset", "digits", "--epochs", "1", "--tag", "torn",
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
    code, out, _ = run(capsys, "registry", "show", "simplecnn.shown")
    assert code == 1 and "PROBLEM" in out and ("truncated" in out or "missing" in out)
    code, out, _ = run(capsys, "registry", "show", "simplecnn.shown", "--json")
    assert code == 1 and json.loads(out)["problems"]


# 7. a failing model makes a failing command -----------------------------------------------------------------

FAILS_TO_RUN = """
from zoo_core import hookimpl
import torch.nn as nn


class Broken(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        raise RuntimeError("this model cannot run")


@hookimpl
def zoo_register_models(register):
    register("brokenrun", Broken, input_size=(3, 8, 8), num_classes=10)
"""


def test_benchmark_exits_non_zero_when_a_model_fails(plugin_path, capsys, monkeypatch):
    plugin_path("zoo-brokenrun", "brokenrun", "zoo_brokenrun_plugin", FAILS_TO_RUN)
    monkeypatch.setenv("ZOO_PLUGINS", "cnn,bench,brokenrun")
    code, out, _ = run(capsys, "benchmark", "brokenrun", "--device", "cpu", "--iters", "2", "--warmup", "0", "--json")
    assert code == 1 and "this model cannot run" in json.loads(out)[0]["error"]


# 8. a cache file of the wrong shape is rebuilt --------------------------------------------------------------


@pytest.mark.parametrize("content", ["[]", '{"schema": 2, "entries": [1, 2]}', '{"schema": 2, "hooks": "x"}', "7"])
def test_a_cache_file_of_the_wrong_shape_is_rebuilt(content, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ZOO_PLUGINS", "cnn,data,train")
    assert run(capsys, "list", "--json")[0] == 0
    for path in (tmp_path / "cache" / "catalogue").glob("*.json"):
        path.write_text(content)
    plugins.reset()
    for args in (["list", "--json"], ["plugins", "--json"], ["datasets", "--json"]):
        plugins.reset()
        code, out, err = run(capsys, *args)
        assert code == 0 and "Traceback" not in err, (args, err)
    plugins.reset()
    assert {m["name"] for m in json.loads(run(capsys, "list", "--json")[1])} == {"simplecnn", "improvedcnn"}


# 9. degenerate class sets are refused ------------------------------------------------------------------------


def test_one_class_or_an_empty_class_is_refused(tmp_path, capsys):
    one = write_image_folder(tmp_path / "one", per_class=4)
    shutil.rmtree(one / "train" / "top")
    shutil.rmtree(one / "test" / "top")
    code, _, err = run(capsys, "train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(one))
    assert code == 2 and "has 1 class (bottom): a classifier needs at least two" in err
    empty = write_image_folder(tmp_path / "empty", per_class=4)
    (empty / "train" / "side").mkdir()
    code, _, err = run(capsys, "train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(empty))
    assert code == 2 and "side" in err and "would never be trained" in err
    runs = zoo_core.paths.runs_dir()
    assert not [p for p in runs.glob("*") if not p.name.startswith(".")]  # no run left to block a tag


# 10. plugin code cannot escape the isolation ------------------------------------------------------------------

RAISING_BUILDER = """
from zoo_core import hookimpl

def build(num_classes=10):
    raise RuntimeError("the builder has a bug")

@hookimpl
def zoo_register_models(register):
    register("buggy", build, input_size=(3, 8, 8), num_classes=10)
"""
EXITING_HOOK = """
import sys
from zoo_core import hookimpl

@hookimpl
def zoo_register_models(register):
    sys.exit("a plugin that quits")
"""


def test_plugin_code_failures_are_that_plugins_one_line_error(plugin_path, capsys):
    plugin_path("zoo-buggy", "buggy", "zoo_buggy_plugin", RAISING_BUILDER)
    plugin_path("zoo-quitter", "quitter", "zoo_quitter_plugin", EXITING_HOOK)
    code, out, err = run(capsys, "list", "simplecnn", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "simplecnn"  # sys.exit in a hook ends nothing
    assert "plugin 'quitter' failed: zoo_register_models: SystemExit: a plugin that quits" in err
    code, out, err = run(capsys, "info", "buggy")  # reads metadata: a count it cannot make is unknown
    assert code == 0 and "Traceback" not in err and out.startswith("buggy:buggy"), err
    code, _, err = run(capsys, "train", "buggy", "--dataset", "digits", "--epochs", "1")
    errors = [line for line in err.splitlines() if line.startswith("zoo: error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    assert "plugin 'buggy' failed building model 'buggy': RuntimeError: the builder has a bug" in errors[0]
    for call in (lambda: zoo_core.create_model("buggy"), lambda: zoo_core.model_info("buggy")):
        with pytest.raises(zoo_core.PluginError, match="plugin 'buggy' failed building model 'buggy'"):
            call()


# 14. cache clear says what it did ------------------------------------------------------------------------------


def test_cache_clear_says_what_happened(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    code, out, _ = run(capsys, "cache", "clear")
    assert code == 0 and out.startswith("nothing to remove")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "catalogue").write_text("a file where a folder should be")
    code, _, err = run(capsys, "cache", "clear")
    assert code == 1 and err.startswith("zoo: error: cannot remove")


# smaller ones ------------------------------------------------------------------------------------------------


def test_a_closed_pipe_is_not_an_error():
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m zoo_core list | head -1"],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("name") and "Error" not in proc.stderr, proc.stderr


def test_two_classes_report_top_2(tmp_path, capsys):
    root = write_image_folder(tmp_path / "two", per_class=6)
    code, out, err = run(capsys, "train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(root),
                         "--epochs", "1", "--tag", "two")  # fmt: skip
    assert code == 0, err
    assert "top-2" in out and "top-5" not in out


# zoo doctor ------------------------------------------------------------------------------------------------------


def test_doctor_finds_and_repairs_a_damaged_registry(capsys):
    root = store.registry_root()
    healthy = publish("healthy")
    truncated = publish("truncated")
    data = truncated.weights_path.read_bytes()
    truncated.weights_path.write_bytes(data[:-100])
    tampered = publish("tampered")
    data = bytearray(tampered.weights_path.read_bytes())
    data[-5] ^= 0xFF
    tampered.weights_path.write_bytes(bytes(data))
    configless = publish("configless")
    (configless.path / "config.json").unlink()
    half = publish("half")  # a replace killed after its second rename: the old entry is still set aside
    shutil.copytree(half.path, half.path.parent / ".half.old")
    staging = root / ".staging" / "cnn-simplecnn-x-killed"
    staging.mkdir(parents=True)
    os.utime(staging, (1, 1))  # long ago
    (healthy.path / "README.md").unlink()
    store.set_default("simplecnn", "healthy")
    (healthy.path.parent / ".default").write_text("gone\n")

    code, out, _ = run(capsys, "doctor", "--json")
    problems = json.loads(out)
    assert code == 1
    found = {Path(p["path"]).name: p["problem"] for p in problems}
    assert "truncated" in found["truncated"] and "sha256" in found["tampered"]
    assert "config.json is missing" in found["configless"] and "killed between its two renames" in found[".half.old"]
    assert "publish was killed" in found["cnn-simplecnn-x-killed"] and "README.md is missing" in found["healthy"]
    assert "'gone' is not published" in found[".default"]

    code, out, _ = run(capsys, "doctor", "--fix")
    assert code == 0, out
    assert "fixed: moved to" in out
    assert sorted(p.name for p in (root / "cnn" / "simplecnn").iterdir() if not p.name.startswith(".")) == [
        "half", "healthy"]
    assert (healthy.path / "README.md").is_file() and not staging.exists()
    assert len(list((root / ".quarantine" / "cnn" / "simplecnn").iterdir())) == 3  # kept, out of the catalogue
    assert zoo_core.create_model("simplecnn.half") is not None
    code, out, _ = run(capsys, "registry", "verify")
    assert code == 0 and out.startswith("the registry is healthy")
