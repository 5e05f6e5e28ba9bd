"""Turning an eager model into a file: ONNX through torch.onnx (the dynamo exporter, or the TorchScript one),
pt2 through torch.export; and the metadata that lets a consumer use the file with nothing else.

Each function writes one file and says which exporter made it and what it noticed; none decides whether the
file is right (the parity gate does). Exporters print progress and warn freely: that goes to a buffer, and the
warnings that matter (the tracer turning a tensor into a Python value, which is how a forward pass that
branches on its data shows) come back as notes.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INPUT, OUTPUT = "input", "logits"
DYNAMO, TORCHSCRIPT, TORCH_EXPORT = "dynamo", "torchscript", "torch.export"
TORCHSCRIPT_OPSET = 17  # the TorchScript exporter's best-supported opset in torch 2.x
METADATA_KEY = "zoo"  # ONNX metadata_props key (and pt2 extra file name zoo.json) holding the sidecar JSON
# What the tracer says when a forward pass turns a tensor into a Python value: a branch on the data.
DATA_DEPENDENT = ("Converting a tensor to a Python", "data-dependent", "GuardOnDataDependentSymNode",
                  "Could not guard on data-dependent", "Could not extract specialized integer")  # fmt: skip


@dataclass
class Exported:
    """A file an exporter wrote, and what it noticed."""

    path: Path
    exporter: str
    opset: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def branches(self) -> bool:
        """Whether the exporter saw the forward pass branch on its input's values."""
        return any(marker in note for note in self.notes for marker in DATA_DEPENDENT)


@contextlib.contextmanager
def _quiet(notes: list[str]):
    """Exporters' progress prints and warnings go to ``notes``, and their log records (torch.export logs whole
    graphs when it meets a data-dependent branch) nowhere: never to zoo's stdout or the user's terminal."""
    import logging

    buffer = io.StringIO()
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    with (warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(buffer),
          contextlib.redirect_stderr(buffer)):
        warnings.simplefilter("always")
        try:
            yield
        finally:
            logging.disable(disabled)
            for w in caught:
                text = " ".join(str(w.message).split())
                if text not in notes:
                    notes.append(text[:300])


def _batch_dim(example: Any, dynamic: bool) -> Any:
    import torch

    return ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic else None


def onnx_dynamo(model: Any, example: Any, path: Path, *, opset: int | None, dynamic: bool) -> Exported:
    """ONNX through ``torch.onnx.export(dynamo=True)`` (torch.export underneath)."""
    import torch

    notes: list[str] = []
    try:
        with _quiet(notes):
            program = torch.onnx.export(model, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                        dynamic_shapes=_batch_dim(example, dynamic), opset_version=opset,
                                        report=False, verbose=False)  # fmt: skip
            program.save(str(path))
    except Exception as e:  # noqa: BLE001 - the caller tries the other exporter and reports both
        raise ExportFailed(DYNAMO, e, notes) from None
    return Exported(path, DYNAMO, onnx_opset(path), notes)


def onnx_torchscript(model: Any, example: Any, path: Path, *, opset: int | None, dynamic: bool) -> Exported:
    """ONNX through the TorchScript-based exporter (``dynamo=False``): traces one example."""
    import torch

    notes: list[str] = []
    axes = {INPUT: {0: "batch"}, OUTPUT: {0: "batch"}} if dynamic else None
    try:
        with _quiet(notes):
            torch.onnx.export(model, (example,), str(path), dynamo=False, input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes=axes, opset_version=opset or TORCHSCRIPT_OPSET)  # fmt: skip
    except Exception as e:  # noqa: BLE001
        raise ExportFailed(TORCHSCRIPT, e, notes) from None
    return Exported(path, TORCHSCRIPT, onnx_opset(path), notes)


def pt2(model: Any, example: Any, path: Path, *, dynamic: bool, metadata: dict[str, Any]) -> Exported:
    """A torch.export program saved with ``torch.export.save`` (metadata as the extra file ``zoo.json``)."""
    import torch

    notes: list[str] = []
    try:
        with _quiet(notes):
            program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim(example, dynamic))
            torch.export.save(program, str(path), extra_files={f"{METADATA_KEY}.json": json.dumps(metadata)})
    except Exception as e:  # noqa: BLE001
        raise ExportFailed(TORCH_EXPORT, e, notes) from None
    return Exported(path, TORCH_EXPORT, None, notes)


class ExportFailed(Exception):
    """An exporter raised: which one, and its first line."""

    def __init__(self, exporter: str, error: BaseException, notes: list[str]) -> None:
        from zoo_core.plugin_api import first_line

        self.exporter, self.notes = exporter, notes
        # torch.onnx wraps the real failure in a page of advice; its cause says what went wrong
        cause = error.__cause__ if error.__cause__ is not None and "Failed to export" in str(error) else error
        self.reason = first_line(cause, typed=True, limit=240)
        super().__init__(f"{exporter}: {self.reason}")

    @property
    def branches(self) -> bool:
        text = " ".join([self.reason, *self.notes])
        return any(marker in text for marker in DATA_DEPENDENT)


def onnx_opset(path: Path) -> int | None:
    """The default-domain opset an ONNX file imports."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def embed_metadata(path: Path, metadata: dict[str, Any]) -> None:
    """Write the sidecar's JSON into the ONNX file's metadata_props (``zoo``), plus labels and preprocessing
    under keys of their own for consumers that read only those."""
    import onnx

    model = onnx.load(str(path))
    props = {METADATA_KEY: json.dumps(metadata, sort_keys=True)}
    for key in ("labels", "preprocessing", "model"):
        if metadata.get(key) is not None:
            props[key] = json.dumps(metadata[key]) if not isinstance(metadata[key], str) else metadata[key]
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``zoo`` metadata of an exported file (ONNX metadata_props, or a pt2's ``zoo.json``)."""
    path = Path(path)
    if path.suffix == ".pt2":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            name = next((n for n in archive.namelist() if n.endswith(f"extra/{METADATA_KEY}.json")), None)
            return json.loads(archive.read(name)) if name else {}
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    props = {p.key: p.value for p in model.metadata_props}
    return json.loads(props[METADATA_KEY]) if METADATA_KEY in props else {}
