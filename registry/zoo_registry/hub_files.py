"""What a registry entry looks like in a Hub repository, and how it is read back.

A repository zoo pushes holds exactly:

- ``model.safetensors``, or, above the shard limit, ``model-00001-of-0000N.safetensors`` shards and
  ``model.safetensors.index.json`` (``{"metadata": {"total_size": ...}, "weight_map": {tensor: shard}}``, the
  Hub and transformers convention). Never a pickle.
- ``config.json``: the entry's own config under ``"zoo"`` (architecture, constructor arguments, labels,
  preprocessing, training record, metrics) with the sha256 of every weights file under ``"zoo"."files"``,
  and at the top level timm's fields (``architecture``, ``num_classes``, ``label_names``, ``model_args``,
  ``pretrained_cfg``) so that ``timm.create_model("hf-hub:OWNER/NAME", pretrained=True)`` loads a timm model.
- ``README.md``, the model card (``zoo_registry.model_card``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo_core import parse
from zoo_core.plugin_api import (
    NAME_MAX,
    PREPROCESSING_FIELDS,
    TAG_MAX,
    TAG_RE,
    UsageError,
    WeightsError,
    first_line,
    records,
)

WEIGHTS = "model.safetensors"
INDEX = "model.safetensors.index.json"
CONFIG = "config.json"
CARD = "README.md"
SHARD_RE = re.compile(r"^model-(\d{5})-of-(\d{5})\.safetensors$")
HUB_FORMAT = 1
DEFAULT_MAX_SHARD = "5GB"  # transformers' default; a CNN stays one file, as timm expects
# Entry config fields that describe this machine's copy (where it was pushed, where it was pulled from), not
# the weights: never pushed.
LOCAL_ONLY = ("pushed", "source", "origin", "revision", "hf_hub_id")
# timm pretrained_cfg fields that describe the architecture rather than one set of weights.
TIMM_ARCH_FIELDS = ("first_conv", "classifier", "fixed_input_size")
UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(text: str | int) -> int:
    """``"5GB"``, ``"200MB"``, ``"512KiB"`` or a number of bytes -> bytes."""
    if isinstance(text, int):
        size = text
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", str(text))
        unit = match.group(2).upper() if match else None
        if match is None or unit not in UNITS:
            raise UsageError(f"invalid size {text!r}: use a number of bytes or e.g. 500MB, 5GB, 512MiB")
        size = int(float(match.group(1)) * UNITS[unit])
    if size < 1:
        raise UsageError(f"invalid size {text!r}: must be positive")
    return size


def is_zoo_file(name: str) -> bool:
    """Whether a repository file is one zoo writes (anything else is someone else's content)."""
    return name in (".gitattributes", CARD, CONFIG, WEIGHTS, INDEX) or SHARD_RE.match(name) is not None


def is_weights_file(name: str) -> bool:
    return name in (WEIGHTS, INDEX) or SHARD_RE.match(name) is not None


# -- writing ---------------------------------------------------------------------------------------------


def shard_plan(sizes: dict[str, int], max_bytes: int) -> list[list[str]]:
    """Tensor names grouped into shards of at most ``max_bytes`` each, in file order (a larger tensor is a
    shard of its own)."""
    shards: list[list[str]] = []
    current: list[str] = []
    used = 0
    for name, size in sizes.items():
        if current and used + size > max_bytes:
            shards.append(current)
            current, used = [], 0
        current.append(name)
        used += size
    if current:
        shards.append(current)
    return shards


def write_weights(source: Path, out_dir: Path, max_bytes: int) -> dict[str, Path]:
    """The weights files to push: ``source`` itself when it fits ``max_bytes``, else shards and their index
    written into ``out_dir``. Returns {repository path: local file}."""
    from safetensors import safe_open

    from zoo_registry.weights_file import save_weights, tensor_sizes

    if source.stat().st_size <= max_bytes:
        return {WEIGHTS: source}
    sizes = tensor_sizes(source)
    plan = shard_plan(sizes, max_bytes)
    files: dict[str, Path] = {}
    weight_map: dict[str, str] = {}
    with safe_open(str(source), framework="pt") as f:
        for i, names in enumerate(plan, start=1):
            shard = f"model-{i:05d}-of-{len(plan):05d}.safetensors"
            save_weights({n: f.get_tensor(n) for n in names}, out_dir / shard)
            files[shard] = out_dir / shard
            weight_map.update(dict.fromkeys(names, shard))
    index = {"metadata": {"total_size": sum(sizes.values())}, "weight_map": weight_map}
    (out_dir / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    files[INDEX] = out_dir / INDEX
    return files


def timm_fields(config: dict[str, Any]) -> dict[str, Any]:
    """timm's own config.json fields for a timm model, so timm can build it and load the pushed weights."""
    import timm
    import torch

    arch = parse(config["architecture"]).name
    kwargs = dict(config["model_kwargs"])
    with torch.device("meta"):  # only the architecture's description is wanted, not weights
        model = timm.create_model(arch, **kwargs)
    source = getattr(model, "pretrained_cfg", None) or {}
    pre = config.get("preprocessing") or {}
    pretrained_cfg: dict[str, Any] = {k: source[k] for k in TIMM_ARCH_FIELDS if source.get(k) is not None}
    pretrained_cfg.update({k: pre[k] for k in ("input_size", "interpolation", "crop_pct", "crop_mode", "mean", "std")
                           if pre.get(k) is not None})  # fmt: skip
    pretrained_cfg.update(num_classes=config["num_classes"], custom_load=False)
    out: dict[str, Any] = {"architecture": arch, "num_classes": config["num_classes"]}
    if getattr(model, "num_features", None):
        out["num_features"] = int(model.num_features)
    pool = getattr(getattr(model, "global_pool", None), "pool_type", None)
    if isinstance(pool, str) and pool:
        out["global_pool"] = pool
    if config.get("labels"):
        out["label_names"] = list(config["labels"])
    model_args = {k: v for k, v in kwargs.items() if k != "num_classes"}
    if model_args:
        out["model_args"] = model_args
    out["pretrained_cfg"] = pretrained_cfg
    return out


def hub_config(config: dict[str, Any], metrics: dict[str, Any], files: dict[str, str], *,
               license: str | None, base_model: str | None, timm: bool) -> dict[str, Any]:  # fmt: skip
    """The repository's config.json: zoo's entry config (and the weights files' sha256) under "zoo", timm's
    fields at the top level for timm models, plain architecture / classes / labels otherwise."""
    zoo = {k: v for k, v in config.items() if k not in LOCAL_ONLY}
    zoo.update(hub_format=HUB_FORMAT, metrics=metrics, files=files, license=license, base_model=base_model)
    zoo = {k: v for k, v in zoo.items() if v is not None}
    if timm:
        top = timm_fields(config)
    else:
        top = {"architecture": config["architecture"], "num_classes": config["num_classes"]}
        if config.get("labels"):
            top["label_names"] = list(config["labels"])
    return {**top, "zoo": zoo}


# -- reading back ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubEntry:
    """A zoo entry as a repository's config.json describes it."""

    architecture: str
    tag: str
    model_kwargs: dict[str, Any]
    labels: list[str]
    preprocessing: dict[str, Any]
    metrics: dict[str, Any]
    training: dict[str, Any] | None
    num_params: int | None
    license: str | None
    base_model: str | None
    files: dict[str, str]  # weights file -> sha256

    @property
    def sharded(self) -> bool:
        return INDEX in self.files


# Bounds on what a repository may hold: far above anything zoo writes, far below what would hurt to read.
MAX_JSON_BYTES = {CONFIG: 8 * 2**20, INDEX: 64 * 2**20}  # a config of 100,000 labels is ~2 MB
MAX_DEPTH = 32  # nesting of any JSON value
MAX_FIELD_BYTES = 2**20  # model_kwargs, preprocessing, metrics, training: each as JSON
MAX_LABELS = 100_000
MAX_LABEL_CHARS = 1_000
MAX_FILES = 10_000  # weights files; 10,000 shards of 5 GB are 50 TB
MAX_PARAMS = 10**13
MAX_KWARG_INT = 10**7  # no vision model takes a class count, channel count or size this large
MAX_SIDE = 16_384  # input sizes
MAX_STATS = 64  # channels of mean / std


def load_json(path: Path, where: str, name: str = CONFIG) -> Any:
    """A JSON file of a repository (``where``), read with bounds on its size and nesting."""
    limit = MAX_JSON_BYTES.get(name, MAX_JSON_BYTES[CONFIG])
    try:
        size = path.stat().st_size
        if size > limit:
            raise WeightsError(f"{where}: {name} is {size:,} bytes, above the {limit:,} zoo ever writes; is this a "
                               "repository zoo pushed?")  # fmt: skip
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: nesting deeper than the parser goes
        raise WeightsError(f"{where}: {name} is not readable JSON ({first_line(e, limit=160)})") from None


def pushed_architecture(data: Any) -> str | None:
    """The architecture a config.json zoo pushed names, or None for anything else."""
    zoo = data.get("zoo") if isinstance(data, dict) else None
    architecture = zoo.get("architecture") if isinstance(zoo, dict) else None
    return architecture if isinstance(architecture, str) else None


def _depth_ok(value: Any) -> bool:
    """Whether ``value`` nests at most ``MAX_DEPTH`` deep (walked without recursion: the input chooses)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return False
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
    return True


# What config.json's "zoo" section must hold, in zoo_core.records' terms (the one schema check zoo has for the
# JSON it reads); ``read_hub_config`` adds what a schema cannot say (names, the set of weights files, sizes).
_STATS = replace(records.list_of(records.number(), MAX_STATS, min_len=1, null=True),
                 label=f"a list of 1 to {MAX_STATS} numbers")  # fmt: skip
# No value satisfies it: a field of "preprocessing" that is not one of the weights schema's.
_NOT_PREPROCESSING = records.Spec("str", choices=(), label=f"one of {', '.join(sorted(PREPROCESSING_FIELDS))}")
_SHA256 = records.string(64, pattern="[0-9a-f]{64}", label="a sha256 (64 lowercase hex digits)")
FORMAT_SPEC = records.obj({"zoo": records.obj({"hub_format": replace(records.version(HUB_FORMAT), null=True)})})
HUB_CONFIG_SPEC = records.obj({"zoo": records.obj({
    "architecture": records.string(2 * NAME_MAX + 1, min_len=1, required=True),
    "tag": records.string(TAG_MAX, min_len=1, required=True),
    "files": replace(records.obj(others=_SHA256, max_len=MAX_FILES, required=True), min_len=1,
                     label=f"an object of 1 to {MAX_FILES:,} weights files"),
    "model_kwargs": records.obj({"num_classes": records.integer(1, MAX_KWARG_INT)}, required=True),
    "labels": replace(records.list_of(records.string(MAX_LABEL_CHARS), MAX_LABELS, null=True),
                      label=f"a list of at most {MAX_LABELS:,} strings"),
    "preprocessing": records.obj({
        "input_size": records.list_of(records.integer(1, MAX_SIDE), 3, min_len=3, null=True),
        "mean": _STATS, "std": _STATS, "interpolation": records.string(32, null=True),
        "crop_mode": records.string(32, null=True), "crop_pct": records.number(null=True),
        "resize_size": records.integer(1, MAX_SIDE, null=True),
    }, others=_NOT_PREPROCESSING, null=True),
    "metrics": records.obj(null=True),
    "training": records.obj(null=True),
    "num_params": records.integer(0, MAX_PARAMS, null=True),
    "license": records.string(100, min_len=1, null=True),
    "base_model": records.string(200, min_len=1, null=True),
}, required=True)})  # fmt: skip
JSON_FIELDS = ("model_kwargs", "preprocessing", "metrics", "training")  # stored as they are: plain, bounded JSON


def _checked(data: Any, spec: records.Spec, where: str) -> None:
    """``records.check`` with the Hub's error classes: a newer format is the user's to fix (upgrade zoo)."""
    try:
        records.check(data, spec, where)
    except records.NewerFormatError as e:
        raise UsageError(str(e)) from None
    except records.RecordError as e:
        raise WeightsError(str(e)) from None


def _check_beyond_schema(zoo: dict[str, Any], where: str) -> None:
    """What the schema cannot say: plain JSON of bounded size, a qualified model name, a tag, the weights files
    as zoo pushes them, every integer of the constructor arguments bounded."""

    def fail(key: str, expected: str, got: str) -> WeightsError:
        return records.fail(where, f"zoo.{key}", expected, got, error=WeightsError)  # type: ignore[return-value]

    for key in JSON_FIELDS:
        value = zoo.get(key)
        if value is None:
            continue
        if not _depth_ok(value):
            raise fail(key, f"JSON nested at most {MAX_DEPTH} deep", "...")
        try:
            size = len(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError):
            raise fail(key, "plain JSON with finite numbers", records.shown(value)) from None
        if size > MAX_FIELD_BYTES:
            raise fail(key, f"at most {MAX_FIELD_BYTES:,} bytes of JSON", f"{size:,} bytes")
    try:
        ref = parse(zoo["architecture"])
    except UsageError:
        ref = None
    if ref is None or ref.is_source or not ref.plugin or ref.tag or ref.version is not None:
        raise fail("architecture", "a qualified model name, PLUGIN:MODEL", records.shown(zoo["architecture"]))
    if not TAG_RE.match(zoo["tag"]):
        raise fail("tag", "a tag (letters, digits, '_' and '-')", records.shown(zoo["tag"]))
    names = set(zoo["files"])
    if names != {WEIGHTS}:
        shards = [SHARD_RE.match(n) for n in sorted(names - {INDEX})]
        counts = {int(m.group(2)) for m in shards if m}
        numbers = sorted(int(m.group(1)) for m in shards if m)
        if INDEX not in names or not shards or not all(shards) or counts != {len(shards)} \
                or numbers != list(range(1, len(shards) + 1)):  # fmt: skip
            raise fail("files", f"{WEIGHTS}, or {INDEX} and shards model-00001-of-0000N.safetensors to N",
                       records.shown(sorted(names)))  # fmt: skip
    stack: list[tuple[str, Any]] = list(zoo["model_kwargs"].items())
    while stack:  # every integer anywhere inside, e.g. input_size: [8, 8]
        key, item = stack.pop()
        if isinstance(item, dict):
            stack += [(f"{key}.{k}", v) for k, v in item.items()]
        elif isinstance(item, list):
            stack += [(f"{key}[{i}]", v) for i, v in enumerate(item)]
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_KWARG_INT:
            raise fail(f"model_kwargs.{key}", f"an integer from {-MAX_KWARG_INT:,} to {MAX_KWARG_INT:,}",
                       records.shown(item))  # fmt: skip


def read_hub_config(data: Any, where: str) -> HubEntry:
    """Check a repository's config.json (``where`` names the repository) and return the zoo entry it describes.

    Whatever the repository holds, the answer is a valid HubEntry or one ZooError line that names the file and
    the field: UsageError for a repository zoo did not push or a newer zoo did, WeightsError for a malformed
    one."""
    zoo = data.get("zoo") if isinstance(data, dict) else None
    if zoo is None:
        arch = data.get("architecture") if isinstance(data, dict) else None
        hint = f" (a timm repository of {records.shown(arch)}? load it with timm)" if isinstance(arch, str) else ""
        raise UsageError(f"{where} was not pushed by zoo: its {CONFIG} has no 'zoo' section{hint}")
    where = f"{where}: {CONFIG}"
    _checked(data, FORMAT_SPEC, where)  # first: a newer format may hold other fields
    _checked(data, HUB_CONFIG_SPEC, where)
    _check_beyond_schema(zoo, where)
    return HubEntry(
        architecture=zoo["architecture"], tag=zoo["tag"], model_kwargs=zoo["model_kwargs"],
        labels=list(zoo.get("labels") or []), preprocessing=zoo.get("preprocessing") or {},
        metrics=zoo.get("metrics") or {}, training=zoo.get("training"), num_params=zoo.get("num_params"),
        license=zoo.get("license"), base_model=zoo.get("base_model"), files=dict(zoo["files"]),
    )  # fmt: skip


def merge_shards(shards: list[Path], out: Path, metadata: dict[str, str]) -> None:
    """Join safetensors shards into one file (the local registry keeps one weights file per entry)."""
    from safetensors.torch import load_file

    from zoo_registry.weights_file import save_weights

    tensors: dict[str, Any] = {}
    for shard in shards:
        part = load_file(str(shard))
        clash = set(part) & set(tensors)
        if clash:
            raise WeightsError(f"{shard.name}: tensor {sorted(clash)[0]} is in two shards")
        tensors.update(part)
    save_weights(tensors, out, metadata)


def check_index(index: Any, shards: list[str], where: str) -> None:
    """The index must map every tensor (by name) to one of the listed shards, and use each of them."""
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    ok = isinstance(weight_map, dict) and weight_map and all(
        isinstance(shard, str) and shard in shards for shard in weight_map.values())
    if not ok or set(weight_map.values()) != set(shards):  # type: ignore[union-attr]
        raise WeightsError(f"{where}: {INDEX} does not map the tensors to the shards config.json lists")
