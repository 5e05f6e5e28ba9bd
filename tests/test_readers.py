"""Files zoo reads back -- registry entries, run records, checkpoints, caches, safetensors headers -- can be edited
by hand, cut short or written by another zoo. Fed generated and mutated ones, every reader gives a valid result or
one ZooError line that names the file, never another exception; a bad cache is rebuilt. The default suite tries a
few dozen files per reader; `-m slow` tries many more."""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis")

import torch  # noqa: E402 - only once hypothesis is known to be installed
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from safetensors import SafetensorError, safe_open  # noqa: E402
from safetensors.torch import save  # noqa: E402
from zoo_bench.estimate import history_path, load_history, record_key, remember  # noqa: E402
from zoo_data.cache import cached  # noqa: E402
from zoo_registry import store  # noqa: E402
from zoo_registry.weights_file import DTYPE_BITS, load_weights, read_header, tensor_shapes, tensor_sizes  # noqa: E402
from zoo_train import runs  # noqa: E402
from zoo_train.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from zoo_train.training import TrainConfig  # noqa: E402

from zoo_core import records, stats_cache  # noqa: E402
from zoo_core.cli import main  # noqa: E402
from zoo_core.datasets import Dataset, from_arrays, validate  # noqa: E402
from zoo_core.errors import ZooError  # noqa: E402
from zoo_core.paths import registry_dir, runs_dir  # noqa: E402
from zoo_core.weights import SchemaError, validate_tag  # noqa: E402

# Each test writes its files again for every example under its own ZOO_HOME (the autouse fixture): sharing that
# folder between examples is the point, not an accident.
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DELETE = object()


def json_like(floats: Any) -> Any:
    """Any JSON value, a few levels deep, with ``floats`` for its floating-point numbers."""
    scalars = st.none() | st.booleans() | st.integers() | floats | st.text(max_size=12)
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=8), inner, max_size=4), max_leaves=12)  # fmt: skip


json_values = json_like(st.floats())  # NaN and Infinity too: Python's json writes them
strict_json = json_like(st.floats(allow_nan=False, allow_infinity=False))  # what safetensors' parser accepts


def one_line_or(read: Callable[..., Any], *args: Any, names: str = "", **kwargs: Any) -> Any:
    """The property every reader has: its result, or (None) one ZooError line that names ``names``."""
    try:
        return read(*args, **kwargs)
    except ZooError as e:
        text = str(e)
        assert text and "\n" not in text and "\r" not in text, text
        assert names in text, (names, text)
        return None


def apply(document: Any, changes: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """``document`` with each (path, value) set (or, for DELETE, removed) in turn; a path that no longer leads
    anywhere, because an earlier change replaced what it went through, is skipped."""
    for path, value in changes:
        if not path:
            document = {} if value is DELETE else value
            continue
        parent = document
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        last = path[-1]
        if isinstance(parent, dict) or (isinstance(parent, list) and isinstance(last, int) and last < len(parent)):
            if value is not DELETE:
                parent[last] = value
            elif isinstance(parent, dict):
                parent.pop(last, None)
            else:
                del parent[last]
    return document


def json_files(valid: Callable[[], Any], paths: list[tuple[Any, ...]], values: Any = json_values) -> Any:
    """Bytes of a JSON file: the valid document with a few fields changed or removed, that document cut short,
    or arbitrary bytes."""
    whole = json.dumps(valid()).encode()
    changes = st.lists(st.tuples(st.sampled_from(paths), st.just(DELETE) | values), min_size=1, max_size=3)
    return (changes.map(lambda c: json.dumps(apply(valid(), c)).encode())
            | st.integers(0, len(whole) - 1).map(lambda n: whole[:n]) | st.binary(max_size=48))  # fmt: skip


# -- registry entries: config.json and metrics.json ---------------------------------------------------------


def valid_config() -> dict[str, Any]:
    return {
        "schema": 1, "architecture": "cnn:simplecnn", "tag": "fz", "model_kwargs": {"num_classes": 3, "input_size": 16},
        "num_classes": 3, "labels": ["cat", "dog", "bird"], "weights_file": "model.safetensors",
        "preprocessing": {"input_size": [3, 16, 16], "mean": [0.5] * 3, "std": [0.25] * 3, "crop_pct": 1.0,
                          "crop_mode": "squash", "interpolation": "bilinear", "resize_size": None},
        "format": "safetensors", "sha256": "ab" * 32, "size_bytes": 1234, "num_params": 100, "zoo_version": "0.1.0",
        "torch_version": "2.4.0", "created": "2025-01-01T00:00:00Z", "training": {"dataset": "digits", "epochs": 1},
    }  # fmt: skip


def valid_metrics() -> dict[str, Any]:
    return {"top1": 91.5, "top5": 100.0, "topk": 5, "num_samples": 80, "dataset": "digits", "split": "test"}


CONFIG_PATHS = [(), *[(k,) for k in valid_config()], ("model_kwargs", "num_classes"), ("labels", 0),
                *[("preprocessing", k) for k in valid_config()["preprocessing"]], ("preprocessing", "input_size", 0),
                ("preprocessing", "mean", 1), ("pushed",), ("source",)]  # fmt: skip
METRICS_PATHS = [(), *[(k,) for k in valid_metrics()]]
entry_files = st.tuples(json_files(valid_config, CONFIG_PATHS), json_files(valid_metrics, METRICS_PATHS)) | st.tuples(
    json_files(valid_config, CONFIG_PATHS) | st.just(json.dumps(valid_config()).encode()),
    st.just(json.dumps(valid_metrics()).encode()),
)


def entry_property(files: tuple[bytes, bytes]) -> None:
    entry_dir = registry_dir() / "cnn" / "simplecnn" / "fz"
    entry_dir.mkdir(parents=True, exist_ok=True)
    (entry_dir / "config.json").write_bytes(files[0])
    (entry_dir / "metrics.json").write_bytes(files[1])
    entry = one_line_or(store.read_entry, entry_dir, names=str(entry_dir))
    if entry is None:
        return
    config = entry.config
    assert config["architecture"] == "cnn:simplecnn" and config["tag"] == "fz" and len(entry.sha256) == 64
    assert all(isinstance(label, str) for label in config.get("labels") or [])
    assert isinstance(config["model_kwargs"], dict) and isinstance(entry.metrics, dict)
    assert json.dumps(entry.to_dict(full=True))
    meta = store.weights_metadata(entry)  # what the weights hook registers: the weights schema may refuse it
    try:
        validate_tag(entry.model_name, entry.tag, meta, {"num_classes": 3, "input_size": (3, 16, 16)})
    except SchemaError as e:  # the hook skips the entry with this one line as its warning
        assert "\n" not in str(e)


@FAST
@given(entry_files)
def test_registry_entries_read_back_valid_or_as_one_line(files: tuple[bytes, bytes]) -> None:
    entry_property(files)


@pytest.mark.slow
@SLOW
@given(entry_files)
def test_registry_entries_read_back_valid_or_as_one_line_thoroughly(files: tuple[bytes, bytes]) -> None:
    entry_property(files)


def write_entry(tag: str, config: dict[str, Any]) -> Path:
    entry_dir = registry_dir() / "cnn" / "simplecnn" / tag
    entry_dir.mkdir(parents=True)
    (entry_dir / "config.json").write_text(json.dumps({**config, "tag": tag}))
    (entry_dir / "model.safetensors").write_bytes(save({"w": torch.zeros(2)}))
    return entry_dir


def test_a_broken_entry_costs_one_warning_that_names_the_field(capsys, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "cnn,registry")
    good = write_entry("good", valid_config())
    bad = write_entry("bad", {**valid_config(), "num_classes": "10"})
    newer = write_entry("newer", {**valid_config(), "schema": 2})
    code = main(["list", "simplecnn", "--pretrained", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and json.loads(out)[0]["pretrained"] == ["good"]
    assert main(["registry", "list"]) == 0  # the same process: no second warning
    out, err2 = capsys.readouterr()
    assert "simplecnn.good" in out and "simplecnn.bad" not in out
    warnings = (err + err2).splitlines()
    assert warnings == [
        f"zoo: warning: registry entry {bad} skipped: {bad / 'config.json'}: field 'num_classes' must be an integer "
        "from 1 to 10,000,000, got '10' (`zoo doctor --fix` moves it aside)",
        f"zoo: warning: registry entry {newer} skipped: {newer / 'config.json'} was written by a newer zoo (schema 2; "
        "this zoo reads up to 1); upgrade zoo to read it (`zoo doctor --fix` moves it aside)",
    ]
    code = main(["doctor", "--no-hash", "--json"])
    problems = {p["path"]: p["problem"] for p in json.loads(capsys.readouterr().out)}
    assert code == 1 and "field 'num_classes'" in problems[str(bad)] and "newer zoo" in problems[str(newer)]
    assert "config.json" not in problems[str(good)]  # hand-made weights fit nothing, but its files read


def test_absurd_sizes_are_refused_before_they_cost_much():
    entry_dir = write_entry("huge", valid_config())
    (entry_dir / "config.json").write_text(json.dumps({**valid_config(), "tag": "huge", "labels": ["a"] * 10**6}))
    with pytest.raises(records.RecordError, match=r"field 'labels' must be a list of at most 100,000 items, got "
                                                  r"1,000,000 items"):  # fmt: skip
        store.read_entry(entry_dir)
    (entry_dir / "config.json").write_text("[" * 100_000)
    with pytest.raises(records.RecordError, match="config.json: not valid JSON"):
        store.read_entry(entry_dir)
    with open(entry_dir / "config.json", "wb") as f:
        f.truncate(records.MAX_FILE_BYTES + 1)  # sparse: nothing is written, and nothing should be read
    with pytest.raises(records.RecordError, match="larger than the 16,777,216 bytes zoo ever writes there"):
        store.read_entry(entry_dir)


# -- run records ------------------------------------------------------------------------------------------------


def valid_record() -> dict[str, Any]:
    config = asdict(TrainConfig(model="cnn:simplecnn", dataset="digits", epochs=3, tag="fz"))
    return {"run_id": "cnn-simplecnn-fz", "model": "cnn:simplecnn", "tag": "fz", "config": config,
            "command": "zoo train simplecnn --dataset digits --epochs 3 --tag fz", "created": "2025-01-01T00:00:00Z",
            "status": "interrupted", "pid": 12345, "resumes": ["zoo train simplecnn --resume"]}  # fmt: skip


RECORD_PATHS = [(), *[(k,) for k in valid_record()], *[("config", k) for k in valid_record()["config"]],
                ("resumes", 0), ("metrics",), ("metrics", "top1")]  # fmt: skip
record_files = json_files(valid_record, RECORD_PATHS)


def record_property(blob: bytes) -> None:
    run_dir = runs_dir() / "cnn-simplecnn-fz"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_bytes(blob)
    record = one_line_or(runs.read_record, run_dir / "run.json", names=str(run_dir / "run.json"))
    assert runs.read_json(run_dir / "run.json") == record
    skipped: list[BaseException] = []
    listed = runs.list_runs(on_error=lambda path, e: skipped.append(e))
    assert listed == ([record] if record else []) and len(skipped) == (record is None)
    for r in listed:
        assert r["run_id"] == run_dir.name and runs.resume_command(r).endswith("--resume")
    found = one_line_or(runs.find_resumable, "fz", "digits", "cnn:simplecnn", names="no settings zoo can read")
    assert (found == run_dir) == (record is not None)


@FAST
@given(record_files)
def test_run_records_read_back_valid_or_as_one_line(blob: bytes) -> None:
    record_property(blob)


@pytest.mark.slow
@SLOW
@given(record_files)
def test_run_records_read_back_valid_or_as_one_line_thoroughly(blob: bytes) -> None:
    record_property(blob)


def test_zoo_runs_skips_a_bad_record_with_a_warning_and_resuming_it_is_one_error(capsys, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS", "cnn,data,train,registry")
    for run_id, record in (("cnn-simplecnn-fz", valid_record()),
                           ("cnn-simplecnn-torn", {**valid_record(), "run_id": "cnn-simplecnn-torn", "tag": "torn",
                                                   "resumes": "zoo train"})):  # fmt: skip
        (runs_dir() / run_id).mkdir(parents=True)
        (runs_dir() / run_id / "run.json").write_text(json.dumps(record))
    code = main(["runs", "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and [r["run_id"] for r in json.loads(out)] == ["cnn-simplecnn-fz"]
    bad = runs_dir() / "cnn-simplecnn-torn"
    assert err.splitlines() == [f"zoo: warning: run cnn-simplecnn-torn skipped: {bad / 'run.json'}: field 'resumes' "
                                "must be a list of at most 10,000 items, got 'zoo train' (`zoo runs remove "
                                "cnn-simplecnn-torn` deletes it)"]  # fmt: skip
    code = main(["train", "simplecnn", "--dataset", "digits", "--resume", "--tag", "torn"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "no settings zoo can read" in err and "field 'resumes'" in err


# -- safetensors files: weights, checkpoints ------------------------------------------------------------------


def split_file(blob: bytes) -> tuple[dict[str, Any], bytes]:
    length = int.from_bytes(blob[:8], "little")
    return json.loads(blob[8 : 8 + length]), blob[8 + length :]


def join_file(header: bytes, data: bytes, length: int | None = None) -> bytes:
    return struct.pack("<Q", len(header) if length is None else length) + header + data


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2)


def checkpoint_bytes(tmp: Path) -> bytes:
    model = tiny_model()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    history = [{"epoch": 1, "loss": 0.5, "train_top1": 50.0, "val_top1": 40.0, "images_per_s": 9.5, "train_s": 0.1}]
    save_checkpoint(tmp, model, optimizer, {"epoch": 1, "history": history})
    return tmp.read_bytes()


WEIGHTS = save(dict(tiny_model().state_dict()), metadata={"format": "pt"})
lies = (st.integers(-2, 64) | st.sampled_from([2**31, 2**40, 2**63, 2**64 - 1, 2**64, 10**30])
        | st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "F4", "F6_E2M3", "f32", "Q7", ""]))  # fmt: skip
header_values = lies | st.lists(lies, max_size=3) | strict_json


def safetensors_files(blob: bytes, extra_paths: list[tuple[Any, ...]] = (), values: Any = header_values,
                      honest: Any = None) -> Any:  # fmt: skip
    """A safetensors file's bytes: the valid ``blob`` with a header that still tells the truth (another dtype of
    the same size, the shape rearranged, fields nobody reads, ``honest`` (path, value) changes), or with a lying
    header (fields changed or removed, its length wrong), cut short, or with a header that is not JSON."""
    header, data = split_file(blob)
    raw = json.dumps(header).encode()
    paths = [(), *[(k,) for k in header], *extra_paths]
    truths = [st.tuples(st.just(("__metadata__", "note")), st.text(max_size=20)),
              st.nothing() if honest is None else honest]
    for name, info in ((k, v) for k, v in header.items() if k != "__metadata__"):
        paths += [(name, "dtype"), (name, "shape"), (name, "shape", 0), (name, "data_offsets"),
                  (name, "data_offsets", 0), (name, "data_offsets", 1)]  # fmt: skip
        alike = [d for d, bits in DTYPE_BITS.items() if bits == DTYPE_BITS[info["dtype"]]]
        shapes = st.permutations(info["shape"]).map(list) | st.just([math.prod(info["shape"])])
        truths += [st.tuples(st.just((name, "dtype")), st.sampled_from(alike)),
                   st.tuples(st.just((name, "shape")), shapes), st.tuples(st.just((name, "note")), strict_json)]
    lying = st.lists(st.tuples(st.sampled_from(paths), st.just(DELETE) | values), min_size=1, max_size=3)
    truth = st.lists(st.one_of(truths), max_size=3)
    edited = (truth | lying).map(lambda c: join_file(json.dumps(apply(split_file(blob)[0], c)).encode(), data))
    lengths = st.sampled_from([0, 1, len(raw) - 1, len(raw) + 1, len(raw) + len(data), 2**40, 100 * 2**20 + 1,
                               2**64 - 1]) | st.integers(0, 2**64 - 1)  # fmt: skip
    return (edited | lengths.map(lambda n: join_file(raw, data, n)) | st.integers(0, len(blob) - 1).map(
        lambda n: blob[:n]) | st.binary(max_size=40).map(lambda b: join_file(b, data)))  # fmt: skip


def safetensors_accepts(path: Path) -> bool:
    try:
        with safe_open(str(path), "pt"):  # the whole header is checked on opening
            return True
    except SafetensorError:
        return False


def canonical(blob: bytes) -> bool:
    """Whether a file's header is laid out as every safetensors writer does it: an object of objects. The Rust
    reader also takes a header after blanks and a tensor as a [dtype, shape, offsets] list; zoo refuses both."""
    try:
        header, _ = split_file(blob)
    except ValueError:  # not JSON: both refuse it
        return True
    return blob[8:9] == b"{" and (not isinstance(header, dict) or all(
        isinstance(v, dict) for k, v in header.items() if k != "__metadata__"))  # fmt: skip


def weights_property(blob: bytes) -> None:
    path = registry_dir() / "fuzz.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    header = one_line_or(read_header, path, names=str(path))
    # zoo's own header check refuses what safetensors refuses, and takes what it takes
    assert (header is not None) == safetensors_accepts(path) or (header is None and not canonical(blob))
    if header is None:
        return
    sizes = tensor_sizes(path)
    assert sum(sizes.values()) == len(blob) - 8 - int.from_bytes(blob[:8], "little")
    assert set(tensor_shapes(path)) == set(sizes)
    model = tiny_model()
    if one_line_or(lambda: load_weights(model, path) or True, names=str(path)):
        assert set(model.state_dict()) == set(sizes)  # loaded: the file held exactly the model's tensors


@FAST
@given(safetensors_files(WEIGHTS))
def test_safetensors_headers_are_checked_like_safetensors_does(blob: bytes) -> None:
    weights_property(blob)


@pytest.mark.slow
@SLOW
@given(safetensors_files(WEIGHTS))
def test_safetensors_headers_are_checked_like_safetensors_does_thoroughly(blob: bytes) -> None:
    weights_property(blob)


def checkpoint_property(blob: bytes) -> None:
    run_dir = runs_dir() / "cnn-simplecnn-ck"
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "checkpoint.safetensors"
    path.write_bytes(blob)
    epoch = runs.checkpoint_epoch(run_dir)
    assert epoch is None or (isinstance(epoch, int) and epoch >= 0)
    model = tiny_model()
    from_file = one_line_or(load_checkpoint, path, model, torch.optim.Adam(model.parameters()), names=str(path))
    model = tiny_model()
    from_bytes = one_line_or(load_checkpoint, path, model, torch.optim.Adam(model.parameters()), data=blob,
                             names=str(path))  # fmt: skip
    if canonical(blob):  # (safetensors alone reads the odd layouts zoo refuses; see canonical)
        assert (from_file is None) == (from_bytes is None)  # rank 0, reading the file, and the others agree
        if from_file is not None:
            assert from_file["epoch"] == epoch and isinstance(from_file["history"], list)


def checkpoint_files() -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        blob = checkpoint_bytes(Path(tmp) / "checkpoint.safetensors")
    state = json.loads(split_file(blob)[0]["__metadata__"]["zoo_checkpoint"])
    state_paths = [(), ("epoch",), ("history",), ("history", 0), ("history", 0, "train_s"), ("optimizer",),
                   ("optimizer", "param_groups"), ("optimizer", "param_groups", 0, "params"), ("optimizer", "slots"),
                   ("optimizer", "values")]  # fmt: skip
    states = st.lists(st.tuples(st.sampled_from(state_paths), st.just(DELETE) | json_values), min_size=1,
                      max_size=2).map(lambda c: json.dumps(apply(json.loads(json.dumps(state)), c)))  # fmt: skip
    epochs = st.integers(0, 10**6).map(lambda n: json.dumps({**state, "epoch": n}))
    return safetensors_files(blob, [("__metadata__", "zoo_checkpoint")], header_values | states,
                             st.tuples(st.just(("__metadata__", "zoo_checkpoint")), epochs))  # fmt: skip


@FAST
@given(checkpoint_files())
def test_checkpoints_resume_or_say_why_in_one_line(blob: bytes) -> None:
    checkpoint_property(blob)


@pytest.mark.slow
@SLOW
@given(checkpoint_files())
def test_checkpoints_resume_or_say_why_in_one_line_thoroughly(blob: bytes) -> None:
    checkpoint_property(blob)


@pytest.mark.parametrize(("lie", "says"), [
    (lambda raw, data: join_file(raw, data, 2**40), "header length 1,099,511,627,776 is above the 104,857,600"),
    (lambda raw, data: join_file(raw, data, len(raw) + len(data) + 1), "runs past the end of the"),
    (lambda raw, data: join_file(raw.replace(b'"F32"', b'"Q7"'), data), "must be a safetensors dtype"),
    (lambda raw, data: join_file(raw, data[:-4]), "take 32 bytes, but 28 follow the header (truncated or padded)"),
    (lambda raw, data: join_file(raw, data + b"\0" * 4), "take 32 bytes, but 36 follow the header"),
    (lambda raw, data: join_file(raw.replace(b"[24, 32]", b"[20, 28]"), data), "tensor 'bias' takes bytes 20 to 28, "
                                                                               "but the one before it ends at 24"),
    (lambda raw, data: join_file(raw.replace(b"[2, 3]", b"[2, 4]"), data), "of shape [2, 4] needs 32 bytes"),
    (lambda raw, data: join_file(b"\xff" + raw[1:], data), "its header is not a JSON object"),
    (lambda raw, data: join_file(raw[:-1], data), "its header is not JSON"),
    (lambda raw, data: join_file(raw.replace(b"[0, 24]", b"[0, NaN]"), data), "NaN is not JSON"),
])  # fmt: skip
def test_each_lie_of_a_header_is_named(tmp_path, lie, says):
    header = {"weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "bias": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]}}  # fmt: skip
    path = tmp_path / "lying.safetensors"
    path.write_bytes(lie(json.dumps(header).encode(), bytes(32)))
    with pytest.raises(ZooError) as raised:
        read_header(path)
    assert str(raised.value).startswith(f"{path}: ") and says in str(raised.value)
    assert not safetensors_accepts(path)  # the same files safetensors itself refuses


def test_a_header_length_beyond_the_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 100 * 2**20 + 1))
        f.truncate(8 + 100 * 2**20 + 64)  # sparse: the length fits the file, but not safetensors' limit
    with pytest.raises(ZooError, match="above the 104,857,600 bytes safetensors allows"):
        read_header(path)
    assert runs.checkpoint_epoch(tmp_path) is None


# -- caches: decoded datasets, model statistics, benchmark timings ------------------------------------------------


def tiny_dataset() -> Dataset:
    pixels = torch.arange(4 * 2 * 2 * 3, dtype=torch.uint8).reshape(4, 2, 2, 3)
    labels = torch.tensor([0, 1, 0, 1])
    return from_arrays("fuzzset", ["a", "b"], {"train": (pixels, labels), "test": (pixels[:2], labels[:2])})


def dataset_cache_file(tmp: Path) -> bytes:
    from safetensors.torch import save_file

    dataset = tiny_dataset()
    tensors = {}
    for name, split in dataset.splits.items():
        tensors[f"{name}.pixels"], tensors[f"{name}.labels"] = split.pixels.contiguous(), split.labels.contiguous()
    meta = {"name": "fuzzset", "classes": ["a", "b"], "splits": ["train", "test"], "source": {"kind": "test"}}
    save_file(tensors, str(tmp), metadata={"zoo_dataset": json.dumps(meta)})
    return tmp.read_bytes()


def dataset_files() -> Any:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        blob = dataset_cache_file(Path(tmp) / "d.safetensors")
    meta = json.loads(split_file(blob)[0]["__metadata__"]["zoo_dataset"])
    paths = [(), ("name",), ("classes",), ("classes", 0), ("splits",), ("splits", 0), ("source",)]
    metas = st.lists(st.tuples(st.sampled_from(paths), st.just(DELETE) | json_values), min_size=1, max_size=2).map(
        lambda c: json.dumps(apply(json.loads(json.dumps(meta)), c)))  # fmt: skip
    renamed = st.text(min_size=1, max_size=20).map(lambda name: json.dumps({**meta, "name": name}))
    return safetensors_files(blob, [("__metadata__", "zoo_dataset")], header_values | metas,
                             st.tuples(st.just(("__metadata__", "zoo_dataset")), renamed))  # fmt: skip


def dataset_property(blob: bytes, cache: Path) -> None:
    cache.write_bytes(blob)
    built: list[Dataset] = []

    def build() -> Dataset:
        built.append(tiny_dataset())
        return built[-1]

    dataset = cached(["test_readers"], build)
    assert validate(dataset, dataset.name) is dataset  # from the cache or rebuilt: a dataset either way
    if built:  # a bad cache file is replaced by a good one
        again = cached(["test_readers"], build)
        assert len(built) == 1 and torch.equal(again.split("train").pixels, built[0].split("train").pixels)


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """A ZOO_CACHE for this test alone: the session's is shared, and these tests write garbage into theirs."""
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def dataset_cache(own_cache: Path) -> Path:
    """The cache file of ``tiny_dataset``."""
    cached(["test_readers"], tiny_dataset)
    (found,) = (own_cache / "datasets").glob("*.safetensors")
    return found


@FAST
@given(blob=dataset_files())
def test_a_bad_dataset_cache_is_rebuilt(blob: bytes, dataset_cache: Path) -> None:
    dataset_property(blob, dataset_cache)


@pytest.mark.slow
@SLOW
@given(blob=dataset_files())
def test_a_bad_dataset_cache_is_rebuilt_thoroughly(blob: bytes, dataset_cache: Path) -> None:
    dataset_property(blob, dataset_cache)


def valid_stats() -> dict[str, Any]:
    return {"schema": 1, "stats": {"simplecnn|{}|3x28x28": {"num_params": 1000, "gmacs": 0.5},
                                   "improvedcnn|{}|3x28x28": {"num_params": 2000, "gmacs": None}}}  # fmt: skip


STATS_PATHS = [(), ("schema",), ("stats",), ("stats", "simplecnn|{}|3x28x28"),
               ("stats", "simplecnn|{}|3x28x28", "num_params"), ("stats", "simplecnn|{}|3x28x28", "gmacs")]
stats_files = json_files(valid_stats, STATS_PATHS)


def stats_property(blob: bytes) -> None:
    path = stats_cache.stats_path("cnn")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    cache = stats_cache.StatsCache()
    for values in cache.counts("cnn").values():  # whatever it gives, listing can sort and print
        assert all(isinstance(values.get(f), (int, float, type(None))) for f in stats_cache.FIELDS)
    cache.put("cnn", "fresh", {"num_params": 7})
    cache.save()  # a bad file is written again whole
    assert stats_cache.StatsCache().counts("cnn")["fresh"] == {"num_params": 7}


@FAST
@given(blob=stats_files)
def test_a_bad_stats_cache_is_counted_again(blob: bytes, own_cache: Path) -> None:
    stats_property(blob)


@pytest.mark.slow
@SLOW
@given(blob=stats_files)
def test_a_bad_stats_cache_is_counted_again_thoroughly(blob: bytes, own_cache: Path) -> None:
    stats_property(blob)


BENCH_RECORD = {"model": "cnn:simplecnn", "qualified": "cnn:simplecnn", "error": None,
                "environment": {"device": "cpu", "cpu_threads": 2, "precision": "fp32", "img_size": 28,
                                "channels_last": False, "compile": False},
                "infer": {"step_time_ms": 20.0, "batch_size": 4, "iters": 10, "warmup": 3}}  # fmt: skip


def valid_history() -> dict[str, Any]:
    return {record_key(BENCH_RECORD): {"infer": {"step_s": 0.02, "batch": 4}, "overhead_s": 4.0},
            "cpux2|cnn:improvedcnn|fp32|28|nchw|eager": {"train": {"step_s": 0.1, "batch": 8}}}  # fmt: skip


HISTORY_PATHS = [(), *[(k,) for k in valid_history()], *[(record_key(BENCH_RECORD), k) for k in ("infer",
                 "overhead_s", "train")], (record_key(BENCH_RECORD), "infer", "step_s"),
                 (record_key(BENCH_RECORD), "infer", "batch")]  # fmt: skip
history_files = json_files(valid_history, HISTORY_PATHS)


def history_property(blob: bytes) -> None:
    history_path().parent.mkdir(parents=True, exist_ok=True)
    history_path().write_bytes(blob)
    for costs in load_history().values():  # the arithmetic the estimate does with each entry
        seconds = float(costs.get("overhead_s", 5.0))
        for phase in ("infer", "train"):
            if phase in costs:
                seconds += costs[phase]["step_s"] * 8 / max(1, costs[phase]["batch"])
        assert seconds >= 0
    remember(BENCH_RECORD, 4.6, isolated=True)
    assert load_history()[record_key(BENCH_RECORD)]["infer"] == {"step_s": 0.02, "batch": 4}


@FAST
@given(blob=history_files)
def test_a_bad_benchmark_history_is_left_out(blob: bytes, own_cache: Path) -> None:
    history_property(blob)


@pytest.mark.slow
@SLOW
@given(blob=history_files)
def test_a_bad_benchmark_history_is_left_out_thoroughly(blob: bytes, own_cache: Path) -> None:
    history_property(blob)


# -- the mechanism itself -----------------------------------------------------------------------------------


def test_valid_files_pass_unchanged(tmp_path):
    for name, spec, document in (("config.json", store.CONFIG_SPEC, valid_config()),
                                 ("metrics.json", store.METRICS_SPEC, valid_metrics()),
                                 ("run.json", runs.RUN_SPEC, valid_record()),
                                 ("stats.json", stats_cache.CACHE_SPEC, valid_stats())):  # fmt: skip
        (tmp_path / name).write_text(json.dumps(document))
        assert records.load(tmp_path / name, spec) == document


def test_a_check_names_the_file_and_the_field_and_says_what_it_wanted():
    spec = records.obj({"num_classes": records.integer(1, required=True), "labels": records.list_of(
        records.string(20), 5), "mode": records.string(choices=("center", "squash")), "schema": records.version(1)})
    where = "home/registry/cnn/simplecnn/d1/config.json"
    cases = [
        ({"num_classes": "10"}, f"{where}: field 'num_classes' must be an integer >= 1, got '10'"),
        ({"num_classes": True}, f"{where}: field 'num_classes' must be an integer >= 1, got True"),
        ({}, f"{where}: field 'num_classes' is missing"),
        ({"num_classes": 2, "labels": ["a", 5]}, f"{where}: field 'labels[1]' must be a string of at most 20 "
                                                 "characters, got 5"),
        ({"num_classes": 2, "labels": ["a"] * 10**7}, f"{where}: field 'labels' must be a list of at most 5 items, "
                                                      "got 10,000,000 items"),
        ({"num_classes": 2, "mode": "crop\nme"}, f"{where}: field 'mode' must be one of 'center', 'squash', got "
                                                 "'crop\\nme'"),
        ([1, 2], f"{where}: must hold an object, got [1, 2]"),
    ]  # fmt: skip
    for data, message in cases:
        with pytest.raises(records.RecordError) as raised:
            records.check(data, spec, where)
        assert str(raised.value) == message
    with pytest.raises(records.NewerFormatError, match=r"written by a newer zoo \(schema 3; this zoo reads up to 1\); "
                                                       "upgrade zoo"):  # fmt: skip
        records.check({"num_classes": 2, "schema": 3}, spec, where)
    with pytest.raises(records.RecordError, match="field 'labels' must be a list of at most 5 items, got None"):
        records.check({"num_classes": 2, "labels": None}, spec, where)  # null only where a spec allows it
    spec = records.obj({"labels": records.list_of(records.string(), 5, null=True)})
    assert records.check({"labels": None, "extra": [1]}, spec, where) == {"labels": None, "extra": [1]}
