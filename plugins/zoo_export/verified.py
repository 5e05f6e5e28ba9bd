"""Verified export: resolve the weights, export them, run the parity gate, and keep only what passed.

``export`` is ``zoo export`` as a function: a stored export of the same weights and variant is reused; else the
model is exported into a staging folder of the registry (ONNX: the dynamo exporter first, the TorchScript one
when dynamo fails or disagrees), the file carries its metadata, the gate runs it against the eager model, and
only a file that passed is stored (``zoo_registry.exports``) and copied to ``--out``. A refused export leaves no
file and registers nothing. ``verify_module`` is the gate on its own, for a model in memory (the coverage
benchmark's seeded random weights). ``export_int8`` quantizes a verified ONNX export within an accuracy budget.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import UsageError
from zoo_export.parity import ExportRefused

FORMATS = ("onnx", "pt2")
LogFn = Callable[[str], None]


@dataclass
class Verified:
    """An export that passed the parity gate, not yet stored."""

    path: Path
    fmt: str
    exporter: str
    opset: int | None
    parity: Any  # zoo_export.parity.Parity
    fallback: str | None = None  # why the dynamo exporter's file was not the one kept
    notes: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What ``export`` did: the stored export, whether it was already there, and the copies written."""

    stored: Any  # zoo_registry.exports.StoredExport
    reused: bool
    copies: list[Path] = field(default_factory=list)
    fallback: str | None = None


def parse_batch(batch: str | int | None) -> int | None:
    """``dynamic`` (None) or a fixed batch size."""
    if batch is None or str(batch).lower() == "dynamic":
        return None
    try:
        value = int(batch)
    except (TypeError, ValueError):
        raise UsageError(f"--batch must be 'dynamic' or a number, got {batch!r}") from None
    if not 1 <= value <= 4096:
        raise UsageError(f"--batch must be from 1 to 4096, got {value}")
    return value


def variant_name(fmt: str, batch: int | None = None, opset: int | None = None, int8: bool = False) -> str:
    """The store's name for what makes one export of some weights differ from another."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    parts = [fmt]
    if opset is not None:
        parts.append(f"opset{opset}")
    if batch is not None:
        parts.append(f"batch{batch}")
    if int8:
        parts.append("int8")
    return "-".join(parts)


def state_digest(model: Any) -> str:
    """sha256 of a model's weights as loaded (names, dtypes, shapes and bytes, in name order): the address of
    weights that come with no file checksum (torchvision's, timm's, a plugin's)."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _example(images: Any, fixed: int | None) -> Any:
    """The input an exporter traces: two pictures for a dynamic batch (a batch of 1 would be specialised)."""
    import torch

    n = fixed or 2
    rows = images[:n]
    if rows.shape[0] < n:
        rows = torch.cat([rows] * (n // rows.shape[0] + 1))[:n]
    return rows.contiguous()


def _refusal(what: str, attempts: list[tuple[str, str]], branches: bool) -> ExportRefused:
    tried = "; ".join(f"{exporter}: {text}" for exporter, text in attempts)
    hint = ": the model branches on its input" if branches and "branches on its input" not in tried else ""
    return ExportRefused(f"{what}: export refused, nothing kept ({tried}){hint}")


def verify_module(model: Any, images: Any, workdir: Path, *, fmt: str = "onnx", batch: int | None = None,
                  opset: int | None = None, metadata: dict[str, Any] | None = None, what: str = "model",
                  exporters: tuple[str, ...] | None = None) -> Verified:  # fmt: skip
    """Export ``model`` into ``workdir`` and run the parity gate on ``images`` (``ParityImages``); the file of
    the first exporter that passes is returned, or ExportRefused says in one line what each one did."""
    from zoo_export import exporters as ex
    from zoo_export.parity import batch_sizes, check, eager_runner

    model.eval()
    reference = eager_runner(model)
    sizes = batch_sizes(batch, len(images))
    example = _example(images.tensors, batch)
    attempts: list[tuple[str, str]] = []
    branches = False
    if fmt == "pt2":
        candidates = [ex.TORCH_EXPORT]
    else:
        candidates = list(exporters or (ex.DYNAMO, ex.TORCHSCRIPT))
    for exporter in candidates:
        path = workdir / (f"{exporter.replace('.', '_')}.{fmt}")
        try:
            if exporter == ex.TORCH_EXPORT:
                exported = ex.pt2(model, example, path, dynamic=batch is None, metadata=metadata or {})
            elif exporter == ex.DYNAMO:
                exported = ex.onnx_dynamo(model, example, path, opset=opset, dynamic=batch is None)
            else:
                exported = ex.onnx_torchscript(model, example, path, opset=opset, dynamic=batch is None)
            if fmt == "onnx" and metadata is not None:
                ex.embed_metadata(path, metadata)  # the gate runs the very file that is kept
            parity = check(reference, _runner(path, fmt), images.tensors, sizes, images.source)
        except ex.ExportFailed as e:
            branches |= e.branches
            attempts.append((e.exporter, f"failed: {e.reason}"))
            path.unlink(missing_ok=True)
            continue
        except Exception as e:  # noqa: BLE001 - a file the runtime cannot load or run is a failed export too
            from zoo_core.plugin_api import first_line

            attempts.append((exporter, f"cannot run the export: {first_line(e, typed=True, limit=200)}"))
            path.unlink(missing_ok=True)
            continue
        parity.branches = exported.branches
        branches |= exported.branches
        if parity.passed:
            fallback = "; ".join(f"{e}: {t}" for e, t in attempts) or None
            return Verified(path, fmt, exported.exporter, exported.opset, parity, fallback, exported.notes)
        attempts.append((exporter, parity.summary()))
        path.unlink(missing_ok=True)
    raise _refusal(what, attempts, branches)


def _runner(path: Path, fmt: str) -> Callable[[Any], Any]:
    """numpy in, numpy out: onnxruntime on the CPU for ONNX, the loaded exported program for pt2."""
    if fmt == "onnx":
        from zoo_export.runtime import session

        s = session(path)
        name = s.get_inputs()[0].name
        return lambda x: s.run(None, {name: x})[0]
    import torch

    module = torch.export.load(str(path)).module()

    def run(x: Any) -> Any:
        with torch.inference_mode():
            out = module(torch.from_numpy(x))
        return (out[0] if isinstance(out, (tuple, list)) else out).float().numpy()

    return run


def sidecar(found: Any, sha256: str, fmt: str, batch: int | None, labels: list[str],
            num_classes: int) -> dict[str, Any]:  # fmt: skip
    """What a consumer needs beside the file: the weights, labels, preprocessing, and the input and output."""
    from zoo_core import __version__

    pre = found.weights.preprocessing
    return {
        "model": found.qualified, "format": fmt, "weights": {"ref": found.qualified, "sha256": sha256},
        "labels": labels or None, "num_classes": num_classes, "preprocessing": pre.to_dict(),
        "input": {"name": "input", "shape": ["batch" if batch is None else batch, *pre.input_size],
                  "dtype": "float32", "layout": "NCHW", "normalised": "(pixel / 255 - mean) / std"},
        "output": {"name": "logits", "shape": ["batch" if batch is None else batch, num_classes]},
        "zoo_version": __version__,
    }  # fmt: skip


def _eager(found: Any, model: Any) -> Any:
    from zoo_core import create_model

    return (model if model is not None else create_model(found.ref)).eval()


def _labels(weights: Any, model: Any) -> list[str]:
    labels = list(weights.labels) or list((getattr(model, "pretrained_cfg", None) or {}).get("label_names") or [])
    return labels if len(labels) == weights.num_classes else []


def _require(fmt: str) -> None:
    """ONNX needs the export extra; pt2 needs torch alone."""
    if fmt == "onnx":
        from zoo_export.extra import require

        require("onnx", "onnxscript", "onnxruntime")


def write_copies(stored: Any, out: str | os.PathLike[str] | None) -> list[Path]:
    """``--out FILE``: the export and its sidecar ``FILE.json``, each written atomically."""
    if not out:
        return []
    import json

    from zoo_core.plugin_api import write_output

    out = Path(out)
    write_output(out, stored.file.read_bytes(), "--out")
    side = out.with_name(out.name + ".json")
    write_output(side, json.dumps({**stored.record, "file": out.name}, indent=2, sort_keys=True) + "\n", "--out")
    return [out, side]


def export(name: Any, *, fmt: str = "onnx", batch: str | int | None = None, opset: int | None = None,
           dataset: str | None = None, data_dir: str | None = None, out: str | os.PathLike[str] | None = None,
           force: bool = False, model: Any = None, log: LogFn | None = None) -> Outcome:  # fmt: skip
    """A verified export of ``name``'s weights (any name form; the default tag for a bare model): reused from
    the registry when stored, else made, gated and stored; ``out`` also gets a copy and its sidecar JSON."""
    from zoo_registry import exports

    from zoo_core import resolve_weights
    from zoo_core.plugin_api import check_output

    _require(fmt)
    fixed = parse_batch(batch)
    if opset is not None and fmt != "onnx":
        raise UsageError("--opset is for --format onnx")
    if opset is not None and not 7 <= opset <= 30:
        raise UsageError(f"--opset must be from 7 to 30, got {opset}")
    variant = variant_name(fmt, fixed, opset)
    if out:
        check_output(out, "--out")
    found = resolve_weights(name)
    weights = found.weights
    eager = None
    sha256 = weights.sha256
    if sha256 is None:  # weights without a file checksum are addressed by their loaded tensors
        eager = _eager(found, model)
        sha256 = state_digest(eager)
    stored = exports.find(sha256, variant)
    if stored is not None and not force:
        return Outcome(stored, True, write_copies(stored, out))
    from zoo_export.images import parity_images
    from zoo_export.latency import batch1

    eager = eager if eager is not None else _eager(found, model)
    images = parity_images(weights.preprocessing, dataset=dataset, data_dir=data_dir,
                           known_dataset=weights.metrics.get("dataset"), warn=log)  # fmt: skip
    labels = _labels(weights, eager)
    metadata = sidecar(found, sha256, fmt, fixed, labels, weights.num_classes)
    staging = exports.staging_dir(sha256, variant)
    try:
        verified = verify_module(eager, images, staging, fmt=fmt, batch=fixed, opset=opset, metadata=metadata,
                                 what=found.display)  # fmt: skip
        kept = staging / exports.FORMATS[fmt]
        os.replace(verified.path, kept)
        run = _runner(kept, fmt)
        latency = batch1(eager, run, images.tensors) if fixed in (None, 1) else None
        if latency is not None:
            latency["runtime"] = "onnxruntime CPUExecutionProvider" if fmt == "onnx" else "torch.export (eager)"
        from zoo_registry.weights_file import sha256_file

        record = {
            **metadata, "variant": variant, "file": kept.name, "sha256": sha256_file(kept),
            "size_bytes": kept.stat().st_size, "exporter": verified.exporter, "opset": verified.opset,
            "int8": False, "parity": verified.parity.to_dict(), "latency": latency,
            "exporter_fallback": verified.fallback, "versions": _versions(fmt),
        }  # fmt: skip
        stored = exports.store(staging, record, replace=force)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Outcome(stored, False, write_copies(stored, out), verified.fallback)


def _versions(fmt: str) -> dict[str, Any]:
    import torch

    from zoo_core.plugin_api import environment

    versions = {"torch": torch.__version__}
    if fmt == "onnx":
        import onnx
        import onnxruntime

        versions.update(onnx=onnx.__version__, onnxruntime=onnxruntime.__version__)
    versions["cpu"] = environment("cpu")["cpu_name"]
    return versions


def export_int8(name: Any, *, calib: str | None = None, data_dir: str | None = None, max_drop: float = 1.0,
                calib_images: int = 256, out: str | os.PathLike[str] | None = None, force: bool = False,
                model: Any = None, default_calib: str | None = None, log: LogFn | None = None) -> Outcome:  # fmt: skip
    """int8 ONNX of ``name``'s weights: static QDQ per-channel quantization of their verified fp32 export,
    calibrated on ``calib_images`` pictures of ``calib``'s train split and kept only if top-1 on its test split
    drops by at most ``max_drop`` points (after leaving the most sensitive layers in float, if needed). Without
    ``calib``, a stored int8 export is reused whatever it was calibrated on; a new one is calibrated on the
    weights' own dataset, else ``default_calib``."""
    from zoo_registry import exports

    from zoo_core import resolve_weights
    from zoo_core.plugin_api import check_output

    if not 0 <= max_drop <= 100:
        raise UsageError(f"--max-drop is in top-1 points, from 0 to 100, got {max_drop}")
    if calib_images < 16:
        raise UsageError(f"--calib-images must be at least 16, got {calib_images}")
    if out:
        check_output(out, "--out")
    found = resolve_weights(name)
    weights = found.weights
    dataset = calib or weights.metrics.get("dataset") or default_calib
    fp32 = export(found, fmt="onnx", model=model, log=log)
    sha256 = fp32.stored.record["weights"]["sha256"]
    variant = variant_name("onnx", int8=True)
    stored = exports.find(sha256, variant)
    if stored is not None and not force:
        kept = (stored.record.get("quantization") or {}).get("calibration", {}).get("dataset")
        if calib is None or kept == calib:
            return Outcome(stored, True, write_copies(stored, out))
    if not dataset:
        raise UsageError(f"{found.display}: no int8 export yet, and its weights name no dataset to calibrate on; "
                         f"make one: zoo export {found.display} --int8 --calib DATASET")  # fmt: skip
    from zoo_export.exporters import embed_metadata
    from zoo_export.quantize import quantize_within_budget

    staging = exports.staging_dir(sha256, variant)
    try:
        kept = staging / exports.FORMATS["onnx"]
        quantization = quantize_within_budget(found, fp32.stored.file, kept, dataset, data_dir, max_drop=max_drop,
                                              calib_images=calib_images, workdir=staging, log=log)  # fmt: skip
        metadata = {**{k: v for k, v in fp32.stored.record.items() if k in _SIDECAR_KEYS}, "int8": True}
        embed_metadata(kept, metadata)
        from zoo_registry.weights_file import sha256_file

        from zoo_export.latency import median_ms
        from zoo_export.runtime import session

        s8, s32 = session(kept), session(fp32.stored.file)
        x = _one_input(weights.preprocessing)
        int8_ms = median_ms(lambda: s8.run(None, {"input": x}))
        fp32_ms = median_ms(lambda: s32.run(None, {"input": x}))
        size = kept.stat().st_size
        quantization["size_ratio"] = round(fp32.stored.record["size_bytes"] / size, 3)
        record = {
            **metadata, "variant": variant, "file": kept.name, "sha256": sha256_file(kept), "size_bytes": size,
            "exporter": f"onnxruntime.quantization (from {fp32.stored.record['exporter']})",
            "opset": fp32.stored.record.get("opset"), "quantization": quantization,
            "parity": None, "fp32_export": {"variant": fp32.stored.variant, "sha256": fp32.stored.record["sha256"],
                                            "size_bytes": fp32.stored.record["size_bytes"]},
            "latency": {"batch": 1, "int8_ms": round(int8_ms, 4), "fp32_ms": round(fp32_ms, 4),
                        "ratio": round(int8_ms / fp32_ms, 4), "runtime": "onnxruntime CPUExecutionProvider"},
            "versions": _versions("onnx"),
        }  # fmt: skip
        for leftover in staging.iterdir():
            if leftover != kept:
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
        stored = exports.store(staging, record, replace=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Outcome(stored, False, write_copies(stored, out))


_SIDECAR_KEYS = ("model", "format", "weights", "labels", "num_classes", "preprocessing", "input", "output",
                 "zoo_version")  # fmt: skip


def _one_input(pre: Any) -> Any:
    import numpy as np

    return np.random.default_rng(0).standard_normal((1, *pre.input_size)).astype(np.float32)


def runtime_model(name: Any, *, int8: bool = False, default_calib: str | None = None, data_dir: str | None = None,
                  device: Any = "cpu", model: Any = None, log: Any = None) -> Any:  # fmt: skip
    """The registered verified ONNX export of ``name``'s weights as an ``OnnxModule`` (int8: the int8 one), made
    (and verified) first when there is none; an int8 one is calibrated on the weights' own dataset, else on
    ``default_calib``. ``model``: the eager model, when the caller has built it already."""
    from zoo_export.runtime import onnx_module, provider_for

    provider = provider_for(device)
    if model is not None and any(p.device.type != "cpu" for p in model.parameters()):
        model = None  # exports are made and checked on the CPU: build a copy there rather than move the caller's
    if int8:
        outcome = export_int8(name, default_calib=default_calib, data_dir=data_dir, model=model, log=log)
    else:
        outcome = export(name, fmt="onnx", model=model, log=log)
    module = onnx_module(outcome.stored.file, provider=provider)
    module.zoo_runtime.update(export=outcome.stored.variant, int8=int8, reused=outcome.reused)
    return module
