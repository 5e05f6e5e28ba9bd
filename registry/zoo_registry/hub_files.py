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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.errors import UsageError, WeightsError

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
    from safetensors.torch import save_file

    from zoo_registry.weights_file import tensor_sizes

    if source.stat().st_size <= max_bytes:
        return {WEIGHTS: source}
    sizes = tensor_sizes(source)
    plan = shard_plan(sizes, max_bytes)
    files: dict[str, Path] = {}
    weight_map: dict[str, str] = {}
    with safe_open(str(source), framework="pt") as f:
        for i, names in enumerate(plan, start=1):
            shard = f"model-{i:05d}-of-{len(plan):05d}.safetensors"
            save_file({n: f.get_tensor(n) for n in names}, str(out_dir / shard), metadata={"format": "pt"})
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

    arch = config["architecture"].partition(":")[2]
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


def read_hub_config(data: Any, where: str) -> HubEntry:
    """Check a repository's config.json and return the zoo entry it describes; ``where`` names the repo."""
    zoo = data.get("zoo") if isinstance(data, dict) else None
    if not isinstance(zoo, dict):
        arch = data.get("architecture") if isinstance(data, dict) else None
        hint = f" (a timm repository of '{arch}'? load it with timm)" if isinstance(arch, str) else ""
        raise UsageError(f"{where} was not pushed by zoo: its config.json has no 'zoo' section{hint}")
    if zoo.get("hub_format", HUB_FORMAT) > HUB_FORMAT:
        raise UsageError(f"{where} was pushed by a newer zoo (format {zoo.get('hub_format')}); upgrade zoo")

    def field(key: str, kind: type | tuple[type, ...], required: bool = True) -> Any:
        value = zoo.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, kind) or isinstance(value, bool):
            raise WeightsError(f"{where}: config.json field 'zoo.{key}' is missing or malformed")
        return value

    files = field("files", dict)
    names = set(files)
    shards = sorted(n for n in names if SHARD_RE.match(n))
    valid = names == {WEIGHTS} or (INDEX in names and shards and names == {INDEX, *shards})
    if not valid or not all(isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in files.values()):
        raise WeightsError(f"{where}: config.json lists no valid weights files ('zoo.files': {sorted(names)})")
    architecture = field("architecture", str)
    if ":" not in architecture:
        raise WeightsError(f"{where}: config.json names no qualified architecture ('{architecture}')")
    return HubEntry(
        architecture=architecture, tag=field("tag", str), model_kwargs=field("model_kwargs", dict),
        labels=[str(x) for x in field("labels", list, required=False) or []],
        preprocessing=field("preprocessing", dict, required=False) or {},
        metrics=field("metrics", dict, required=False) or {}, training=field("training", dict, required=False),
        num_params=field("num_params", int, required=False), license=field("license", str, required=False),
        base_model=field("base_model", str, required=False), files=dict(files),
    )  # fmt: skip


def merge_shards(shards: list[Path], out: Path, metadata: dict[str, str]) -> None:
    """Join safetensors shards into one file (the local registry keeps one weights file per entry)."""
    from safetensors.torch import load_file, save_file

    tensors: dict[str, Any] = {}
    for shard in shards:
        part = load_file(str(shard))
        clash = set(part) & set(tensors)
        if clash:
            raise WeightsError(f"{shard.name}: tensor {sorted(clash)[0]} is in two shards")
        tensors.update(part)
    save_file(tensors, str(out), metadata={"format": "pt", **metadata})


def check_index(index: Any, shards: list[str], where: str) -> None:
    """The index must map every tensor to one of the listed shards."""
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or set(weight_map.values()) - set(shards):
        raise WeightsError(f"{where}: {INDEX} does not map the tensors to the shards config.json lists")
