"""``zoo plugin new NAME``: write a plugin project that installs with ``zoo install -e`` and works at once.

The project is ``zoo-NAME/``: a pyproject with the ``zoo.plugins`` entry point, the package ``zoo_NAME``
whose hook registers a small CNN called NAME, a README and a pytest test. Nothing is imported or loaded;
the folder appears whole (written aside, then renamed) or not at all.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import tempfile
from pathlib import Path

from zoo_core.entry_points import find_entry_points
from zoo_core.errors import UsageError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A zoo plugin: the model {name}"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["zoo>={zoo_version}"]

[project.optional-dependencies]
test = ["pytest"]

# zoo finds the plugin through this entry point: the plugin's name = the module with its hooks.
[project.entry-points."zoo.plugins"]
{name} = "{package}"

[tool.setuptools]
packages = ["{package}"]
"""

MODULE = '''\
"""The zoo plugin {name}. Its hooks run when zoo builds its catalogue; what they register is cached until
this package changes, so keep imports of torch inside the functions that build things."""

from __future__ import annotations

from typing import Any

from zoo_core import hookimpl


def build_{name}(num_classes: int = 10, in_chans: int = 3) -> Any:
    """The model: a small CNN to replace with your own (any torch.nn.Module taking num_classes)."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(in_chans, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes),
    )


@hookimpl
def zoo_register_models(register: Any) -> None:
    register("{name}", build_{name}, family="{name}", description="A small CNN made by zoo plugin new",
             input_size=(3, 32, 32), num_classes=10)


# More hooks, each documented in zoo's docs/plugins.md: zoo_register_datasets, zoo_register_trainers,
# zoo_register_weights and zoo_register_commands.
'''

TEST = '''\
"""Tests of the plugin {name}: run ``python -m pytest`` after ``zoo install -e .``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import zoo_core
from zoo_core import plugins


@pytest.fixture(autouse=True)
def zoo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo"))  # runs and published weights stay in the test
    plugins.reset()
    yield
    plugins.reset()


def test_the_plugin_loads_without_errors():
    info = plugins.get_host().infos["{name}"]
    assert (info.status, info.errors) == ("ok", [])


def test_the_model_builds_and_runs():
    import torch

    model = zoo_core.create_model("{name}:{name}", num_classes=5)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 5)


def test_zoo_list_shows_the_model():
    out = subprocess.run([sys.executable, "-m", "zoo_core", "list", "{name}:*", "--json"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "{name}:{name}" in [m["qualified"] for m in json.loads(out.stdout)]
'''

README = """\
# {dist}

A plugin for zoo, the PyTorch model zoo: it adds the model `{name}`.

```bash
zoo install -e .          # from this folder: an editable install, edits show at once
zoo list {name}
zoo train {name} --dataset digits --epochs 1
python -m pytest          # the plugin's tests
```

The hooks are in `{package}/__init__.py`; zoo's `docs/plugins.md` documents every hook.
"""


def plugin_name(name: str) -> str:
    """The plugin name for NAME: ``zoo-my-net`` and ``my_net`` both give ``my_net``."""
    plain = name.strip().lower().replace("-", "_")
    if plain.startswith("zoo_") and len(plain) > 4:  # the folder or distribution name was given
        plain = plain[4:]
    if not NAME_RE.match(plain) or keyword.iskeyword(plain):
        raise UsageError(f"invalid plugin name {name!r}: use a lowercase letter, then letters, digits or '_'")
    return plain


def new_plugin(name: str, parent: str | os.PathLike[str] = ".") -> Path:
    """Write the project ``zoo-NAME`` in ``parent``; its folder."""
    from zoo_core.version import __version__

    plugin = plugin_name(name)
    taken = {ep.name: ep.dist or "?" for ep in find_entry_points(use_cache=False)}
    if plugin in taken:
        raise UsageError(f"the plugin name '{plugin}' is taken by the installed distribution {taken[plugin]}; "
                         "choose another")  # fmt: skip
    dist, package = f"zoo-{plugin.replace('_', '-')}", f"zoo_{plugin}"
    where = Path(parent).expanduser()
    if not where.is_dir():
        raise UsageError(f"{where} is not a folder")
    target = where / dist
    if target.exists():
        raise UsageError(f"{target} already exists; choose another name or --dir")
    values = {"name": plugin, "dist": dist, "package": package, "zoo_version": __version__}
    files = {
        "pyproject.toml": PYPROJECT, "README.md": README, f"{package}/__init__.py": MODULE,
        f"tests/test_{plugin}.py": TEST,
    }  # fmt: skip
    try:
        staging = Path(tempfile.mkdtemp(dir=where, prefix=f".{dist}-"))
    except OSError as e:
        raise UsageError(f"cannot write in {where}: {e.strerror or e}") from None
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a project folder is not
        for rel, template in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(template.format(**values), encoding="utf-8")
        os.rename(staging, target)
    except OSError as e:
        raise UsageError(f"cannot create {target}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
