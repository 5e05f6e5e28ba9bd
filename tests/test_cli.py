"""The catalogue commands, driven as a user would: `zoo list`, `zoo info`, `zoo plugins`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from zoo_core.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_the_catalogue(capsys):
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    models = json.loads(out)
    names = {m["name"] for m in models if m["default"]}
    for name in ("simplecnn", "improvedcnn", "resnet18", "resnet50", "inception_v3", "densenet121",
                 "efficientnet_b0", "efficientnet_v2_s", "densenet201", "resnext50_32x4d"):  # fmt: skip
        assert name in names
    assert sum(m["plugin"] == "timm" for m in models) > 1000
    first = models[0]
    assert {"name", "qualified", "plugin", "family", "pretrained", "default"} <= set(first)
    by_q = {m["qualified"]: m for m in models}
    assert by_q["torchvision:resnet50"]["default"] and not by_q["timm:resnet50"]["default"]
    assert "a1_in1k" in by_q["timm:resnet50"]["pretrained"]
    assert by_q["torchvision:resnet50"]["pretrained"] == ["imagenet1k_v1", "imagenet1k_v2"]


def test_list_patterns_plugin_and_table(capsys):
    code, out, _ = run(capsys, "list", "densenet*", "--plugin", "torchvision")
    assert code == 0
    rows = [line.split()[0] for line in out.splitlines()[2:-1]]
    assert rows == ["densenet121", "densenet161", "densenet169", "densenet201"]
    code, out, _ = run(capsys, "list", "resnet50", "--json")
    assert [m["qualified"] for m in json.loads(out)] == ["torchvision:resnet50", "timm:resnet50"]
    code, out, _ = run(capsys, "list", "resnet50")
    assert "timm:resnet50" in out and "\nresnet50 " in out
    code, out, _ = run(capsys, "list", "simple*", "--pretrained", "--json")
    assert code == 0 and json.loads(out) == []


def test_unknown_model_exits_2_with_suggestions(capsys):
    code, out, err = run(capsys, "info", "densenet12")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [err.strip()]
    assert "unknown model 'densenet12'" in err and "did you mean densenet121" in err
    code, _, err = run(capsys, "list", "resnet5O")
    assert code == 2 and "did you mean resnet50" in err
    code, _, err = run(capsys, "list", "--plugin", "nosuch")
    assert code == 2 and "unknown plugin 'nosuch'" in err


def test_info_json(capsys):
    code, out, _ = run(capsys, "info", "simplecnn", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["plugin"] == "cnn" and info["family"] == "cnn"
    assert info["input_size"] == [3, 32, 32] and info["num_classes"] == 10
    convs = (3 * 32 + 32 * 64 + 64 * 128) * 9 + 32 + 64 + 128
    assert info["num_params"] == convs + (128 * 4 * 4 * 512 + 512) + (512 * 10 + 10)
    macs = 32 * 32 * 32 * 3 * 9 + 16 * 16 * 64 * 32 * 9 + 8 * 8 * 128 * 64 * 9 + 2048 * 512 + 512 * 10
    assert info["gmacs"] == pytest.approx(macs / 1e9, abs=1e-4)
    code, out, _ = run(capsys, "info", "timm:resnet50", "--no-stats", "--json")
    info = json.loads(out)
    assert info["default_tag"] == "a1_in1k" and info["pretrained"]["a1_in1k"]["source"] == "timm"
    assert "num_params" not in info


def test_plugins_lists_builtins_in_precedence_order(capsys):
    code, out, _ = run(capsys, "plugins", "--json")
    assert code == 0
    plugins = json.loads(out)
    names = [p["name"] for p in plugins]
    assert names.index("cnn") < names.index("torchvision") < names.index("timm")
    assert all(p["status"] == "ok" and p["dist"] == "zoo" for p in plugins)
    assert {"name", "version", "hooks", "status", "error"} <= set(plugins[0])


def test_version_and_help_do_not_import_torch():
    probe = (
        "import sys; from zoo_core.cli import main; main(['--help']); main(['--version']);"
        "sys.exit(3 if 'torch' in sys.modules else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "zoo, version 0.1.0" in proc.stdout and "list" in proc.stdout


def test_cache_clear(capsys, zoo_home, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    assert run(capsys, "list", "simplecnn")[0] == 0
    assert any((tmp_path / "cache" / "catalogue").iterdir())
    code, out, _ = run(capsys, "cache", "clear")
    assert code == 0 and not (tmp_path / "cache" / "catalogue").exists()
