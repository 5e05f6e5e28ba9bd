"""The catalogue commands, driven as a user would: `zoo list`, `zoo info`, `zoo plugins`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from zoo_core import shipped
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
    from zoo_core import stats_cache

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(stats_cache, "SHIPPED_PATH", tmp_path / "none.json")  # counted here, so cached here
    assert run(capsys, "list", "simplecnn")[0] == 0
    assert any((tmp_path / "cache" / "catalogue").iterdir())
    assert run(capsys, "list", "simplecnn", "--sort", "params")[0] == 0
    assert any((tmp_path / "cache" / "stats").iterdir())
    code, out, _ = run(capsys, "cache", "clear")
    assert code == 0 and not (tmp_path / "cache" / "catalogue").exists()
    assert not (tmp_path / "cache" / "stats").exists()


# -- the whole catalogue: tags, sizes, costs and accuracy ---------------------------------------------------


def test_every_torchvision_classification_model_is_in_zoo_list(capsys):
    import torchvision.models as tvm

    code, out, _ = run(capsys, "list", "--plugin", "torchvision", "--json")
    assert code == 0
    listed = {m["name"]: m for m in json.loads(out)}
    assert sorted(listed) == sorted(tvm.list_models(module=tvm))
    for name, row in listed.items():
        assert set(row["pretrained"]) == {w.name.lower() for w in tvm.get_model_weights(name)}
    assert listed["mobilenet_v3_large"]["family"] == "mobilenetv3"
    assert listed["vit_b_16"]["family"] == "vision_transformer"
    assert listed["resnet50"]["top1"] == pytest.approx(80.858)  # its default tag's, imagenet1k_v2


def test_list_tags_by_pattern_and_flag(capsys, monkeypatch):
    code, out, _ = run(capsys, "list", "resnet50.*", "--json")
    assert code == 0
    tags = {t["name"]: t for t in json.loads(out)}
    assert {"resnet50.imagenet1k_v1", "resnet50.imagenet1k_v2", "timm:resnet50.a1_in1k"} <= set(tags)
    v1 = tags["resnet50.imagenet1k_v1"]
    assert (v1["source"], v1["top1"], v1["top5"], v1["dataset"]) == ("torchvision", 76.13, 92.862, "imagenet-1k")
    assert (v1["input_size"], v1["resize_size"], v1["crop_pct"]) == ([3, 224, 224], 256, 0.875)
    assert tags["timm:resnet50.a1_in1k"]["top1"] is None and tags["timm:resnet50.a1_in1k"]["crop_pct"] == 0.95
    assert not v1["default"] and tags["resnet50.imagenet1k_v2"]["default"]
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run(capsys, "list", "resnet50.imagenet1k_*")
    lines = out.splitlines()
    assert lines[0].split() == ["name", "source", "top-1", "input", "crop", "(resize)"]
    assert lines[2].split() == ["resnet50.imagenet1k_v1", "torchvision", "76.13", "224x224", "0.875", "(256)"]
    assert lines[-1] == "2 tags of 1 model."
    code, out, _ = run(capsys, "list", "--tags", "densenet121", "--plugin", "torchvision")
    assert code == 0 and "densenet121.imagenet1k_v1" in out and "74.43" in out
    code, out, _ = run(capsys, "list", "resnet50.a1_in1k")  # a tag of the other plugin's resnet50
    assert code == 0 and "timm:resnet50.a1_in1k" in out
    code, _, err = run(capsys, "list", "resnet50.imagenet1k_v9")
    assert code == 2 and err.count("\n") == 1 and "unknown tag of torchvision:resnet50 'imagenet1k_v9'" in err


def zoo_subprocess(*args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `zoo ARGS` in a fresh interpreter: its result and which of torch, timm, torchvision it imported."""
    probe = ("import sys, json; from zoo_core.cli import main; rc = main(sys.argv[1:]);"
             "heavy = sorted(m for m in sys.modules if m in ('torch', 'timm', 'torchvision'));"
             "print(json.dumps(heavy), file=sys.stderr); sys.exit(rc)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=300)
    return proc, json.loads(proc.stderr.strip().splitlines()[-1])


def test_sort_and_filter_from_metadata_build_no_model(capsys):
    run(capsys, "list", "--json")  # warm the catalogue cache
    proc, imported = zoo_subprocess("list", "--plugin", "torchvision", "--sort", "gmacs", "--max-params", "10M",
                                    "--min-top1", "70", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert imported == []  # torchvision's metadata has parameters, GMACs and top-1: nothing is built
    rows = json.loads(proc.stdout)
    assert {"mobilenet_v3_large", "efficientnet_b0", "regnet_y_800mf"} <= {r["name"] for r in rows}
    assert all(r["num_params"] <= 10e6 and r["top1"] >= 70 for r in rows)
    assert [r["gmacs"] for r in rows] == sorted(r["gmacs"] for r in rows)
    # Top-1 filters first: timm's models (no published top-1) are left out before anything would be counted.
    proc, imported = zoo_subprocess("list", "--min-top1", "84", "--max-gmacs", "20", "--json")
    assert proc.returncode == 0 and imported == [] and "counting" not in proc.stderr
    assert {r["name"] for r in json.loads(proc.stdout)} == {"efficientnet_v2_s", "convnext_base", "efficientnet_b6"}
    code, out, _ = run(capsys, "list", "--plugin", "torchvision", "--sort", "top1", "--max-gmacs", "1.5", "--json")
    rows = json.loads(out)
    assert rows and all(r["gmacs"] <= 1.5 for r in rows) and "resnet18" not in {r["name"] for r in rows}
    assert [r["top1"] for r in rows] == sorted((r["top1"] for r in rows), reverse=True)
    code, out, _ = run(capsys, "list", "resnet1*", "--plugin", "torchvision", "--sort", "params")
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[2:-1]] == ["resnet18", "resnet101", "resnet152"]
    assert lines[0].split()[:5] == ["name", "plugin", "family", "params", "top-1"] and "11.7M" in lines[2]


def test_unknown_values_sort_last_and_are_said(capsys):
    code, out, _ = run(capsys, "list", "resnet18", "--sort", "top1")
    rows = [line.split() for line in out.splitlines()[2:4]]
    assert rows[0][:2] == ["resnet18", "torchvision"] and "69.76" in rows[0]
    assert rows[1][:2] == ["timm:resnet18", "timm"] and "?" in rows[1]
    assert "(1 model with unknown top-1 (shown as ?) sorted last)" in out
    code, out, err = run(capsys, "list", "resnet18", "--min-top1", "60", "--json")
    assert [r["qualified"] for r in json.loads(out)] == ["torchvision:resnet18"]
    assert "1 model with unknown top-1 left out" in err


@pytest.mark.parametrize("args, message", [
    (["--max-params", "ten"], "--max-params: expected a number such as 10M, 1.5G or 80, got 'ten'"),
    (["--min-top1", "5M"], "--min-top1: top-1 is a percentage"),
    (["--min-params", "10M", "--max-params", "1M"], "--min-params 10M is above --max-params 1M"),
    (["--sort", "speed"], "--sort: expected one of name, params, gmacs, top1, got 'speed'"),
])  # fmt: skip
def test_bad_sort_or_filter_is_one_line(capsys, args, message):
    code, out, err = run(capsys, "list", "resnet18", *args)
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err


def test_amounts_read_like_people_write_them():
    from zoo_core.listing import fmt_count, fmt_gmacs, parse_amount

    assert parse_amount("10M", "--max-params", "num_params") == 10e6
    assert parse_amount("2.5k", "--max-params", "num_params") == 2500
    assert parse_amount("1.5", "--max-gmacs", "gmacs") == 1.5
    assert parse_amount("500M", "--max-gmacs", "gmacs") == 0.5  # a count of MACs
    assert parse_amount("80%", "--min-top1", "top1") == 80
    assert [fmt_count(n) for n in (25_557_032, 1_147_466, 632_045_800, 1.2e9, 950, None)] == [
        "25.6M", "1.15M", "632M", "1.20B", "950", "?"]  # fmt: skip
    assert [fmt_gmacs(g) for g in (4.089, 0.0114, 167.3, 12.34)] == ["4.09", "0.0114", "167", "12.3"]


def test_stats_without_metadata_are_counted_once_on_meta_and_cached(capsys, monkeypatch, tmp_path):
    import zoo_core
    from zoo_core import plugins, stats_cache
    from zoo_core.model_stats import count_params

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ZOO_PLUGINS", "cnn")
    monkeypatch.setattr(stats_cache, "PROGRESS_AFTER", 1)
    monkeypatch.setattr(stats_cache, "SHIPPED_PATH", tmp_path / "none.json")  # as a third-party plugin's
    code, out, err = run(capsys, "list", "*cnn", "--sort", "params", "--max-gmacs", "1", "--json")
    assert code == 0
    assert "zoo: counting parameters and GMACs of 2 models on the meta device" in err
    assert [r["name"] for r in json.loads(out)] == ["improvedcnn", "simplecnn"]  # fewest parameters first
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["simplecnn"]["num_params"] == count_params(zoo_core.create_model("simplecnn")) == 1_147_466
    assert rows["improvedcnn"]["num_params"] == count_params(zoo_core.create_model("improvedcnn"))
    assert rows["simplecnn"]["gmacs"] == pytest.approx(0.0114, abs=1e-4)
    key = plugins.get_host().cache_key("cnn")
    cached = json.loads((tmp_path / "cache" / "stats" / f"cnn-{key}.json").read_text())
    assert cached["stats"]["simplecnn|{\"num_classes\": 10}|3x32x32"] == {"num_params": 1_147_466, "gmacs": 0.0114}
    proc, imported = zoo_subprocess("list", "*cnn", "--sort", "params", "--max-gmacs", "1", "--json")
    assert proc.returncode == 0 and imported == []  # the second time: cached JSON, no torch
    assert json.loads(proc.stdout) == json.loads(out) and "counting" not in proc.stderr


def test_a_published_tag_is_counted_as_its_weights_build_it(capsys, monkeypatch, tmp_path):
    import torch
    from zoo_registry import store

    import zoo_core
    from zoo_core.model_stats import count_params

    monkeypatch.setenv("ZOO_PLUGINS", "cnn,registry")
    kwargs = {"num_classes": 3, "input_size": 16, "in_chans": 1}
    torch.manual_seed(0)
    store.publish(zoo_core.create_model("simplecnn", **kwargs), model_name="cnn:simplecnn", tag="digits16",
                  model_kwargs=kwargs, labels=["a", "b", "c"], training={"dataset": "digits"},
                  preprocessing={"input_size": [1, 16, 16], "mean": [0.5], "std": [0.25]},
                  metrics={"top1": 91.5, "top5": 100.0, "topk": 3, "dataset": "digits", "split": "test",
                           "per_class_top1": {f"class {i}": 90.0 + i / 10 for i in range(60)}})  # fmt: skip
    code, out, _ = run(capsys, "list", "simplecnn.*", "--sort", "params", "--json")
    (tag,) = json.loads(out)
    assert tag["num_params"] == count_params(zoo_core.create_model("simplecnn", **kwargs))
    assert (tag["top1"], tag["top5"], tag["dataset"], tag["input_size"]) == (91.5, None, "digits", [1, 16, 16])
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "info", "simplecnn")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    assert not any(c in out for c in "{}'")  # no Python reprs
    row = next(line.split() for line in out.splitlines() if line.startswith("digits16"))
    assert row == ["digits16", "local", "91.50", "digits", "1x16x16", "squash", "bilinear"]


def test_info_shows_each_tags_accuracy_resolution_crop_and_licence(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "info", "vit_b_16", "--no-stats")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80
    assert "input         3x224x224 (at least 224x224)" in out
    assert "every tag     source torchvision, dataset imagenet-1k, licence bsd-3-clause" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("imagenet1k")}
    assert rows["imagenet1k_v1"] == ["imagenet1k_v1", "81.07", "95.32", "224x224", "0.875", "(256)", "bilinear"]
    assert rows["imagenet1k_swag_e2e_v1"] == ["imagenet1k_swag_e2e_v1", "85.30", "97.65", "384x384", "1", "(384)",
                                              "bicubic"]  # fmt: skip
    code, out, _ = run(capsys, "info", "timm:resnet50", "--no-stats")
    assert "accuracy      unknown" in out and "a1_in1k" in out and "0.95" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    code, out, _ = run(capsys, "info", "resnet50.imagenet1k_v2")
    assert "  top-1         80.86" in out and "  crop (resize) 0.9655 (232)" in out
    assert "parameters    25,557,032" in out and "GMACs         4.09 at 224x224" in out
    assert "https://download.pytorch.org/models/resnet50-11ad3fa6.pth" in out and "`_" not in out


def test_tables_fit_the_terminal_and_keep_names_whole():
    from zoo_core.table import format_table

    rows = [("timm:a_very_long_model_name.with_its_tag", "timm", "a long description " * 4, "76.13")]
    text = format_table(["name", "plugin", "description", "top-1"], rows, width=70, right={3})
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 70
    assert lines[2].startswith("timm:a_very_long_model_name.with_its_tag  timm    a long")
    assert "…" in lines[2] and lines[2].endswith("76.13")
    assert format_table(["a", "b"], [("x", "y" * 200)]).splitlines()[2].endswith("y" * 200)  # no width: as is


def test_cache_clear_says_what_happened(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    code, out, _ = run(capsys, "cache", "clear")
    assert code == 0 and out.startswith("nothing to remove")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "catalogue").write_text("a file where a folder should be")
    code, _, err = run(capsys, "cache", "clear")
    assert code == 1 and err.startswith("zoo: error: cannot remove")


def test_a_closed_pipe_is_not_an_error():
    proc = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m zoo_core list | head -1"],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.startswith("name") and "Error" not in proc.stderr, proc.stderr


# -- one way to say an error in one line ---------------------------------------------------------------


def test_an_error_in_one_line_is_its_first_line_else_its_type():
    from zoo_core.errors import first_line

    assert first_line(ValueError("  bad value\n  the details nobody reads\n")) == "bad value"
    assert first_line(KeyError("k"), typed=True) == "KeyError: 'k'"
    assert first_line(RuntimeError()) == "RuntimeError" and first_line(RuntimeError(" \n\n "), typed=True) == (
        "RuntimeError")  # fmt: skip
    loading = RuntimeError('Error(s) in loading state_dict for Net:\n\tMissing key(s) in state_dict: "fc.weight".'
                           '\n\tUnexpected key(s) in state_dict: "head.weight".')  # fmt: skip
    assert first_line(loading) == 'Error(s) in loading state_dict for Net: Missing key(s) in state_dict: "fc.weight".'
    assert first_line(OSError("x" * 500)) == "x" * 397 + "..."  # 400 at most by default
    assert first_line(OSError("x" * 500), typed=True, limit=20) == "OSError: " + "x" * 8 + "..."
    assert first_line(OSError("x" * 500), limit=None) == "x" * 500
    pluggy = ValueError("Plugin 'p' for hook 'h'\nhookimpl definition: h(a, extra)\nArgument(s) {'extra'} are declared")
    assert first_line(pluggy, typed=True, whole=True) == (
        "ValueError: Plugin 'p' for hook 'h' hookimpl definition: h(a, extra) Argument(s) {'extra'} are declared")


VERBOSE_MODELS = """
from zoo_core import hookimpl

def build_verbose(num_classes=10):
    import torch.nn as nn

    class Verbose(nn.Linear):
        def forward(self, x):
            raise RuntimeError("shapes do not match\\n  a page of detail\\n  and more")

    return Verbose(4, num_classes)

def build_broken(num_classes=10):
    raise RuntimeError("Plugin 'p' for hook 'h'\\nhookimpl definition: h(a, extra)")

@hookimpl
def zoo_register_models(register):
    register("verbose", build_verbose, input_size=(1, 8, 8), num_classes=10)
    register("verbose_broken", build_broken, input_size=(3, 8, 8), num_classes=10)
"""


def test_a_many_line_error_reaches_the_user_in_one_line(plugin_path, capsys):
    import zoo_core

    plugin_path("zoo-verbose", "verbose", "zoo_verbose_plugin", VERBOSE_MODELS)
    code, _, err = run(capsys, "train", "verbose", "--dataset", "digits", "--epochs", "1")  # torch's error: line 1
    last = err.splitlines()[-1]
    reason = "verbose cannot run on 8x8 inputs (shapes do not match); choose another --img-size"
    assert code == 2 and last.startswith("zoo: error: ") and reason in last, err
    assert "a page of detail" not in err and "Traceback" not in err
    with pytest.raises(zoo_core.PluginError) as raised:  # a plugin's own failure: every line, for its author
        zoo_core.create_model("verbose_broken")
    assert str(raised.value) == ("plugin 'verbose' failed building model 'verbose_broken': RuntimeError: Plugin 'p' "
                                 "for hook 'h' hookimpl definition: h(a, extra)")  # fmt: skip


def test_no_module_writes_out_its_own_first_line_of_an_error():
    import re
    from pathlib import Path

    # `str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__` and its kin, written out again
    idiom = re.compile(r"str\((\w+)\).*\b(else|or) type\(\1\)\.__name__|str\(\w+\)(\.strip\(\))?\.splitlines\(\)\[0\]")
    root = Path(__file__).resolve().parents[1]
    found = []
    for folder in ("zoo_core", "plugins", "registry", "benchmarks"):
        for path in sorted((root / folder).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            found += [f"{path.relative_to(root)}:{n}" for n, line in enumerate(lines, 1) if idiom.search(line)]
    assert found == [], f"say an error in one line with zoo_core.errors.first_line, not by hand: {found}"
    assert idiom.search("msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__")
    assert idiom.search('text = " ".join(str(error).split()) or type(error).__name__')


# -- confirmation: -y and --yes alike -------------------------------------------------------------------


def test_every_command_that_asks_takes_y_and_yes():
    import click

    from zoo_core.cli import cli

    def walk(group: click.Group, ctx: click.Context, prefix: str) -> dict[str, click.Command]:
        found = {}
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if isinstance(command, click.Group):
                found.update(walk(command, click.Context(command, parent=ctx), f"{prefix}{name} "))
            elif command is not None:
                found[prefix + name] = command
        return found

    commands = walk(cli, click.Context(cli), "")
    asking = {name: next(p for p in cmd.params if p.name == "yes") for name, cmd in commands.items()
              if any(p.name == "yes" for p in cmd.params)}  # fmt: skip
    assert {"uninstall", "benchmark", "runs remove", "registry remove"} <= set(asking)
    assert {name: sorted(p.opts) for name, p in asking.items()} == {name: ["--yes", "-y"] for name in asking}
    assert all(p.is_flag for p in asking.values())


# -- shipped counts, lazy models and the command summaries -------------------------------------------------

SHIPPED_SAMPLE = {"cnn": ["simplecnn", "improvedcnn"],
                  "timm": ["resnet18", "convnext_atto", "efficientnet_b3.ra2_in1k"]}  # fmt: skip


def shipped_section_in_force(plugin: str) -> dict:
    """The shipped section of a built-in plugin, checked to be the one zoo uses here; skips where the installed
    libraries are other releases than the ones it was counted with (zoo then counts live, as it must)."""
    from zoo_core import plugins, stats_cache

    section = json.loads(stats_cache.SHIPPED_PATH.read_text())["plugins"][plugin]
    here = shipped.fingerprint(section["module"], section["versions"])
    if here["versions"] != section["versions"]:
        assert stats_cache.shipped(plugin) == {}  # never another release's numbers
        pytest.skip(f"{plugin}'s counts were made with {section['versions']}, this is {here['versions']}")
    assert here["source"] == section["source"], (
        f"the {plugin} plugin's code changed since its counts were made: run python benchmarks/model_stats.py")
    assert plugins.get_host().infos[plugin].module == section["module"]
    return section


@pytest.mark.parametrize("plugin", sorted(shipped.LIBRARIES))
def test_the_shipped_catalogue_is_what_the_hooks_register(plugin):
    """The catalogue rows zoo ships for a fresh install are, row for row, what the plugin's hooks give here."""
    from zoo_core.plugins import PluginHost

    section = shipped._catalogue_sections(shipped.CATALOGUE_PATH)[plugin]
    here = shipped.fingerprint(section["module"], section["versions"])
    if here["versions"] != section["versions"]:
        assert shipped.catalogue_part(plugin, section["module"], "entries") is None  # never another release's
        pytest.skip(f"{plugin}'s catalogue was made with {section['versions']}, this is {here['versions']}")
    assert here["source"] == section["source"], (
        f"the {plugin} plugin's code changed since its catalogue was shipped: run python benchmarks/model_stats.py")
    live = PluginHost(use_cache=False)
    live.load()
    shipped_rows = section["entries"]["entries"]
    rows = {kind: sorted((e.to_cache() for e in live.catalogue.find(kind, plugin=plugin) if e.plugin == plugin),
                         key=lambda r: r["name"]) for kind in shipped_rows}  # fmt: skip
    assert rows == {kind: sorted(found, key=lambda r: r["name"]) for kind, found in shipped_rows.items()}
    assert section["summary"]["hooks"] == live.infos[plugin].hooks


def test_a_fresh_install_lists_from_the_shipped_catalogue_without_importing_torch(tmp_path):
    env = {**os.environ, "ZOO_HOME": str(tmp_path / "fresh"), "ZOO_PLUGINS": "cnn,torchvision,timm"}
    env.pop("ZOO_CACHE", None)
    probe = ("import sys; from zoo_core.cli import main; rc = main(['list', '--json']);"
             "print(sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules), file=sys.stderr);"
             "sys.exit(rc)")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    fresh = json.loads(proc.stdout)
    assert proc.returncode == 0 and proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr
    assert len(fresh) > 1000 and list((tmp_path / "fresh").rglob("timm-*.json"))  # kept as this cache's own
    again = subprocess.run([sys.executable, "-m", "zoo_core", "list", "--json"], capture_output=True, text=True,
                           env=env, timeout=300)  # fmt: skip
    assert json.loads(again.stdout) == fresh


@pytest.mark.parametrize("plugin", sorted(SHIPPED_SAMPLE))
def test_shipped_counts_are_what_counting_gives(plugin):
    from zoo_core import plugins, stats_cache

    section = shipped_section_in_force(plugin)
    catalogue = plugins.get_catalogue()
    for name in SHIPPED_SAMPLE[plugin]:
        model, _, tag = name.partition(".")
        entry = catalogue.get("model", f"{plugin}:{model}")
        query = stats_cache.tag_query(entry, tag) if tag else stats_cache.model_query(entry)
        live = stats_cache.count(query, stats_cache.FIELDS)
        assert live["num_params"] and live["gmacs"], name
        assert section["stats"][query.key] == live == stats_cache.shipped(plugin)[query.key], name
    # torchvision publishes every size and cost in its weights' metadata: nothing of it needs shipping
    resnet = stats_cache.model_query(catalogue.get("model", "torchvision:resnet50")).known
    assert resnet == {"num_params": 25_557_032, "gmacs": pytest.approx(4.09, abs=0.01)}


def test_first_list_by_size_counts_nothing(capsys, zoo_cache, monkeypatch, tmp_path):
    import shutil

    shipped_section_in_force("timm")
    run(capsys, "list", "--json")  # the catalogue cache, as any earlier command leaves it
    shutil.copytree(zoo_cache / "catalogue", tmp_path / "cache" / "catalogue")
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))  # and no counted parameters yet
    proc, imported = zoo_subprocess("list", "--sort", "top1", "--max-params", "10M", "--json")
    assert proc.returncode == 0, proc.stderr
    assert imported == [] and "counting" not in proc.stderr  # every count came with zoo
    rows = {r["qualified"]: r for r in json.loads(proc.stdout)}
    assert rows["timm:resnet10t"]["num_params"] == 5_435_488 and rows["cnn:simplecnn"]["num_params"] == 1_147_466
    assert "timm:resnet50" not in rows and all(r["num_params"] <= 10e6 for r in rows.values())
    assert not (tmp_path / "cache" / "stats").exists()


def test_counting_says_how_long_it_will_take(capsys, monkeypatch, tmp_path):
    from zoo_core import stats_cache

    monkeypatch.setattr(stats_cache, "SHIPPED_PATH", tmp_path / "none.json")  # as for a third-party plugin
    monkeypatch.setattr(stats_cache, "PROGRESS_AFTER", 1)
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    code, _, err = run(capsys, "list", "timm:resnet1*", "--sort", "params")
    n = len(zoo_list_names(capsys, "timm:resnet1*"))
    assert code == 0 and n >= 3
    line = next(line for line in err.splitlines() if "counting" in line)
    assert line.startswith(f"zoo: counting parameters of {n} models on the meta device, about ")
    assert line.endswith(" s, once (cached for the next list)")
    seconds = int(line.split("about ")[1].split(" s,")[0])
    counting = n * stats_cache.SECONDS_PER_MODEL["num_params"]
    assert round(counting) <= seconds <= round(counting + stats_cache.STARTUP_S)  # imports, unless done already
    assert [stats_cache.duration(s) for s in (0.2, 12.4, 150, 4000)] == ["1 s", "12 s", "2 min", "1 h 7 min"]


def zoo_list_names(capsys, *args: str) -> list[str]:
    code, out, _ = run(capsys, "list", *args, "--json")
    assert code == 0
    return [r["name"] for r in json.loads(out)]


LAZY_PLUGIN = '''
from zoo_core import hookimpl


def lazynet(num_classes=10):
    from torch import nn

    return nn.Sequential(nn.LazyConv2d(8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(num_classes))


def cpunet(num_classes=10):
    """Lazy, and its forward pass reads a number back, which the meta device cannot give."""
    from torch import nn

    class CpuNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.flat, self.head = nn.Flatten(), nn.LazyLinear(num_classes)

        def forward(self, x):
            if float(x.abs().sum()) > 1e9:
                x = x / 2
            return self.head(self.flat(x))

    return CpuNet()


def brokennet(num_classes=10):
    """Lazy, and no dry run can shape it."""
    from torch import nn

    class BrokenNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.head = nn.LazyLinear(num_classes)

        def forward(self, x):
            raise RuntimeError("this model needs a real batch")

    return BrokenNet()


@hookimpl
def zoo_register_models(register):
    for build in (lazynet, cpunet, brokennet):
        register(build.__name__, build, family="lazy", input_size=(3, 16, 16), num_classes=10)
'''


def test_lazy_models_are_counted_after_a_dry_run_or_shown_unknown(plugin_path, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    plugin_path("zoo-lazy", "lazy", "zoo_lazy", LAZY_PLUGIN)
    convs, linear = 8 * 3 * 9 + 8, 8 * 14 * 14 * 10 + 10
    code, out, err = run(capsys, "info", "lazynet", "--json")
    assert code == 0 and err == ""
    info = json.loads(out)
    assert info["num_params"] == convs + linear
    assert info["gmacs"] == round((8 * 14 * 14 * 27 + 8 * 14 * 14 * 10) / 1e9, 4)
    code, out, err = run(capsys, "info", "cpunet", "--json")  # shaped on the CPU
    assert code == 0 and json.loads(out)["num_params"] == 3 * 16 * 16 * 10 + 10
    code, out, err = run(capsys, "info", "brokennet", "--json")
    assert code == 0 and err == ""
    info = json.loads(out)
    assert info["num_params"] is None and info["gmacs"] is None and info["plugin"] == "lazy"
    code, out, err = run(capsys, "info", "brokennet")
    assert code == 0 and "Traceback" not in out + err
    assert "  parameters    unknown" in out and "  GMACs         unknown" in out
    code, out, err = run(capsys, "list", "--plugin", "lazy", "--sort", "params")
    assert code == 0 and "Traceback" not in err
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:-2]}
    assert list(lines) == ["cpunet", "lazynet", "brokennet"]  # fewest parameters first, unknown last
    assert lines["lazynet"][3] == "15.9K" and lines["brokennet"][3] == "?"
    assert "(1 model with unknown parameters (shown as ?) sorted last)" in out
    code, out, _ = run(capsys, "list", "--plugin", "lazy", "--sort", "params", "--json")
    assert [r.get("num_params") for r in json.loads(out)] == [7690, convs + linear, None]
    import zoo_core  # the Python API shapes the lazy model too, by building it for real

    assert zoo_core.model_info("lazy:lazynet", stats=True)["num_params"] == convs + linear


def test_help_shows_every_command_summary_whole(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    commands = out.split("Commands:\n", 1)[1].splitlines()
    assert len([line for line in commands if not line.startswith(" " * 5)]) >= 15  # one row per command
    cut = [line.strip() for line in commands if line.rstrip().endswith("...")]
    assert cut == [], f"summaries cut short: {cut}"
    assert "'resnet*', 'timm:efficientnet_*' or 'resnet50.*'." in " ".join(out.split())


def test_counts_made_with_other_libraries_or_code_are_not_used(capsys, monkeypatch, tmp_path):
    from zoo_core import stats_cache

    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    real = json.loads(stats_cache.SHIPPED_PATH.read_text())["plugins"]["cnn"]
    here = shipped.fingerprint(real["module"], real["versions"])
    key = next(k for k in real["stats"] if k.startswith("simplecnn|"))
    marked = {**real, **here, "stats": {key: {"num_params": 7, "gmacs": 0.5}}}  # a value no count gives

    def params_with(section: dict, name: str) -> int:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"schema": stats_cache.SHIPPED_SCHEMA, "plugins": {"cnn": section}}))
        monkeypatch.setattr(stats_cache, "SHIPPED_PATH", path)
        code, out, _ = run(capsys, "list", "simplecnn", "--sort", "params", "--json")
        assert code == 0
        return json.loads(out)[0]["num_params"]

    assert params_with(marked, "same") == 7  # this installation's fingerprint: used as it is
    other_torch = {**marked, "versions": {"torch": "1.0.0"}}
    assert params_with(other_torch, "other-torch") == 1_147_466  # counted here instead
    edited = {**marked, "source": "0" * 16}
    assert params_with(edited, "edited") == 1_147_466
