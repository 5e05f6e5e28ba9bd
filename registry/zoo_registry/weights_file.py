"""Safetensors weight files: write a model's state, and load one back only after checking it.

Loading refuses pickle checkpoints without unpickling them, verifies the sha256 when one is expected,
and compares keys and shapes with the model first, so every problem is one WeightsError that names the
file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import WeightsError, records

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
    """Write ``tensors`` as safetensors (``format=pt`` in the header) and fsync it; an I/O error (a full disk)
    is an OSError, as any other write's."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(tensors, str(path), metadata={"format": "pt", **(metadata or {})})
    except SafetensorError as e:  # its Rust code names the OS error only in its message
        code = re.search(r"\(os error (\d+)\)", str(e))
        if code is None:
            raise
        raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(path)) from None
    os.chmod(path, 0o644)  # safetensors creates it private; published weights are meant to be read
    with open(path, "rb") as f:
        os.fsync(f.fileno())


Shapes = dict[str, tuple[int, ...]]
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
MAX_DIMS = 64
U64 = 2**64 - 1  # safetensors keeps sizes and offsets as unsigned 64-bit integers
# Bits per element of every dtype safetensors knows (F4 and F6 pack several elements into a byte).
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32,
    "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}  # fmt: skip
TENSOR = records.obj({
    "dtype": records.string(choices=tuple(DTYPE_BITS), label="a safetensors dtype (F32, F16, BF16, I64, U8, ...)",
                            required=True),
    "shape": records.list_of(records.integer(0, U64), MAX_DIMS, required=True),
    "data_offsets": records.list_of(records.integer(0, U64), 2, min_len=2, required=True),
})  # fmt: skip
HEADER = records.obj({"__metadata__": records.obj(others=records.string(MAX_HEADER), null=True)}, others=TENSOR)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _invalid(where: Any, why: str) -> WeightsError:
    return WeightsError(f"{records.printable(str(where))}: not a valid safetensors file ({why})")


def header_length(head: bytes, size: int, where: Any) -> int:
    """The header length the file's first 8 bytes give, once it fits the file (``size`` bytes) and the limit."""
    if size < 8 or len(head) < 8:
        raise _invalid(where, f"{size} bytes, too short")
    length = int.from_bytes(head[:8], "little")
    if length > MAX_HEADER:
        raise _invalid(where, f"header length {length:,} is above the {MAX_HEADER:,} bytes safetensors allows")
    if 8 + length > size:
        raise _invalid(where, f"header length {length:,} runs past the end of the {size:,}-byte file")
    return length


def check_header(raw: bytes, data_size: int, where: Any) -> dict[str, Any]:
    """The header ``raw`` (its JSON bytes) once it holds what safetensors itself checks: known dtypes, shapes
    that fit their byte ranges, and ranges that tile the ``data_size`` bytes after it with no gap or overlap."""
    if not raw.startswith(b"{"):
        raise _invalid(where, "its header is not a JSON object")
    try:
        # Strict JSON, as safetensors reads it: no NaN or Infinity, which Python's parser would let through.
        header = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise _invalid(where, f"its header is not JSON: {records.printable(str(e), 120)}") from None
    records.check(header, HEADER, where, WeightsError)
    end = 0
    tensors = sorted(((v["data_offsets"], k, v) for k, v in header.items() if k != "__metadata__"),
                     key=lambda t: (t[0][0], t[0][1]))  # fmt: skip
    for (start, stop), name, info in tensors:
        name = records.printable(name, 120)
        if start != end or stop < start:
            raise _invalid(where, f"tensor '{name}' takes bytes {start:,} to {stop:,}, but the one before it "
                                  f"ends at {end:,} (overlapping or missing data)")  # fmt: skip
        bits = DTYPE_BITS[info["dtype"]] * math.prod(info["shape"])
        if bits != 8 * (stop - start):
            fits = bits <= 8 * max(data_size, stop)  # else the count may be too long to print
            needs = f"{bits / 8:,.15g} bytes" if fits else "more bytes than the file has"
            raise _invalid(where, f"tensor '{name}' has {stop - start:,} bytes; a {info['dtype']} tensor of shape "
                                  f"{records.shown(info['shape'])} needs {needs}")  # fmt: skip
        end = stop
    if end != data_size:
        raise _invalid(where, f"its tensors take {end:,} bytes, but {data_size:,} follow the header (truncated "
                              "or padded)")  # fmt: skip
    return header


def header_of_bytes(data: bytes, where: Any) -> dict[str, Any]:
    """The checked header of a whole safetensors file held in memory."""
    length = header_length(data, len(data), where)
    return check_header(data[8 : 8 + length], len(data) - 8 - length, where)


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor name -> dtype, shape, data_offsets; ``__metadata__``),
    read and checked without loading a tensor; one WeightsError line naming the file when it is not valid."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            length = header_length(f.read(8), size, path)
            raw = f.read(length)
    except OSError as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e.strerror or e})") from None
    if len(raw) != length:  # the file shrank while we read it
        raise _invalid(path, "truncated while being read")
    return check_header(raw, size - 8 - length, path)


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
