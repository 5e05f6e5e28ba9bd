"""The one name grammar (`zoo_core.names`), the resolver's answers for each form, and the house rules that keep
them the only ones: no hand-made name parsing, no weights metadata read outside the spine, no import cycle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import zoo_core
from zoo_core.errors import UnknownNameError, UsageError
from zoo_core.names import TAG_MAX, ModelRef, is_pattern, parse, split_pattern

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("text", "expected"), [
    ("simplecnn", ModelRef(name="simplecnn")),
    ("cnn:simplecnn", ModelRef(name="simplecnn", plugin="cnn")),
    ("resnet50.a1_in1k", ModelRef(name="resnet50", tag="a1_in1k")),
    ("timm:resnet50.a1_in1k", ModelRef(name="resnet50", plugin="timm", tag="a1_in1k")),
    ("simplecnn.mine@2", ModelRef(name="simplecnn", tag="mine", version=2)),
    ("hf-hub:alice/digits", ModelRef(source="hf-hub", location="alice/digits")),
    ("hf-hub:alice/digits@refs/pr/1", ModelRef(source="hf-hub", location="alice/digits@refs/pr/1")),
    ("  resnet18  ", ModelRef(name="resnet18")),
])  # fmt: skip
def test_every_form_parses_to_one_typed_value(text, expected):
    ref = parse(text)
    assert ref == expected
    assert str(ref) == text.strip()  # the canonical text is what was written
    assert parse(str(ref)) == ref


@pytest.mark.parametrize(("text", "message"), [
    ("", "expected a model name"),
    ("foo bar", "invalid model name 'foo bar': use letters"),
    ("a..b", "expected [PLUGIN:]MODEL[.TAG][@VERSION] or SOURCE:ID"),
    ("simplecnn.", "invalid tag ''"),
    ("simplecnn.x;rm", "invalid tag 'x;rm'"),
    ("simplecnn.mine@x", "invalid version 'x'"),
    ("simplecnn.mine@0", "invalid version '0'"),
    ("simplecnn@2", "a version needs a tag"),
    ("simplecnn." + "t" * 300, f"at most {TAG_MAX} characters (this one has 300)"),
    ("x" * 100, "at most 64 characters"),
])  # fmt: skip
def test_malformed_names_are_one_line_usage_errors(text, message):
    with pytest.raises(UsageError) as info:
        parse(text)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert len(str(info.value)) < 200  # a 300-character name is shortened in the message


def test_patterns_are_their_own_small_grammar():
    assert is_pattern("resnet*") and is_pattern("resnet50.") and is_pattern("timm:efficientnet_b?")
    assert not is_pattern("resnet50.a1_in1k")
    assert split_pattern("resnet50.a1*") == ("resnet50", "a1*")
    assert split_pattern("resnet50.") == ("resnet50", "*") and split_pattern("resnet*") == ("resnet*", None)


def test_the_resolver_follows_every_catalogue_form():
    bare = zoo_core.resolve("resnet50")
    assert bare.entry.qualified == "torchvision:resnet50" and bare.tag is None and bare.weights is None
    tagged = zoo_core.resolve("resnet50.imagenet1k_v2")
    assert tagged.weights is not None and tagged.weights.preprocessing.resize_size == 232
    assert tagged.qualified == "torchvision:resnet50.imagenet1k_v2" and tagged.display == "resnet50.imagenet1k_v2"
    other = zoo_core.resolve("timm:resnet50.a1_in1k")
    assert other.display == "timm:resnet50.a1_in1k" and other.weights.source == "timm"
    default = zoo_core.resolve_weights("resnet50")
    assert default.tag == bare.entry.default_tag and default.weights.ref == default.qualified
    assert zoo_core.resolve("resnet50", pretrained="imagenet1k_v1").tag == "imagenet1k_v1"
    assert zoo_core.resolve(tagged).qualified == tagged.qualified  # a Resolved is its own name
    assert zoo_core.weights_info("resnet50.imagenet1k_v1").metrics["imagenet_top1"] == pytest.approx(76.13)


def test_the_resolver_says_what_is_wrong_in_one_line():
    with pytest.raises(UnknownNameError, match="unknown model 'resnet5000'; did you mean"):
        zoo_core.resolve("resnet5000")
    with pytest.raises(UnknownNameError, match=r"unknown tag of torchvision:resnet50 'imagenet1k_v3'; did you mean"):
        zoo_core.resolve("resnet50.imagenet1k_v3")
    with pytest.raises(UnknownNameError, match="did you mean timm:resnet50"):
        zoo_core.resolve("tim:resnet50")  # neither a plugin nor a source that a plugin knows
    with pytest.raises(UsageError, match="no version 3 of resnet50.imagenet1k_v1"):
        zoo_core.resolve("resnet50.imagenet1k_v1@3")  # no plugin keeps versions of torchvision's weights
    with pytest.raises(UsageError, match="has no trained weights"):
        zoo_core.resolve_weights("simplecnn")


# -- the house rules ------------------------------------------------------------------------------------------

SOURCE_DIRS = ("zoo_core", "plugins", "registry")
SPINE = {"zoo_core/names.py", "zoo_core/resolve.py"}


def sources() -> list[Path]:
    return [p for d in SOURCE_DIRS for p in (ROOT / d).rglob("*.py") if "example" not in p.parts]


# Ways a model name used to be taken apart by hand: `model.partition(".")`, `name.split(":")`, ...
HAND_PARSING = re.compile(r"""(\b(model|name|spec|base|pattern|qualified)\w*|\[["'](architecture|model)["']\])"""
                          r"""\.(r?partition|split|rsplit)\(\s*["'][.:]["']""")  # fmt: skip


def test_no_code_parses_a_model_name_outside_the_spine():
    offending = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in sources() if p.relative_to(ROOT).as_posix()
                 not in SPINE for i, line in enumerate(p.read_text().splitlines(), 1) if HAND_PARSING.search(line)]
    assert not offending, offending


def test_no_code_reads_weights_metadata_outside_the_spine():
    """A tag's metadata is read through `resolve(...).weights`; only the catalogue, the schema, the listing and
    stats (which show every tag's published figures) and the registry that writes it touch the raw dicts."""
    allowed = {"zoo_core/resolve.py", "zoo_core/catalogue.py", "zoo_core/weights.py", "zoo_core/listing.py",
               "zoo_core/stats_cache.py"}  # fmt: skip
    pattern = re.compile(r"\.pretrained\[|\.weights\(|(?<![.\w])from_dict\(")
    offending = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}" for p in sources()
                 if p.relative_to(ROOT).as_posix() not in allowed and "zoo_registry" not in p.parts
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if pattern.search(line) and "def " not in line]  # fmt: skip
    offending = [o for o in offending if "zoo_vision/image_model.py" not in o or "given" not in o]
    assert not offending, offending


def core_imports() -> dict[str, set[str]]:
    """zoo_core's modules and the zoo_core modules each imports anywhere in it (inside functions too)."""
    modules = {p.stem for p in (ROOT / "zoo_core").glob("*.py")}
    graph: dict[str, set[str]] = {}
    for name in modules:
        tree = ast.parse((ROOT / "zoo_core" / f"{name}.py").read_text())
        deps: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "zoo_core":
                    deps |= {a.name if a.name in modules else "__init__" for a in node.names}
                elif node.module.startswith("zoo_core."):
                    deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("zoo_core.")}
        graph[name] = deps - {name}
    return graph


def cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_zoo_core_has_no_import_cycle_even_through_imports_inside_functions():
    graph = core_imports()
    assert {"names", "weights", "resolve", "catalogue", "plugins"} <= set(graph)
    found = cycle(graph)
    assert found is None, " -> ".join(found or [])
    assert graph["names"] <= {"errors"} and graph["weights"] <= {"names", "errors"}  # the leaves stay leaves


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None
