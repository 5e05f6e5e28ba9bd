"""Every test gets its own ZOO_HOME; the rebuildable caches (catalogue, decoded datasets) are shared
by the session so that the timm catalogue is built once, not once per test."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
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


def write_plugin_dist(root: Path, dist: str, plugin: str, module: str, source: str, version: str = "1.0",
                      requires: Sequence[str] = ()) -> Path:  # fmt: skip
    """Write a throw-away installed distribution (module + dist-info with a ``zoo.plugins`` entry point)
    under ``root``: put ``root`` on sys.path / PYTHONPATH and importlib.metadata finds it like any
    pip-installed plugin."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    requirements = "".join(f"Requires-Dist: {r}\n" for r in requires)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n{requirements}")
    (info / "entry_points.txt").write_text(f"[zoo.plugins]\n{plugin} = {module}\n")
    (info / "RECORD").write_text("")
    return root


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install throw-away plugin distributions for this test: ``plugin_path(dist, plugin, module, src)``."""
    import sys

    root = tmp_path / "site"
    added: list[str] = []

    def install(dist: str, plugin: str, module: str, source: str, version: str = "1.0",
                requires: Sequence[str] = ()) -> Path:  # fmt: skip
        write_plugin_dist(root, dist, plugin, module, source, version, requires)
        if str(root) not in sys.path:
            monkeypatch.syspath_prepend(str(root))
            monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
        added.append(module)
        plugins.reset()
        return root

    yield install
    for module in added:
        sys.modules.pop(module, None)


@pytest.fixture
def in_process_plugin():
    """Add plugin objects for this test without a distribution: ``in_process_plugin(obj, name)`` (a module or a
    namespace of ``@hookimpl`` functions), loaded as a third-party plugin; ``plugin_path`` installs a real one."""
    added: list[str] = []

    def add(plugin: object, name: str) -> None:
        plugins.add_plugin(plugin, name)
        added.append(name)

    yield add
    for name in added:
        plugins.remove_plugin(name)


class PluginVenv:
    """A fresh virtual environment for the real pip path: it sees the packages of the one running the tests
    (zoo among them) and installs plugins into its own site-packages; pip may not use the network."""

    def __init__(self, root: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root)],
                       check=True, capture_output=True, timeout=300)  # fmt: skip
        self.root, self.bin = root, root / "bin"
        self.python = self.bin / "python"
        purelib = subprocess.run([str(self.python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
        if sys.prefix != sys.base_prefix:  # the tests run in a venv: the new one sees it (and its editable zoo)
            parent = sysconfig.get_paths()["purelib"]
            (Path(purelib) / "_zoo_tests_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
        # the console script pip would write for zoo, so that commands read `zoo ...` as a user types them
        launcher = self.bin / "zoo"
        launcher.write_text(f"#!{self.python}\nimport sys\n\nfrom zoo_core.cli import main\n\nsys.exit(main())\n")
        launcher.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        return {**env, "PATH": f"{self.bin}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(self.root),
                "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}  # fmt: skip

    def run(self, args: Sequence[str] | str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        """A command (a shell line when ``args`` is a string) with this environment's python and zoo first."""
        return subprocess.run(args, shell=isinstance(args, str), cwd=cwd, env=self.env(**env), capture_output=True,
                              text=True, timeout=600)  # fmt: skip

    def zoo(self, *args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run([str(self.python), "-m", "zoo_core", *args], cwd=cwd, **env)


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    """One fresh virtual environment per test module, for installing plugins with `zoo install`."""
    return PluginVenv(tmp_path_factory.mktemp("venv"))


def ctrl_c_default() -> None:
    """A ``preexec_fn`` for a child that the test will Ctrl-C: SIGINT back to its default action. A shell
    without job control starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT, so a
    suite run with ``&`` would otherwise give children that Ctrl-C cannot reach."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def digits_entry_home(tmp_path_factory: pytest.TempPathFactory, zoo_cache: Path) -> Path:
    """A ZOO_HOME whose registry holds ``simplecnn.web`` (SimpleCNN trained one epoch on digits) and its run,
    made once per session by `zoo train` for the tests that only read it (zoo serve's)."""
    home = tmp_path_factory.mktemp("digits_entry") / "zoo_home"
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_PLUGINS", "ZOO_STRICT_PLUGINS")}
    trained = subprocess.run([sys.executable, "-m", "zoo_core", "train", "simplecnn", "--dataset", "digits",
                              "--epochs", "1", "--tag", "web", "--device", "cpu"], capture_output=True, text=True,
                             env={**env, "ZOO_HOME": str(home), "ZOO_CACHE": str(zoo_cache)}, timeout=600)  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    return home



# -- the Hub-protocol test server (tests/support/hub_server.py), importable from every test as `hub_server` --

sys.path.insert(0, str(Path(__file__).resolve().parent / "support"))


class _CurrentStderr:
    """A stream that is always the current sys.stderr (pytest's capture replaces it test by test)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture
def hub_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Hub-protocol server on a free port of 127.0.0.1 with the accounts of ``hub_server.USERS`` and
    ``ORGS``, and the environment that points huggingface_hub at it (token: alice's, with write access)."""
    import logging

    from hub_server import ORGS, USERS, HubServer
    from huggingface_hub import constants

    server = HubServer(users=USERS, orgs=ORGS).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_alice_write")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")  # the server has no xet storage
    for var in ("HF_HUB_OFFLINE", "HF_HUB_CACHE", "HUGGING_FACE_HUB_TOKEN", "ZOO_HUB_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    # huggingface_hub reads these when it is imported, which in this process happened long ago
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    # huggingface_hub's log handler keeps the sys.stderr of the test that first logged; write to today's
    for handler in logging.getLogger("huggingface_hub").handlers:
        if isinstance(handler, logging.StreamHandler):
            monkeypatch.setattr(handler, "stream", _CurrentStderr())
    yield server
    server.stop()
