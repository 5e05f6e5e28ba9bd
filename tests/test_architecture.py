"""The house rules: the core imports no plugin or benchmark script, every tag fits the weights schema, commands
come from plugins (a third party's too), any ZOO_PLUGINS subset works, a built wheel carries its suites, and
benchmarks/ ships nothing."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import zoo_core
from zoo_core import plugins, weights
from zoo_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_PACKAGES = {p.name for folder in ("plugins", "registry") for p in (ROOT / folder).glob("zoo_*")}
# benchmarks/ holds scripts and their results, run from a checkout: importable only with it on sys.path
BENCHMARK_MODULES = {p.stem for p in (ROOT / "benchmarks").glob("*.py")}


def zoo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zoo_core", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)  # fmt: skip


def test_the_core_imports_nothing_from_plugins_registry_or_benchmarks():
    assert {"zoo_cnn", "zoo_train", "zoo_registry", "zoo_bench"} <= PLUGIN_PACKAGES
    assert (ROOT / "plugins" / "zoo_bench" / "plugin.py").is_file() and {"provenance", "idle"} <= BENCHMARK_MODULES
    offending = []
    for path in sorted((ROOT / "zoo_core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])  # fmt: skip
            offending += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in PLUGIN_PACKAGES | BENCHMARK_MODULES]  # fmt: skip
    assert not offending, offending


def test_plugins_import_only_the_declared_plugin_api():
    """Built-in plugins (and their tests) import ``zoo_core``'s public names and ``zoo_core.plugin_api``,
    nothing else of zoo_core: what they do, a third-party plugin can do."""
    from zoo_core import plugin_api

    allowed = {"zoo_core": set(zoo_core.__all__), "zoo_core.plugin_api": set(plugin_api.__all__)}
    offending = []
    for path in sorted(p for folder in ("plugins", "registry") for p in (ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                bad = [a.name for a in node.names if a.name.startswith("zoo_core.")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "zoo_core":
                names = allowed.get(node.module or "", set())
                bad = [f"{node.module}.{a.name}" for a in node.names if a.name not in names]
            else:
                continue
            offending += [f"{path.relative_to(ROOT)}:{node.lineno} {name}" for name in bad]
    assert not offending, offending
    assert not [n for n in plugin_api.__all__ if not hasattr(plugin_api, n)]
    guide = (ROOT / "docs" / "plugins.md").read_text()
    assert [n for n in plugin_api.__all__ if f"`{n}`" not in guide] == []


def test_every_tag_in_the_catalogue_fits_the_weights_schema():
    catalogue = plugins.get_catalogue()
    count = 0
    for entry in catalogue.entries["model"].values():
        for tag, meta in entry.pretrained.items():
            info = zoo_core.resolve(entry.ref(tag)).weights
            assert info.ref == f"{entry.qualified}.{tag}" and info.source
            assert weights.validate_tag(entry.qualified, tag, meta, entry.tag_defaults()) == meta  # canonical
            pre = info.preprocessing
            assert len(pre.input_size) == 3 and len(pre.mean) == len(pre.std) == pre.channels
            assert 0 < pre.crop_pct <= 2 and pre.interpolation in weights.INTERPOLATIONS
            assert not info.labels or len(info.labels) == info.num_classes
            count += 1
    assert count > 1000  # torchvision's and timm's tags


BAD_TAG = """
from zoo_core import hookimpl

def build(num_classes=10):
    import torch.nn as nn
    return nn.Linear(2, num_classes)

@hookimpl
def zoo_register_models(register):
    register("goodnet", build)
    register("badtags", build, pretrained={"v1": {"source": "x", "preprocessing": {"mean": "grey"}}})
"""


def test_a_tag_with_a_wrong_type_fails_its_plugin_naming_the_field(plugin_path, capsys):
    plugin_path("zoo-badtags", "badtags", "zoo_badtags_plugin", BAD_TAG)
    assert main(["plugins", "--json"]) == 0
    info = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert info["badtags"]["status"] == "error"
    assert "weights badtags.v1: field 'preprocessing.mean' must be a list of 3 numbers" in info["badtags"]["error"]
    assert "goodnet" not in json.dumps(zoo_list(capsys))  # nothing of a failed plugin is kept


def zoo_list(capsys) -> list[dict]:
    assert main(["list", "*net", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


COMMAND_PLUGIN = '''
import click
from zoo_core import hookimpl


@hookimpl
def zoo_register_commands(cli):
    @cli.command("hello")
    @click.argument("name")
    def hello(name):
        """Say hello from a third-party plugin."""
        click.echo(f"hello {name}")

    @cli.command("fails")
    def fails():
        """Fail the way a user can cause."""
        from zoo_core.errors import UsageError
        raise UsageError("this command needs --something")
'''
BROKEN_COMMANDS = '''
from zoo_core import hookimpl


@hookimpl
def zoo_register_commands(cli):
    raise RuntimeError("cannot build my commands")
'''


def test_a_third_party_distribution_adds_a_command(plugin_path):
    plugin_path("zoo-hello", "hello", "zoo_hello_plugin", COMMAND_PLUGIN)
    plugin_path("zoo-brokencmd", "brokencmd", "zoo_brokencmd_plugin", BROKEN_COMMANDS)
    helped = zoo("--help")
    assert helped.returncode == 0 and "hello" in helped.stdout and "Say hello from a third-party" in helped.stdout
    ran = zoo("hello", "world")
    assert ran.returncode == 0 and ran.stdout == "hello world\n"
    failed = zoo("fails")
    assert failed.returncode == 2 and failed.stderr.strip().endswith("zoo: error: this command needs --something")
    listed = zoo("plugins", "--json")
    info = {p["name"]: p for p in json.loads(listed.stdout)}
    assert info["hello"]["commands"] == ["fails", "hello"] and info["hello"]["status"] == "ok"
    assert info["brokencmd"]["status"] == "error" and "cannot build my commands" in info["brokencmd"]["error"]
    assert zoo("datasets").returncode == 0  # every other command keeps working


RESERVED = '''
from zoo_core import hookimpl


@hookimpl
def zoo_register_commands(cli):
    @cli.command("list")
    def mine():
        pass
'''


def test_a_plugin_cannot_take_a_core_command(plugin_path, capsys):
    plugin_path("zoo-taker", "taker", "zoo_taker_plugin", RESERVED)
    assert main(["plugins", "--json"]) == 0
    info = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert info["taker"]["status"] == "error" and "reserved" in info["taker"]["error"]


def test_help_imports_no_plugin_and_a_warm_list_no_torch():
    assert zoo("list", "--json").returncode == 0  # warm the cache
    probe = ("import sys; from zoo_core.cli import main; main(['--help']);"
             "tops = lambda: {m.split('.')[0] for m in sys.modules};"
             "after_help = sorted(m for m in tops() if m.startswith(('zoo_', 'torch', 'timm')) and m != 'zoo_core');"
             "rc = main(['list', '--json']);"
             "after_list = sorted(m for m in tops() if m in ('torch', 'timm', 'torchvision'));"
             "print(after_help, after_list, file=sys.stderr); sys.exit(rc or (3 if after_help or after_list else 0))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("subset", ["timm", "cnn", "torchvision,timm", "data,train", "registry"])
def test_any_plugin_subset_works(subset):
    listed = zoo("list", "--json", env={"ZOO_PLUGINS": subset})
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    plugins_seen = {m["plugin"] for m in json.loads(listed.stdout)}
    assert plugins_seen <= set(subset.split(","))


def test_a_command_of_a_switched_off_plugin_names_it():
    listed = zoo("list", "resnet5*", env={"ZOO_PLUGINS": "timm"})
    assert listed.returncode == 0 and "resnet50" in listed.stdout
    trained = zoo("train", "simplecnn", "--dataset", "digits", env={"ZOO_PLUGINS": "timm"})
    assert trained.returncode == 2
    assert trained.stderr.splitlines() == [
        "zoo: error: `zoo train` comes from the plugin 'train', which ZOO_PLUGINS switches off; add it: "
        "ZOO_PLUGINS=timm,train"
    ]


@pytest.mark.slow  # builds zoo's wheel
def test_a_built_wheel_carries_the_benchmark_suites(tmp_path):
    import shutil

    source = tmp_path / "source"  # a clean copy: an in-tree build/ could carry files that are gone
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "dist", ".venv", "__pycache__",
                                                                  "*.egg-info", ".pytest_cache", ".ruff_cache"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                          str(tmp_path), str(source)], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("zoo-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"zoo_bench/suites/core.json", "zoo_bench/suites/small.json", "zoo_core/cli.py",
            "zoo_train/training.py", "zoo_registry/store.py"} <= names  # fmt: skip
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "bench = zoo_bench.plugin" in text and "train = zoo_train" in text
    assert not [n for n in names if "zoo_example" in n]  # plugins/example is a distribution of its own


def test_benchmarks_ship_nothing():
    """benchmarks/ is scripts and results: the packages the wheel and sdist take are found without it."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    from setuptools import find_packages

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    find = config["packages"]["find"]
    assert not any(Path(where).parts[:1] == ("benchmarks",) for where in find["where"])
    shipped = {(where, package) for where in find["where"]
               for package in find_packages(str(ROOT / where), include=find.get("include", ["*"]),
                                            exclude=find.get("exclude", ()))}  # fmt: skip
    assert {(".", "zoo_core"), ("plugins", "zoo_bench"), ("registry", "zoo_registry")} <= shipped
    assert not [p for where, p in shipped if (ROOT / where / p.replace(".", "/")).resolve().is_relative_to(
        (ROOT / "benchmarks").resolve())]  # fmt: skip
    assert not [p for p in config.get("package-data", {}) if p.startswith("benchmarks")]
    assert not list((ROOT / "benchmarks").glob("zoo_*")), "a zoo_* package under benchmarks/ belongs in plugins/"
    assert not (ROOT / "benchmarks" / "__init__.py").exists()
    manifest = ROOT / "MANIFEST.in"  # the sdist takes the packages above, plus what a manifest adds
    assert not manifest.exists() or "benchmarks" not in manifest.read_text()


def test_every_guarantee_in_the_readme_names_tests_that_exist():
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## What zoo guarantees") : readme.index("## Files")]
    named = re.findall(r"\[(test_\w+\.py)\]((?:\s*`test_\w+\*?`,?)*)", section)
    assert len(named) >= 6
    for filename, names in named:
        text = (ROOT / "tests" / filename).read_text()
        for name in re.findall(r"`(test_\w+?)(\*?)`", names):
            pattern = rf"def {name[0]}\w*\(" if name[1] else rf"def {name[0]}\("
            assert re.search(pattern, text), f"README names {filename}::{''.join(name)}, which is not there"


def test_no_committed_file_holds_a_path_of_this_machine() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    here = [str(ROOT), str(ROOT.parent / "shared"), os.path.expanduser("~") + os.sep]
    here = [p for p in here if len(p) > 2]  # a checkout at / or a home of / would match everything
    found = []
    for name in filter(None, listed.stdout.decode().split("\0")):
        path = ROOT / name
        try:
            text = path.read_bytes()[:2_000_000].decode("utf-8")
        except (OSError, UnicodeDecodeError):  # binary files (plots) hold no paths worth checking
            continue
        found += [f"{name}: {p}" for p in here if p in text]
    assert not found, "machine paths in committed files (write $ZOO_DATA/... or a relative path):\n" + "\n".join(found)
