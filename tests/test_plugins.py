"""The plugin host with real entry points (throw-away distributions on the path, some of them broken) and with
plugins added in-process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_registry import publish

import zoo_core
from zoo_core import catalogue_cache, entry_points, hookimpl, hookspecs, plugins
from zoo_core.cli import main
from zoo_core.paths import cache_dir

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_plugin_source() -> str:
    """The example plugin as the README documents it."""
    match = re.search(r"```python\n# zoo_tinynet.py\n(.*?)```", README.read_text(), re.S)
    assert match, "README lost its example plugin"
    return match.group(1)


def zoo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "zoo_core.cli", *args], capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip


def test_readme_example_plugin_is_listed_and_builds(plugin_path, capsys):
    plugin_path("zoo-tinynet", "tinynet", "zoo_tinynet", readme_plugin_source())
    assert "tinynet" in zoo_core.list_models("tiny*")
    model = zoo_core.create_model("tinynet", num_classes=4)
    import torch

    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 4)
    assert zoo_core.model_info("tinynet:tinynet")["plugin"] == "tinynet"
    assert main(["plugins", "--json"]) == 0
    info = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert info["tinynet"]["status"] == "ok"
    assert info["tinynet"]["dist"] == "zoo-tinynet"
    assert info["tinynet"]["hooks"] == ["zoo_register_models"]


def test_the_readme_names_every_hook_and_links_the_guide():
    """The README names the hooks; docs/plugins.md (checked by test_plugin_guide) holds their signatures."""
    text = README.read_text()
    specs = [n for n in dir(hookspecs) if n.startswith("zoo_") and hasattr(getattr(hookspecs, n), "zoo_spec")]
    assert specs and all(f"`{n}`" in text for n in specs), [n for n in specs if f"`{n}`" not in text]
    assert "(docs/plugins.md)" in text and "(docs/names.md)" in text


BROKEN_IMPORT = "raise ImportError('this plugin needs a package that is not installed')\n"
RAISES_IN_HOOK = """
from zoo_core import hookimpl

@hookimpl
def zoo_register_models(register):
    raise RuntimeError('boom inside the hook')
"""
BAD_SIGNATURE = """
from zoo_core import hookimpl

@hookimpl
def zoo_register_models(register, extra_argument):
    pass
"""
UNKNOWN_HOOK = """
from zoo_core import hookimpl

@hookimpl
def zoo_register_modles(register):
    pass
"""
INVALID_METADATA = """
from zoo_core import hookimpl

@hookimpl
def zoo_register_models(register):
    register("bad model name!", lambda num_classes=10: None)
"""


@pytest.mark.parametrize(
    ("source", "error"),
    [
        (BROKEN_IMPORT, "ImportError: this plugin needs"),
        (RAISES_IN_HOOK, "RuntimeError: boom inside the hook"),
        (BAD_SIGNATURE, "extra_argument"),
        (UNKNOWN_HOOK, "unknown hook(s) zoo_register_modles"),
        (INVALID_METADATA, "invalid model name"),
    ],
    ids=["import", "hook-raises", "bad-signature", "unknown-hook", "invalid-metadata"],
)
def test_broken_plugin_breaks_nothing(plugin_path, capsys, source, error):
    plugin_path("zoo-broken", "broken", "zoo_broken_plugin", source)
    assert main(["list", "simplecnn", "--json"]) == 0
    captured = capsys.readouterr()
    assert [m["name"] for m in json.loads(captured.out)] == ["simplecnn"]
    warnings = [line for line in captured.err.splitlines() if "broken" in line]
    assert len(warnings) == 1 and warnings[0].startswith("zoo: warning: plugin 'broken' failed")
    assert main(["plugins", "--json"]) == 0
    info = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert info["broken"]["status"] == "error"
    assert error in info["broken"]["error"]
    assert info["cnn"]["status"] == "ok"


def test_strict_plugins_turns_failures_into_errors(plugin_path, monkeypatch, capsys):
    plugin_path("zoo-broken", "broken", "zoo_broken_plugin", BROKEN_IMPORT)
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    assert main(["list"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zoo: error: plugin 'broken' failed")


def test_zoo_plugins_limits_what_loads(monkeypatch, capsys):
    monkeypatch.setenv("ZOO_PLUGINS", "cnn")
    assert main(["list", "--json"]) == 0
    assert {m["plugin"] for m in json.loads(capsys.readouterr().out)} == {"cnn"}
    assert main(["plugins", "--json"]) == 0
    status = {p["name"]: p["status"] for p in json.loads(capsys.readouterr().out)}
    assert status["cnn"] == "ok" and status["timm"] == "disabled" and status["torchvision"] == "disabled"


def build_linear(num_classes: int = 1000):
    import torch.nn as nn

    return nn.Linear(4, num_classes)


@hookimpl
def clashing_models(register):
    register("resnet50", build_linear, family="impostor")
    register("simplecnn", build_linear, family="impostor")


def test_name_clash_overwrites_nothing(in_process_plugin):
    # "aaa" sorts before every built-in plugin
    in_process_plugin(SimpleNamespace(zoo_register_models=clashing_models), "aaa")
    catalogue = plugins.get_catalogue()
    assert catalogue.get("model", "resnet50").plugin == "torchvision"
    assert catalogue.get("model", "simplecnn").plugin == "cnn"
    assert catalogue.get("model", "aaa:resnet50").family == "impostor"
    assert catalogue.get("model", "timm:resnet50").plugin == "timm"
    names = zoo_core.list_models("resnet50")
    assert names == ["resnet50", "timm:resnet50", "aaa:resnet50"]  # precedence order
    assert zoo_core.create_model("aaa:resnet50", num_classes=3).out_features == 3


LAMBDA_BUILDER = """
from zoo_core import hookimpl

@hookimpl
def zoo_register_models(register):
    import torch.nn as nn  # builders without an importable name are rebuilt by running the hook
    register("lambdanet", lambda num_classes=10: nn.Linear(2, num_classes))
"""


def test_cached_catalogue_still_builds_unnamed_builders(plugin_path):
    plugin_path("zoo-lambda", "lambdanet", "zoo_lambda_plugin", LAMBDA_BUILDER)
    plugins.get_catalogue()  # fills the cache
    plugins.reset()
    sys.modules.pop("zoo_lambda_plugin", None)
    host = plugins.get_host()
    assert host.infos["lambdanet"].cached
    assert "zoo_lambda_plugin" not in sys.modules
    assert zoo_core.create_model("lambdanet", num_classes=5).out_features == 5


MARKER_PLUGIN = """
import os
from pathlib import Path
from zoo_core import hookimpl

Path(os.environ["MARKER"]).open("a").write("imported\\n")

def build(num_classes=10):
    import torch.nn as nn
    return nn.Linear(2, num_classes)

@hookimpl
def zoo_register_models(register):
    register("markernet", build)
"""


def test_warm_list_imports_no_plugin_torch_or_timm(plugin_path, tmp_path):
    marker = tmp_path / "marker.txt"
    plugin_path("zoo-marker", "marker", "zoo_marker_plugin", MARKER_PLUGIN)
    env = {"MARKER": str(marker)}
    cold = zoo("list", "--json", env=env)
    assert cold.returncode == 0, cold.stderr
    assert "markernet" in {m["name"] for m in json.loads(cold.stdout)}
    assert marker.read_text().count("imported") == 1
    probe = (
        "import sys; from zoo_core.cli import main; rc = main(['list', '--json']);"
        "bad = [m for m in ('torch', 'timm', 'torchvision', 'zoo_marker_plugin') if m in sys.modules];"
        "print(bad, file=sys.stderr); sys.exit(rc or (3 if bad else 0))"
    )
    import os

    warm = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)  # fmt: skip
    assert warm.returncode == 0, warm.stderr
    assert len(json.loads(warm.stdout)) > 1000  # the timm catalogue, from the cache
    assert marker.read_text().count("imported") == 1


def test_new_plugin_version_invalidates_its_cache(plugin_path, tmp_path):
    source = MARKER_PLUGIN.replace('"markernet"', '"markernet_v1"')
    root = plugin_path("zoo-marker", "marker", "zoo_marker_plugin", source)
    import os

    os.environ["MARKER"] = str(tmp_path / "m.txt")
    try:
        assert "markernet_v1" in zoo_core.list_models("markernet*")
        # upgrade: a new version of the distribution with another model
        import shutil

        shutil.rmtree(root / "zoo_marker-1.0.dist-info")
        from conftest import write_plugin_dist

        shutil.rmtree(root)
        write_plugin_dist(root, "zoo-marker", "marker", "zoo_marker_plugin",
                          MARKER_PLUGIN.replace('"markernet"', '"markernet_v2"'), version="2.0")
        sys.modules.pop("zoo_marker_plugin", None)
        plugins.reset()
        assert zoo_core.list_models("markernet*") == ["markernet_v2"]
    finally:
        del os.environ["MARKER"]


RESOLVER = """
from zoo_core import hookimpl

SEEN = []

@hookimpl
def zoo_resolve_model(name):
    SEEN.append(name)
    if name.startswith("boom:"):
        raise RuntimeError("the resolver broke")
    if name.startswith("alias:"):
        return "cnn:simplecnn"
    return None
"""


def test_names_with_an_unknown_prefix_go_to_the_resolve_hook(plugin_path):
    from zoo_core.errors import PluginError, UnknownNameError

    plugin_path("zoo-alias", "alias-resolver", "zoo_alias_plugin", RESOLVER)
    model = zoo_core.create_model("alias:anything", num_classes=3)
    assert model.zoo_spec["model"] == "cnn:simplecnn" and model.zoo_spec["num_classes"] == 3
    assert zoo_core.model_info("alias:x", stats=False)["qualified"] == "cnn:simplecnn"
    zoo_core.create_model("cnn:simplecnn")  # a plugin's own prefix never reaches the hook
    zoo_core.create_model("simplecnn")
    seen = sys.modules["zoo_alias_plugin"].SEEN
    assert seen == ["alias:anything", "alias:x"]
    with pytest.raises(UnknownNameError, match="unknown model 'nobody:knows'"):
        zoo_core.create_model("nobody:knows")
    with pytest.raises(PluginError) as info:
        zoo_core.create_model("boom:x")
    assert str(info.value) == ("plugin 'alias-resolver' failed resolving model name 'boom:x': RuntimeError: the "
                               "resolver broke")  # fmt: skip


def test_entry_points_are_cached_until_a_folder_on_the_path_changes(tmp_path: Path, monkeypatch) -> None:
    import importlib.metadata as md

    from conftest import write_plugin_dist

    def cached_file() -> Path:
        return cache_dir() / "catalogue" / f"entry-points-{entry_points.path_key()[0]}.json"

    root = tmp_path / "site"
    write_plugin_dist(root, "zoo-first", "first", "zoo_first_plugin", "")
    monkeypatch.syspath_prepend(str(root))
    # Just installed: the folder's mtime may not move for the next install in the same clock tick, so the
    # entry points are read afresh and not kept.
    assert "first" in {ep.name for ep in entry_points.find_entry_points()} and not cached_file().exists()

    old = time.time() - 60
    os.utime(root, (old, old))
    monkeypatch.setattr(entry_points, "RACY_NS", 0)  # other folders on the path may have changed just now too
    assert "first" in {ep.name for ep in entry_points.find_entry_points()} and cached_file().exists()

    def unused(**kwargs: object) -> None:
        raise AssertionError("importlib.metadata was asked again")

    with monkeypatch.context() as m:
        m.setattr(md, "entry_points", unused)
        cached = {ep.name: ep for ep in entry_points.find_entry_points()}  # from the cache file
    assert cached["first"].dist == "zoo-first" and cached["first"].version == "1.0"
    assert cached["cnn"].dist == "zoo" and cached["cnn"].load().__name__ == cached["cnn"].value

    write_plugin_dist(root, "zoo-second", "second", "zoo_second_plugin", "")  # an install into the same folder
    assert {"first", "second"} <= {ep.name for ep in entry_points.find_entry_points()}


# -- a plugin's failures stay its own ----------------------------------------------------------------------


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


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


# -- the metadata cache ------------------------------------------------------------------------------------


SCHEMA = catalogue_cache.CACHE_SCHEMA


@pytest.mark.parametrize("content", ["[]", f'{{"schema": {SCHEMA}, "entries": [1, 2]}}',
                                     f'{{"schema": {SCHEMA}, "hooks": "x"}}', "7"])  # fmt: skip
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
    assert {m["name"] for m in json.loads(run(capsys, "list", "--json")[1])} == {"simplecnn", "improvedcnn",
                                                                                "fastcnn"}  # fmt: skip


# -- plugins added in-process ------------------------------------------------------------------------------


@hookimpl
def goodnet_models(register):
    register("inprocnet", build_linear)


@hookimpl
def half_registered_models(register):
    register("halfnet", build_linear)
    raise RuntimeError("boom inside the hook")


def test_an_in_process_plugin_loads_like_a_third_party_one_and_is_never_cached(in_process_plugin, capsys):
    in_process_plugin(SimpleNamespace(zoo_register_models=goodnet_models), "inproc")
    in_process_plugin(SimpleNamespace(zoo_register_models=half_registered_models), "halfway")
    code, out, err = run(capsys, "list", "*net", "--json")
    assert code == 0 and "inprocnet" in {m["name"] for m in json.loads(out)}
    assert "halfnet" not in out  # nothing of a failed plugin is kept
    warnings = [line for line in err.splitlines() if "halfway" in line]
    assert warnings == ["zoo: warning: plugin 'halfway' failed: zoo_register_models: RuntimeError: boom inside the "
                        "hook (skipped; see `zoo plugins`)"]  # fmt: skip
    code, out, _ = run(capsys, "plugins", "--json")
    rows = {p["name"]: p for p in json.loads(out)}
    assert rows["inproc"]["status"] == "ok" and not rows["inproc"]["builtin"] and rows["inproc"]["dist"] is None
    assert rows["halfway"]["status"] == "error"
    assert plugins.get_catalogue().plugin_order[-1] == "inproc"  # after every built-in
    assert not list((cache_dir() / "catalogue").glob("inproc-*"))
    with pytest.raises(ValueError, match="cannot add a plugin named 'inproc'"):
        plugins.add_plugin(SimpleNamespace(), "inproc")


# -- stdout belongs to zoo -----------------------------------------------------------------------------------

NOISY = """
print("noisy: imported")
from zoo_core import hookimpl

def build(num_classes=10):
    import torch.nn as nn
    return nn.Linear(2, num_classes)

@hookimpl
def zoo_register_models(register):
    print("noisy: registering models")
    register("noisynet", build)

@hookimpl
def zoo_register_commands(cli):
    print("noisy: registering commands")

@hookimpl
def zoo_register_weights(register):
    print("noisy: registering weights")
"""


def test_what_a_plugin_prints_goes_to_stderr(plugin_path, capsys):
    plugin_path("zoo-noisy", "noisy", "zoo_noisy_plugin", NOISY)
    cold = zoo("list", "--json")  # a process of its own, this plugin not cached: imported, every hook runs
    assert cold.returncode == 0, cold.stderr
    assert "noisynet" in {m["name"] for m in json.loads(cold.stdout)}
    for said in ("imported", "registering models", "registering commands", "registering weights"):
        assert f"noisy: {said}" in cold.stderr
    for args in (["info", "simplecnn", "--json"], ["plugins", "--json"]):
        plugins.reset()
        code, out, err = run(capsys, *args)
        assert code == 0 and json.loads(out), (args, out)
        assert "noisy: registering weights" in err  # the weights hook runs on every command


SLOW = """
import time
from zoo_core import hookimpl

def build(num_classes=10):
    import torch.nn as nn
    return nn.Linear(2, num_classes)

@hookimpl
def zoo_register_models(register):
    time.sleep(2.5)
    register("sleepynet", build)
"""


def test_a_slow_plugin_is_named_and_zoo_plugins_shows_each_load_time(plugin_path, capsys):
    plugin_path("zoo-sleepy", "sleepy", "zoo_sleepy_plugin", SLOW)
    code, out, err = run(capsys, "list", "sleepynet", "--json")
    assert code == 0 and [m["name"] for m in json.loads(out)] == ["sleepynet"]
    slow = [line for line in err.splitlines() if " to load" in line]
    assert len(slow) == 1, err
    took = re.fullmatch(r"zoo: warning: plugin 'sleepy' took (\d+\.\d) s to load", slow[0])
    assert took and float(took.group(1)) >= 2.5
    code, out, err = run(capsys, "plugins", "--json")  # the same process: the time it took is kept
    rows = {p["name"]: p for p in json.loads(out)}
    assert rows["sleepy"]["load_seconds"] >= 2.5 and not rows["sleepy"]["cached"] and " to load" not in err
    plugins.reset()
    code, out, _ = run(capsys, "plugins")  # a new host: the plugin comes from the cache, nothing of it runs
    assert code == 0 and next(line for line in out.splitlines() if line.startswith("sleepy ")).split()[4] == "cached"
