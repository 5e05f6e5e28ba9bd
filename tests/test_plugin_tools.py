"""The tools of a plugin's life: `zoo install` / `zoo uninstall` (the real pip, into a fresh environment),
`zoo plugin new`, `zoo plugins --check` and ZOO_TRACE_PLUGINS; none of them can be blocked by a broken plugin.
The example plugin (plugins/example) goes the whole way: installed, listed, trained, evaluated,
benchmarked, its command and its own tests run, uninstalled."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_plugins import BROKEN_IMPORT, RAISES_IN_HOOK

from zoo_core import plugins
from zoo_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "plugins" / "example"



def linear_models(*names: str) -> str:
    """A plugin source registering a small linear model under each of ``names``."""
    registers = "".join(f"    register({n!r}, build)\n" for n in names)
    return f"""
from zoo_core import hookimpl

def build(num_classes=10):
    import torch.nn as nn
    return nn.Linear(4, num_classes)

@hookimpl
def zoo_register_models(register):
{registers}"""


GOOD = linear_models("needynet")


def lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


# -- zoo plugins --check, in this process --------------------------------------------------------------------


def test_check_reports_broken_entry_points_failing_hooks_unmet_requirements_and_shared_names(plugin_path, capsys):
    plugin_path("zoo-broken", "broken", "zoo_broken_plugin", BROKEN_IMPORT)
    plugin_path("zoo-raiser", "raiser", "zoo_raiser_plugin", RAISES_IN_HOOK)
    plugin_path("zoo-twin-a", "twina", "zoo_twina_plugin", linear_models("twin", "simplecnn"))
    plugin_path("zoo-twin-b", "twinb", "zoo_twinb_plugin", linear_models("twin", "twinb_own"))
    plugin_path("zoo-needy", "needy", "zoo_needy_plugin", GOOD, version="2.0",
                requires=["numpy>=999", "zoo-nowhere-to-be-found>=1", "pytest; extra == 'test'"])  # fmt: skip
    assert main(["plugins", "--check"]) == 1
    out = lines(capsys.readouterr().out)
    total, ok = map(int, re.fullmatch(r"checked (\d+) plugins: (\d+) ok, 2 error", out[0]).groups())
    assert total == ok + 2 == len(plugins.get_host().plugin_list)
    assert ("problem entry point plugin 'broken' (zoo-broken 1.0): cannot import zoo_broken_plugin: ImportError: "
            "this plugin needs a package that is not installed") in out  # fmt: skip
    assert ("problem hook plugin 'raiser' (zoo-raiser 1.0): zoo_register_models failed: RuntimeError: boom inside "
            "the hook") in out  # fmt: skip
    import numpy

    needy = "problem requirement zoo-needy 2.0 (plugin 'needy') needs"
    assert f"{needy} numpy>=999 (installed: {numpy.__version__})" in out
    assert f"{needy} zoo-nowhere-to-be-found>=1 (not installed)" in out
    clash = "note name clash model"
    assert f"{clash} 'twin' is registered by twina, twinb; a bare 'twin' means twina:twin" in out
    assert f"{clash} 'simplecnn' is registered by cnn, twina; a bare 'simplecnn' means cnn:simplecnn" in out
    assert out[-1] == "4 problems"

    assert main(["plugins", "--check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert {(f["kind"], f["plugin"]) for f in report["findings"] if f["problem"]} == {
        ("entry point", "broken"), ("hook", "raiser"), ("requirement", "needy")}  # fmt: skip
    assert {"kind": "model", "name": "twin", "plugins": ["twina", "twinb"], "bare": "twina:twin"} in report["clashes"]


def test_check_passes_when_nothing_is_wrong_even_under_strict_plugins(monkeypatch, capsys):
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    assert main(["plugins", "--check"]) == 0
    out = lines(capsys.readouterr().out)
    assert out[0].startswith("checked ") and out[0].endswith(" ok") and out[-1] == "no problems"
    assert not [line for line in out if line.startswith("problem")]


def test_check_under_strict_plugins_reports_every_failure(plugin_path, monkeypatch, capsys):
    plugin_path("zoo-broken", "broken", "zoo_broken_plugin", BROKEN_IMPORT)
    plugin_path("zoo-raiser", "raiser", "zoo_raiser_plugin", RAISES_IN_HOOK)
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    assert main(["plugins", "--check", "--json"]) == 1
    assert {f["plugin"] for f in json.loads(capsys.readouterr().out)["findings"] if f["problem"]} == {"broken",
                                                                                                    "raiser"}


def test_trace_prints_each_import_and_hook_call_with_its_time_and_what_it_registered(plugin_path, monkeypatch,
                                                                                     capsys):  # fmt: skip
    plugin_path("zoo-needy", "needy", "zoo_needy_plugin", GOOD)
    plugin_path("zoo-raiser", "raiser", "zoo_raiser_plugin", RAISES_IN_HOOK)
    monkeypatch.setenv("ZOO_TRACE_PLUGINS", "1")
    assert main(["list", "needynet"]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^zoo: trace: needy +import +[\d.]+ ms  zoo_needy_plugin$", err, re.M), err
    assert re.search(r"^zoo: trace: needy +zoo_register_models +[\d.]+ ms  1 model: needynet$", err, re.M), err
    assert re.search(r"^zoo: trace: raiser +zoo_register_models +[\d.]+ ms  raised RuntimeError: boom", err, re.M)
    plugins.reset()
    assert main(["list", "needynet"]) == 0  # now from the cache: no hook runs
    err = capsys.readouterr().err
    assert re.search(r"^zoo: trace: needy +cached \(no hook called\) +zoo_register_models$", err, re.M), err
    monkeypatch.delenv("ZOO_TRACE_PLUGINS")
    plugins.reset()
    assert main(["list", "needynet"]) == 0
    assert "zoo: trace" not in capsys.readouterr().err


# -- zoo plugin new, zoo install / uninstall: what fails before pip runs --------------------------------------


def test_plugin_new_writes_a_project(tmp_path, capsys):
    assert main(["plugin", "new", "zoo-my-net", "--dir", str(tmp_path)]) == 0
    project = tmp_path / "zoo-my-net"
    assert capsys.readouterr().out.splitlines()[-1] == f"next: zoo install -e {project} && zoo list my_net"
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "tests/test_my_net.py", "zoo_my_net/__init__.py"]  # fmt: skip
    assert 'my_net = "zoo_my_net"' in (project / "pyproject.toml").read_text()
    for path in project.rglob("*.py"):
        compile(path.read_text(), str(path), "exec")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind


@pytest.mark.parametrize(("args", "error"), [
    (["Bad Name!"], "invalid plugin name 'Bad Name!'"),
    (["class"], "invalid plugin name 'class'"),
    (["cnn"], "the plugin name 'cnn' is taken by the installed distribution zoo"),
    (["fine", "--dir", "{tmp}/missing"], "is not a folder"),
    (["taken"], "zoo-taken already exists"),
])  # fmt: skip
def test_plugin_new_refuses_bad_names_taken_names_and_existing_folders(tmp_path, monkeypatch, capsys, args, error):
    (tmp_path / "zoo-taken").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["plugin", "new", *(a.format(tmp=tmp_path) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: ") and error in err and len(err.splitlines()) == 1


@pytest.mark.parametrize(("args", "error"), [
    (["install"], "give what to install: a name, a path, a URL or -e PATH"),
    (["install", "./no-such-project"], "./no-such-project: no such file or folder"),
    (["install", "../no-such-project"], "../no-such-project: no such file or folder"),
    (["install", "sub/no-such-project"], "sub/no-such-project: no such file or folder"),
    (["install", "no-such-plugin-1.0-py3-none-any.whl"], "no-such-plugin-1.0-py3-none-any.whl: no such file or folder"),
    (["install", "./not-a-project"], "./not-a-project: not a Python project (it has no pyproject.toml or setup.py)"),
    (["install", "-e", "no-such-folder"], "-e no-such-folder: no such folder"),
    (["install", "-e", "."], ".: not a Python project (it has no pyproject.toml or setup.py)"),
    (["uninstall", "zoo"], "zoo uninstall removes plugins, not zoo itself"),
    (["uninstall", "no-such-plugin"], "'no-such-plugin' is neither an installed distribution nor a plugin"),
    (["uninstall", "-y", "click"], "click is not a zoo plugin (it declares no zoo.plugins entry point)"),
])  # fmt: skip
def test_install_and_uninstall_refuse_what_pip_should_not_see(tmp_path, monkeypatch, capsys, args, error):
    (tmp_path / "not-a-project").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"zoo: error: {error}") and len(err.splitlines()) == 1


def test_install_hands_pip_paths_as_absolute_paths_and_names_as_names(tmp_path, monkeypatch, capsys):
    from zoo_core import installer

    for project in ("work/zoo-a", "sibling"):
        (tmp_path / project).mkdir(parents=True)
        (tmp_path / project / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.0"\n')
    (tmp_path / "work" / "dist").mkdir()
    (tmp_path / "work" / "dist" / "zoo_a-1.0-py3-none-any.whl").write_bytes(b"")
    (tmp_path / "work" / "zoo_b-1.0.tar.gz").write_bytes(b"")
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HOME", str(tmp_path))
    here = Path.cwd()
    handed: list[list[str]] = []
    monkeypatch.setattr(installer, "pip", lambda args: handed.append(list(args)))  # what pip would be given
    specs = ["./zoo-a", "../sibling", "~/sibling", "dist/zoo_a-1.0-py3-none-any.whl", "zoo_b-1.0.tar.gz", "zoo-c",
             "zoo-d==1.0", "zoo-e[extra]>=2", "https://example.org/zoo_f-1.0.tar.gz"]  # fmt: skip
    assert main(["install", *specs, "-e", "zoo-a", "-e", "../sibling"]) == 0
    assert handed == [["install", str(here / "zoo-a"), str(here.parent / "sibling"), str(tmp_path / "sibling"),
                       str(here / "dist" / "zoo_a-1.0-py3-none-any.whl"), str(here / "zoo_b-1.0.tar.gz"), "zoo-c",
                       "zoo-d==1.0", "zoo-e[extra]>=2", "https://example.org/zoo_f-1.0.tar.gz",
                       "-e", str(here / "zoo-a"), "-e", str(here.parent / "sibling")]]  # fmt: skip
    assert capsys.readouterr().out == "zoo: nothing was installed\n"


# -- the real pip path, in a fresh environment ---------------------------------------------------------------


def quiet(out: subprocess.CompletedProcess[str]) -> bool:
    """Ran without loading a plugin: no warning about the broken one, no trace of any hook."""
    return "zoo: warning" not in out.stderr and "zoo: trace" not in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow  # pip builds the example's wheel
def test_the_example_plugin_installs_trains_benchmarks_runs_its_command_and_uninstalls(plugin_venv, tmp_path):
    source = shutil.copytree(EXAMPLE, tmp_path / "example")  # building writes into the project folder
    venv = plugin_venv
    installed = venv.zoo("install", str(source))
    assert installed.returncode == 0, installed.stderr
    assert "zoo: installed zoo-example 0.1.0: plugin 'example'" in installed.stdout

    listed = venv.zoo("list", "pocketnet", "--json")
    assert listed.returncode == 0, listed.stderr
    (model,) = json.loads(listed.stdout)
    assert (model["qualified"], model["pretrained"], model["input_size"]) == ("example:pocketnet", ["stripes"],
                                                                             [3, 16, 16])  # fmt: skip

    trained = venv.zoo("train", "pocketnet", "--dataset", "digits", "--epochs", "1", "--tag", "digits1", "--json")
    assert trained.returncode == 0, trained.stderr
    assert json.loads(trained.stdout)["published"] == "example:pocketnet.digits1"

    benched = venv.zoo("benchmark", "pocketnet", "--device", "cpu", "--iters", "2", "--warmup", "0", "--weights",
                       "stripes", "--dataset", "stripes", "--json")  # fmt: skip
    assert benched.returncode == 0, benched.stderr
    (record,) = json.loads(benched.stdout)
    assert (record["qualified"], record["tag"], record["error"]) == ("example:pocketnet", "stripes", None)
    assert record["infer"]["samples_per_sec"] > 0 and record["param_count"] == 5268
    info = json.loads(venv.zoo("info", "pocketnet", "--json", "--no-stats").stdout)
    assert record["accuracy"]["top1"] == info["pretrained"]["stripes"]["metrics"]["top1"]  # the weights as published

    demo = venv.zoo("stripes-demo", "--count", "2")
    assert demo.returncode == 0 and demo.stdout.splitlines()[-1].startswith("truth above, pocketnet.stripes below")

    tests = venv.run([str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(source / "tests")],
                     cwd=tmp_path)  # fmt: skip
    assert tests.returncode == 0 and re.search(r"\b6 passed\b", tests.stdout), tests.stdout[-3000:]

    cached = Path(os.environ["ZOO_CACHE"]) / "catalogue"
    assert list(cached.glob("example-*.json"))
    removed = venv.zoo("uninstall", "example", "-y")  # a plugin's name finds its distribution
    assert removed.returncode == 0 and quiet(removed), removed.stderr
    assert "zoo: removed zoo-example 0.1.0: plugin 'example'" in removed.stdout
    assert not list(cached.glob("example-*.json"))  # its catalogue cache went with it
    gone = venv.zoo("list", "pocketnet")
    assert gone.returncode == 2 and "unknown model 'pocketnet'" in gone.stderr


def write_project(folder: Path, dist: str, plugin: str, module: str, source: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(f"""[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "1.0"

[project.entry-points."zoo.plugins"]
{plugin} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
""")
    (folder / f"{module}.py").write_text(source)
    return folder


@pytest.mark.slow  # pip builds a wheel of the broken project
def test_a_broken_plugin_blocks_neither_install_scaffold_check_nor_uninstall(plugin_venv, tmp_path):
    venv, trace = plugin_venv, {"ZOO_TRACE_PLUGINS": "1"}
    broken = write_project(tmp_path / "broken", "zoo-broken", "broken", "zoo_broken_plugin", BROKEN_IMPORT)
    out = venv.zoo("install", str(broken), **trace)
    assert out.returncode == 0 and quiet(out), out.stderr
    assert "zoo: installed zoo-broken 1.0: plugin 'broken'" in out.stdout
    listed = venv.zoo("list", "simplecnn")
    assert listed.returncode == 0 and "plugin 'broken' failed: import: ImportError" in listed.stderr

    out = venv.zoo("plugin", "new", "mynet2", "--dir", str(tmp_path), **trace)
    assert out.returncode == 0 and quiet(out), out.stderr
    out = venv.zoo("install", "-e", str(tmp_path / "zoo-mynet2"), **trace)
    assert out.returncode == 0 and quiet(out), out.stderr
    listed = venv.zoo("list", "mynet2*", "--json")  # the new plugin shows at once
    assert [m["qualified"] for m in json.loads(listed.stdout)] == ["mynet2:mynet2"]
    module = tmp_path / "zoo-mynet2" / "zoo_mynet2" / "__init__.py"
    module.write_text(module.read_text().replace('input_size=(3, 32, 32), num_classes=10)', 'input_size=(3, 32, 32), '
                      'num_classes=10)\n    register("mynet2_wide", build_mynet2, num_classes=10)'))  # fmt: skip
    listed = venv.zoo("list", "mynet2*", "--json")  # an edit of an editable plugin shows at once
    assert [m["qualified"] for m in json.loads(listed.stdout)] == ["mynet2:mynet2", "mynet2:mynet2_wide"]
    tests = venv.run([str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                      str(tmp_path / "zoo-mynet2" / "tests")], cwd=tmp_path)  # fmt: skip
    assert tests.returncode == 0 and re.search(r"\b3 passed\b", tests.stdout), tests.stdout[-3000:]

    checked = venv.zoo("plugins", "--check")
    assert checked.returncode == 1
    assert "problem entry point plugin 'broken' (zoo-broken 1.0): cannot import zoo_broken_plugin: ImportError" in (
        " ".join(checked.stdout.split()))

    out = venv.zoo("uninstall", "--yes", "zoo-broken", "zoo-mynet2", **trace)
    assert out.returncode == 0 and quiet(out), out.stderr
    assert out.stdout.splitlines()[-2:] == ["zoo: removed zoo-broken 1.0: plugin 'broken'",
                                            "zoo: removed zoo-mynet2 0.1.0: plugin 'mynet2'"]  # fmt: skip
    checked = venv.zoo("plugins", "--check")
    assert checked.returncode == 0 and checked.stdout.splitlines()[-1] == "no problems", checked.stdout
    assert venv.zoo("list", "mynet2").returncode == 2


@pytest.mark.slow  # pip builds the scaffold's wheel, three times
def test_a_scaffolded_plugin_installs_by_relative_path_and_as_a_wheel_by_its_file_name(plugin_venv, tmp_path):
    venv, parent = plugin_venv, tmp_path / "parent"
    parent.mkdir()
    out = venv.run("zoo plugin new myplug && zoo install ./zoo-myplug", cwd=parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "zoo: installed zoo-myplug 0.1.0: plugin 'myplug'" in out.stdout.splitlines()
    listed = venv.zoo("list", "myplug", "--json")
    assert [m["qualified"] for m in json.loads(listed.stdout)] == ["myplug:myplug"], listed.stderr
    assert venv.zoo("uninstall", "myplug", "--yes").returncode == 0

    (parent / "elsewhere").mkdir()
    out = venv.run("zoo install ../zoo-myplug", cwd=parent / "elsewhere")
    assert out.returncode == 0 and "zoo: installed zoo-myplug 0.1.0: plugin 'myplug'" in out.stdout, out.stderr
    assert venv.zoo("uninstall", "zoo-myplug", "-y").returncode == 0

    built = venv.run([str(venv.python), "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", "dist",
                      "./zoo-myplug"], cwd=parent)  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (parent / "dist").glob("zoo_myplug-0.1.0-*.whl")
    out = venv.run(f"zoo install {wheel.name}", cwd=parent / "dist")  # a bare file name, no separator
    assert out.returncode == 0 and "zoo: installed zoo-myplug 0.1.0: plugin 'myplug'" in out.stdout, out.stderr
    assert venv.zoo("list", "myplug").returncode == 0

    missing = venv.run("zoo install ./zoo-nothing-here", cwd=parent)
    assert missing.returncode == 2 and missing.stderr == "zoo: error: ./zoo-nothing-here: no such file or folder\n"
    removed = venv.zoo("uninstall", "myplug", "--yes")
    assert removed.returncode == 0 and "zoo: removed zoo-myplug 0.1.0: plugin 'myplug'" in removed.stdout
    assert venv.zoo("list", "myplug").returncode == 2


def readme_plugin_lines() -> list[str]:
    """The README's own lines that create a plugin, install it and remove it, without their comments."""
    text = (ROOT / "README.md").read_text()
    lines = [line.split("  #")[0].strip() for line in text.splitlines()]
    new = next(i for i, line in enumerate(lines) if line.startswith("zoo plugin new "))
    install = next(i for i in range(new + 1, len(lines)) if lines[i].startswith("zoo install "))
    uninstall = next(i for i in range(install + 1, len(lines)) if lines[i].startswith("zoo uninstall "))
    return [lines[new], lines[install], lines[uninstall]]


@pytest.mark.slow  # pip builds the scaffold (an editable wheel, as the README says)
def test_the_readmes_plugin_lines_work_as_written(plugin_venv, tmp_path):
    new, install, uninstall = readme_plugin_lines()
    name = new.split()[3]
    for line in (new, install):
        out = plugin_venv.run(line, cwd=tmp_path)
        assert out.returncode == 0 and "Traceback" not in out.stderr, f"{line}\n{out.stdout}\n{out.stderr}"
    assert f"zoo: installed zoo-{name} 0.1.0: plugin '{name}'" in out.stdout.splitlines()
    listed = plugin_venv.zoo("list", name, "--json")
    assert [m["qualified"] for m in json.loads(listed.stdout)] == [f"{name}:{name}"], listed.stderr
    out = plugin_venv.run(uninstall, cwd=tmp_path)
    assert out.returncode == 0 and f"zoo: removed zoo-{name} 0.1.0: plugin '{name}'" in out.stdout, out.stderr
