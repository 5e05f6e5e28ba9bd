"""Where zoo keeps its files: a ZOO_HOME that cannot be used, or no home directory at all, is one line."""

from __future__ import annotations

import os
import subprocess
import sys

from zoo_core.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def zoo(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "zoo_core", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300, **kwargs)  # fmt: skip


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
