"""Every test gets its own ZOO_HOME; the rebuildable caches (catalogue, decoded datasets) are shared
by the session so that the timm catalogue is built once, not once per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zoo_core import plugins


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(os.environ.get("ZOO_TEST_CACHE") or tmp_path_factory.mktemp("zoo_cache"))


@pytest.fixture(autouse=True)
def zoo_home(tmp_path: Path, zoo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "zoo_home"
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.setenv("ZOO_CACHE", str(zoo_cache))
    for var in ("ZOO_PLUGINS", "ZOO_STRICT_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    plugins.reset()
    yield home
    plugins.reset()


@pytest.fixture(scope="session")
def cifar10_dir() -> Path:
    """The CIFAR-10 JPEG copy (ZOO_DATA/cifar10); tests that need it skip where it is absent."""
    root = Path(os.environ.get("ZOO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    path = root / "cifar10"
    if not (path / "train").is_dir():
        pytest.skip(f"CIFAR-10 copy not found at {path} (set ZOO_DATA)")
    return path


def write_plugin_dist(root: Path, dist: str, plugin: str, module: str, source: str, version: str = "1.0") -> Path:
    """Write a throw-away installed distribution (module + dist-info with a ``zoo.plugins`` entry point)
    under ``root``: put ``root`` on sys.path / PYTHONPATH and importlib.metadata finds it like any
    pip-installed plugin."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[zoo.plugins]\n{plugin} = {module}\n")
    (info / "RECORD").write_text("")
    return root


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install throw-away plugin distributions for this test: ``plugin_path(dist, plugin, module, src)``."""
    import sys

    root = tmp_path / "site"
    added: list[str] = []

    def install(dist: str, plugin: str, module: str, source: str, version: str = "1.0") -> Path:
        write_plugin_dist(root, dist, plugin, module, source, version)
        if str(root) not in sys.path:
            monkeypatch.syspath_prepend(str(root))
            monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
        added.append(module)
        plugins.reset()
        return root

    yield install
    for module in added:
        sys.modules.pop(module, None)
