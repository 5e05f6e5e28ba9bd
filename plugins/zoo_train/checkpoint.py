"""Training checkpoints as one safetensors file: model and optimizer tensors, the rest as JSON in the
header. Never pickle, and written atomically, so a run killed at any moment resumes from a whole file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import TrainingError, WeightsError, first_line, records

META_KEY = "zoo_checkpoint"
# The JSON state beside the tensors, as save_checkpoint writes it and the training loop reads it back.
STATE_SPEC = records.obj({
    "epoch": records.integer(0, 10**6, required=True),
    "history": records.list_of(records.obj({
        "epoch": records.integer(0), "images_per_s": records.number(0, required=True),
        "train_s": records.number(0, required=True),
    }), 10**6, required=True),
    "optimizer": records.obj({
        "param_groups": records.list_of(records.obj({
            "params": records.list_of(records.integer(0), 10**8, required=True),
        }), 10_000, required=True),
        "values": records.obj(others=records.obj(), required=True),
        "slots": records.list_of(records.string(20, pattern="[0-9]+"), 10**8, required=True),
    }, required=True),
})  # fmt: skip


def _cpu(tensor: Any, seen: set[int]) -> Any:
    out = tensor.detach().to("cpu").contiguous()
    ptr = out.untyped_storage().data_ptr()
    if ptr in seen and out.numel():  # safetensors refuses tensors sharing storage
        out = out.clone()
    seen.add(out.untyped_storage().data_ptr())
    return out


def save_checkpoint(path: Path, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Write model + optimizer state and ``state`` (JSON-able) to ``path`` atomically."""
    import torch
    from safetensors.torch import save

    from zoo_core.plugin_api import atomic_write_bytes

    seen: set[int] = set()
    tensors = {f"model.{k}": _cpu(v, seen) for k, v in model.state_dict().items()}
    optim = optimizer.state_dict()
    values: dict[str, dict[str, Any]] = {}
    for pid, slots in optim["state"].items():
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = _cpu(value, seen)
            else:
                values.setdefault(str(pid), {})[key] = value
    header = {**state, "optimizer": {"param_groups": optim["param_groups"], "values": values,
                                     "slots": sorted(str(p) for p in optim["state"])}}  # fmt: skip
    try:
        atomic_write_bytes(path, save(tensors, metadata={META_KEY: json.dumps(header)}))
    except OSError as e:  # a full disk or a read-only ZOO_HOME; the last checkpoint stays whole
        raise TrainingError(f"cannot write the checkpoint {path}: {e.strerror or e}") from None


def load_checkpoint(path: Path, model: Any, optimizer: Any, data: bytes | None = None) -> dict[str, Any]:
    """Restore ``model`` and ``optimizer`` from ``path`` (or from ``data``, that file's bytes as rank 0 of a
    distributed run read and broadcast them); return the saved state."""
    from safetensors import SafetensorError, safe_open

    try:
        if data is None:
            with safe_open(str(path), "pt") as f:
                header = records.parse((f.metadata() or {})[META_KEY], STATE_SPEC, META_KEY)
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        else:
            header, tensors = _from_bytes(data, path)
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        optim = header.pop("optimizer")
        state: dict[int, dict[str, Any]] = {int(p): dict(optim["values"].get(p, {})) for p in optim["slots"]}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, pid, slot = key.split(".", 2)
                state[int(pid)][slot] = value
        optimizer.load_state_dict({"state": state, "param_groups": optim["param_groups"]})
        _match_layout(optimizer)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError, WeightsError) as e:
        msg = first_line(e)
        raise TrainingError(f"cannot resume from {path} ({msg}); start again with --overwrite") from None
    return header


def _from_bytes(data: bytes, path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, tensors) of a checkpoint file's bytes."""
    from safetensors.torch import load
    from zoo_registry.weights_file import header_of_bytes

    metadata = header_of_bytes(data, path).get("__metadata__") or {}
    return records.parse(metadata[META_KEY], STATE_SPEC, META_KEY), load(data)


def _match_layout(optimizer: Any) -> None:
    """Give each per-parameter state tensor its parameter's memory layout (channels_last included).

    The checkpoint stores contiguous tensors; fused Adam walks a parameter and its moments as flat memory,
    so a channels_last weight with contiguous moments would be updated with the wrong moments.
    """
    import torch

    for group in optimizer.param_groups:
        for p in group["params"]:
            slots = optimizer.state.get(p, {})
            for key, value in slots.items():
                if torch.is_tensor(value) and value.shape == p.shape and value.stride() != p.stride():
                    slots[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)
