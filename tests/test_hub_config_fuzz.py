"""Property tests of the Hub config reader: whatever a repository's config.json holds, reading it gives a valid
entry or one ZooError line that names the repository, never another exception. The default suite tries a few
dozen configs per property; `-m slow` tries thousands."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402 - only once hypothesis is known to be installed
from hypothesis import strategies as st  # noqa: E402
from test_hub import valid_config  # noqa: E402
from zoo_registry.hub_files import HubEntry, load_json, read_hub_config  # noqa: E402

from zoo_core.errors import ZooError  # noqa: E402

WHERE = "alice/fuzz@0123456789ab"
DELETE = object()
# Every field the reader looks at, nested ones included (tuples: a key may hold a dot, as model.safetensors does).
PATHS = [(), ("zoo",), *[("zoo", k) for k in valid_config()["zoo"]],
         ("zoo", "model_kwargs", "num_classes"), ("zoo", "model_kwargs", "input_size"),
         ("zoo", "preprocessing", "input_size"), ("zoo", "preprocessing", "mean"), ("zoo", "preprocessing", "std"),
         ("zoo", "preprocessing", "crop_pct"), ("zoo", "preprocessing", "interpolation"),
         ("zoo", "files", "model.safetensors"), ("zoo", "files", "model.safetensors.index.json"),
         ("zoo", "files", "model-00001-of-00001.safetensors"), ("zoo", "labels", 0)]  # fmt: skip

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
mutation = st.tuples(st.sampled_from(PATHS), st.just(DELETE) | json_values)


def mutate(changes: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """``valid_config()`` with each (path, value) applied in turn; a path that no longer leads anywhere is
    skipped (an earlier change replaced what it went through)."""
    config: Any = copy.deepcopy(valid_config())
    for path, value in changes:
        if not path:
            config = value if value != DELETE else {}
            continue
        node = config
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        last = path[-1]
        if isinstance(node, dict) or (isinstance(node, list) and isinstance(last, int) and last < len(node)):
            if value is not DELETE:
                node[last] = value
            elif isinstance(node, dict):
                node.pop(last, None)
            else:
                del node[last]
    return config


configs = st.lists(mutation, min_size=1, max_size=3).map(mutate) | json_values


def read_or_fail_cleanly(data: Any) -> HubEntry | None:
    """The property: a valid entry, or one ZooError line about the repository."""
    try:
        entry = read_hub_config(data, WHERE)
    except ZooError as e:
        text = str(e)
        assert text.startswith(WHERE) and "\n" not in text and len(text) < 400, text
        return None
    assert isinstance(entry.architecture, str) and ":" in entry.architecture and entry.tag
    assert entry.files and all(isinstance(v, str) and len(v) == 64 for v in entry.files.values())
    assert all(isinstance(label, str) for label in entry.labels)
    assert entry.num_params is None or (isinstance(entry.num_params, int) and entry.num_params >= 0)
    for part in (entry.model_kwargs, entry.preprocessing, entry.metrics, entry.training):
        json.dumps(part, allow_nan=False)  # plain JSON with finite numbers: what the registry can store
    return entry


def read_file_or_fail_cleanly(content: bytes) -> None:
    """The same through the file: any bytes as config.json."""
    fd, name = tempfile.mkstemp(suffix=".json")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        try:
            data = load_json(Path(name), WHERE)
        except ZooError as e:
            assert str(e).startswith(f"{WHERE}: config.json ") and "\n" not in str(e)
            return
        read_or_fail_cleanly(data)
    finally:
        os.unlink(name)


def flipped(data: bytes, positions: list[int], byte: int) -> bytes:
    out = bytearray(data)
    for p in positions:
        out[p % len(out)] = byte
    return bytes(out)


VALID_BYTES = json.dumps(valid_config()).encode()
files = st.binary(max_size=200) | st.builds(
    flipped, st.just(VALID_BYTES), st.lists(st.integers(min_value=0), min_size=1, max_size=4),
    st.integers(min_value=0, max_value=255))  # fmt: skip


def test_the_unmutated_config_is_valid():
    entry = read_or_fail_cleanly(valid_config())
    assert entry is not None and entry.architecture == "cnn:simplecnn"
    assert read_or_fail_cleanly(mutate([(("zoo", "license"), "mit")])).license == "mit"  # type: ignore[union-attr]
    assert read_or_fail_cleanly(mutate([(("zoo", "hub_format"), "2")])) is None  # once a TypeError


@settings(max_examples=50, deadline=None)
@given(configs)
def test_any_config_reads_as_an_entry_or_one_line(data):
    read_or_fail_cleanly(data)


@settings(max_examples=50, deadline=None)
@given(files)
def test_any_config_file_reads_as_an_entry_or_one_line(content):
    read_file_or_fail_cleanly(content)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None)
@given(configs)
def test_any_config_reads_as_an_entry_or_one_line_at_length(data):
    read_or_fail_cleanly(data)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None)
@given(files)
def test_any_config_file_reads_as_an_entry_or_one_line_at_length(content):
    read_file_or_fail_cleanly(content)
