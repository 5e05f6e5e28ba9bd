"""docs/plugins.md, the plugin author's guide, is kept true by running it.

Every hook in zoo_core/hookspecs.py has a section whose signature matches and which names everything the
hook's docstring names; every weights-schema field is documented; and every code block carries a marker
saying how it is checked: ``from: PATH`` (a verbatim excerpt of a file the test suite runs), ``plugin:
MODULE`` (a complete plugin, installed and used here), ``file: PATH`` and ``run: NAME`` (files and commands
run as written, in a fresh environment: the quick start must give a model that works with zoo list, train,
eval and benchmark).
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

import zoo_core
from zoo_core import hookspecs, plugins, weights

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
TEXT = GUIDE.read_text()
BLOCK = re.compile(r"<!-- (from|file|run|plugin): (\S+) -->\n```(\w+)\n(.*?)^```$", re.S | re.M)
HOOK_HEADING = re.compile(r"^### `(\w+)\(([^)]*)\)`$", re.M)


def blocks(kind: str) -> list[tuple[str, str]]:
    """(target, code) of the guide's blocks marked ``kind``, in order."""
    return [(m.group(2), m.group(4)) for m in BLOCK.finditer(TEXT) if m.group(1) == kind]


def commands(kind_name: str) -> list[str]:
    """The command lines of the ``run: NAME`` block, without their comments."""
    (code,) = [code for name, code in blocks("run") if name == kind_name]
    return [line.split("  #")[0].strip() for line in code.splitlines() if line.strip()]


def section(heading: str) -> str:
    """The text under a ``## heading`` up to the next one."""
    start = TEXT.index(f"\n## {heading}\n")
    end = TEXT.find("\n## ", start + 1)
    return TEXT[start : end if end != -1 else None]


def flat(text: str) -> str:
    return " ".join(text.split())


def hook_specs() -> dict[str, inspect.Signature]:
    """Every hook zoo declares: the functions hookspecs.py marks as specifications."""
    marker = f"{hookspecs.PROJECT}_spec"
    return {name: inspect.signature(fn) for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, marker)}  # fmt: skip


# -- the hooks and the schema are all documented -----------------------------------------------------------


def test_every_hook_has_a_section_with_its_signature():
    specs = hook_specs()
    assert len(specs) >= 5
    documented = {m.group(1): [p.strip() for p in m.group(2).split(",") if p.strip()]
                  for m in HOOK_HEADING.finditer(TEXT)}  # fmt: skip
    missing = sorted(set(specs) - set(documented))
    assert not missing, f"hooks with no section in docs/plugins.md: {missing}"
    unknown = sorted(set(documented) - set(specs))
    assert not unknown, f"docs/plugins.md documents hooks zoo does not have: {unknown}"
    for name, signature in specs.items():
        assert documented[name] == list(signature.parameters), f"{name}: documented {documented[name]}"


def test_each_hook_section_says_what_its_register_accepts():
    headings = list(HOOK_HEADING.finditer(TEXT))
    for i, match in enumerate(headings):
        end = headings[i + 1].start() if i + 1 < len(headings) else TEXT.index("\n## ", match.end())
        body = flat(TEXT[match.end() : end])
        doc = inspect.getdoc(getattr(hookspecs, match.group(1))) or ""
        named = {flat(span) for span in re.findall(r"``(.+?)``", doc, re.S)}
        assert named, f"{match.group(1)}: its docstring names nothing"
        absent = sorted(span for span in named if span not in body)
        assert not absent, f"the section of {match.group(1)} never mentions {absent}"


def test_every_field_of_the_weights_schema_is_documented():
    body = section("The weights schema")
    absent = sorted(f for f in {*weights.FIELDS, *weights.PREPROCESSING_FIELDS} if f"`{f}`" not in body)
    assert not absent, absent


def test_every_code_block_says_how_it_is_checked():
    fenced = re.findall(r"^```(\w+)$", TEXT, re.M)
    marked = list(BLOCK.finditer(TEXT))
    assert len(marked) == len(fenced), "a code block with a language but no <!-- from|file|run|plugin --> marker"
    assert {m.group(1) for m in marked} == {"from", "file", "run", "plugin"}


@pytest.mark.parametrize("path, code", blocks("from"), ids=[p for p, _ in blocks("from")])
def test_an_excerpt_is_exactly_in_the_file_it_comes_from(path, code):
    assert path.startswith("plugins/example/"), "excerpts come from the example plugin, which the suite runs"
    assert code in (ROOT / path).read_text(), f"docs/plugins.md quotes {path}, which no longer reads so"


# -- complete plugins in the guide, installed as they are written ---------------------------------------------


@pytest.mark.parametrize("module, code", blocks("plugin"), ids=[m for m, _ in blocks("plugin")])
def test_a_plugin_block_loads_as_written(plugin_path, module, code):
    plugin_path(f"zoo-{module}", module, module, code)
    info = plugins.get_host().infos[module]
    assert (info.status, info.errors) == ("ok", []) and info.hooks


def test_the_weights_hook_example_makes_tags_of_a_folder(plugin_path, tmp_path, monkeypatch):
    import torch
    from safetensors.torch import save_file

    (code,) = [code for module, code in blocks("plugin") if module == "zoo_bucket"]
    trained = zoo_core.create_model("simplecnn", num_classes=3)
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    save_file(trained.state_dict(), str(bucket / "simplecnn.mine.safetensors"))
    meta = {"source": "bucket", "num_classes": 3, "labels": ["a", "b", "c"], "model_kwargs": {"num_classes": 3}}
    (bucket / "simplecnn.mine.json").write_text(json.dumps(meta))
    monkeypatch.setenv("ZOO_BUCKET", str(bucket))
    plugin_path("zoo-bucket", "bucket", "zoo_bucket", code)
    assert zoo_core.weights_info("simplecnn.mine").labels == ("a", "b", "c")
    loaded = zoo_core.create_model("simplecnn", pretrained="mine")
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), loaded.state_dict().values(),
                                                 strict=True))  # fmt: skip


# -- the quick start, the scaffold and the trace, run as written in a fresh environment -------------------------


@pytest.mark.slow  # `zoo install -e` builds an editable wheel
def test_following_the_guide_a_new_model_works_with_list_train_eval_and_benchmark(plugin_venv, tmp_path):
    for path, code in blocks("file"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(code)
    outputs = {}
    for line in commands("quickstart"):
        out = plugin_venv.run(line, cwd=tmp_path)
        assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
        assert "Traceback" not in out.stderr and "zoo: warning" not in out.stderr, out.stderr
        outputs[line.split()[1]] = out.stdout
    assert "installed zoo-tinycnn 0.1.0: plugin 'tinycnn'" in outputs["install"]
    assert re.search(r"^tinycnn +tinycnn +tiny +32x32", outputs["list"], re.M), outputs["list"]
    assert "published tinycnn.first  top-1 " in outputs["train"]
    assert re.search(r"tinycnn\.first on digits test \(\d+ images", outputs["eval"]), outputs["eval"]
    assert re.search(r"^tinycnn +infer +16 +32 +[\d.]+", outputs["benchmark"], re.M), outputs["benchmark"]


@pytest.mark.slow  # `zoo install -e` builds an editable wheel
def test_the_scaffold_block_gives_a_listed_model(plugin_venv, tmp_path):
    outputs = []
    for line in commands("scaffold"):
        out = plugin_venv.run(line, cwd=tmp_path)
        assert out.returncode == 0, f"{line}\n{out.stdout}\n{out.stderr}"
        outputs.append(out.stdout)
    assert re.search(r"^mynet +mynet +mynet +32x32", outputs[-1], re.M), outputs[-1]


def test_the_trace_block_shows_each_hook_call(plugin_venv, tmp_path):
    (line,) = commands("trace")
    out = plugin_venv.run(line, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == "no problems"
    assert re.search(r"^zoo: trace: registry +zoo_register_weights +[\d.]+ ms", out.stderr, re.M), out.stderr
