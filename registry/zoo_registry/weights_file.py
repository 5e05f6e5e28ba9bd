"""Safetensors weight files: write a model's state, and load one back only after checking it.

Loading refuses pickle checkpoints without unpickling them, verifies the sha256 when one is expected,
and compares keys and shapes with the model first, so every problem is one WeightsError that names the
file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from zoo_core.errors import WeightsError

CHECKSUM_MISMATCH = "checksum mismatch (file is corrupted or was changed)"
SHOWN_KEYS = 5  # how many offending keys an error lists


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def unwrap(model: Any) -> Any:
    """The module whose state_dict names match a freshly built model (no compile or DataParallel prefix)."""
    while True:
        inner = getattr(model, "_orig_mod", None)  # torch.compile
        if inner is None and type(model).__name__ in ("DataParallel", "DistributedDataParallel"):
            inner = model.module
        if inner is None:
            return model
        model = inner


def state_tensors(model: Any) -> dict[str, Any]:
    """The model's state as contiguous CPU tensors that safetensors can write (tied tensors copied)."""
    seen: set[tuple[int, int]] = set()
    tensors = {}
    for key, value in unwrap(model).state_dict().items():
        tensor = value.detach().to("cpu").contiguous()
        # safetensors refuses tensors that share storage (tied weights); a copy of each keeps every key.
        storage = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
        if storage in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(storage)
        tensors[key] = tensor
    return tensors


def save_weights(tensors: dict[str, Any], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` as safetensors (``format=pt`` in the header) and fsync it."""
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata={"format": "pt", **(metadata or {})})
    os.chmod(path, 0o644)  # safetensors creates it private; published weights are meant to be read
    with open(path, "rb") as f:
        os.fsync(f.fileno())


Shapes = dict[str, tuple[int, ...]]
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor name -> dtype, shape, data_offsets; ``__metadata__``),
    read without loading a tensor; WeightsError when the file is not safetensors."""
    import json
    import struct

    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            raw = f.read(length) if 0 < length <= MAX_HEADER else b""
        header = json.loads(raw) if len(raw) == length else None
    except (OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: not a safetensors file (no valid header)")
    return header


def tensor_shapes(path: str | os.PathLike[str]) -> Shapes:
    """Each tensor's shape, from the file's header."""
    return {k: tuple(v["shape"]) for k, v in read_header(path).items() if k != "__metadata__"}


def tensor_sizes(path: str | os.PathLike[str]) -> dict[str, int]:
    """Each tensor's size in bytes, in the order the file stores them."""
    header = {k: v for k, v in read_header(path).items() if k != "__metadata__"}
    ordered = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return {k: v["data_offsets"][1] - v["data_offsets"][0] for k, v in ordered}


def describe_mismatch(file_shapes: Shapes, model_shapes: Shapes) -> str:
    """'' when the keys and shapes agree; else the first few missing, unexpected and mis-shaped keys."""
    missing = [k for k in model_shapes if k not in file_shapes]
    unexpected = [k for k in file_shapes if k not in model_shapes]
    wrong = [
        f"{k} (file {list(file_shapes[k])}, model {list(s)})"
        for k, s in model_shapes.items()
        if k in file_shapes and tuple(file_shapes[k]) != tuple(s)
    ]
    parts = []
    for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if keys:
            more = f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else ""
            parts.append(f"{len(keys)} {label}: {', '.join(keys[:SHOWN_KEYS])}{more}")
    return "; ".join(parts)


def _refuse_pickle(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. torch.save writes a zip
    # archive (PK..) or, in its legacy format, a pickle stream (protocol byte 0x80).
    if head[8:9] == b"{":
        return
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        raise WeightsError(
            f"{path}: is a pickle checkpoint, not safetensors; zoo never unpickles weights "
            "(unpickling can run code). Convert it where you trust it: "
            "safetensors.torch.save_file(state_dict, 'model.safetensors')"
        )


def load_weights(model: Any, path: str | os.PathLike[str], sha256: str | None = None) -> None:
    """Load the safetensors file ``path`` into ``model``, strictly, after checking it."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise WeightsError(f"{path}: weights file not found") from None
    if size < 8:
        raise WeightsError(f"{path}: {CHECKSUM_MISMATCH if sha256 else 'not a safetensors file (too short)'}")
    _refuse_pickle(path)
    if sha256 is not None and sha256_file(path) != sha256:
        raise WeightsError(f"{path}: {CHECKSUM_MISMATCH}")
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a valid safetensors file ({e})") from None
    target = unwrap(model)
    model_shapes = {k: tuple(v.shape) for k, v in target.state_dict().items()}
    problem = describe_mismatch({k: tuple(v.shape) for k, v in tensors.items()}, model_shapes)
    if problem:
        raise WeightsError(f"{path}: does not fit {type(target).__name__}: {problem}")
    target.load_state_dict(tensors, strict=True)
