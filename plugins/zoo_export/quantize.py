"""int8 within an accuracy budget: static quantization of a verified ONNX export with onnxruntime.

QDQ format, weights int8 per channel, activations uint8, ranges calibrated (MinMax) on pictures of the dataset's
train split, never on the split the budget is measured on. The int8 file is then evaluated on the test split
exactly as ``zoo eval`` evaluates the weights (``zoo_train.evaluation``), against the eager weights' own top-1.
When it loses more than the budget, the layers whose quantization alone disturbs the logits most are left in
float, one, two, four... of them, until it fits; past half of the layers it is refused: that is not int8.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

QUANTIZABLE = ("Conv", "Gemm", "MatMul", "ConvTranspose")
SENSITIVITY_IMAGES = 32


def _reader(inputs: Any, batch: int = 16) -> Any:
    """A CalibrationDataReader over preprocessed pictures (numpy N x C x H x W)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([inputs[i:i + batch] for i in range(0, len(inputs), batch)])

        def get_next(self) -> dict[str, Any] | None:
            chunk = next(self.batches, None)
            return None if chunk is None else {"input": chunk}

    return Reader()


def _quantize(source: Path, target: Path, inputs: Any, exclude: list[str] | None = None,
              only: list[str] | None = None) -> None:  # fmt: skip
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(str(source), str(target), _reader(inputs), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    nodes_to_exclude=exclude or [], nodes_to_quantize=only or [])  # fmt: skip


def _prepared(source: Path, workdir: Path) -> Path:
    """The fp32 model with shapes inferred and its graph optimised, as onnxruntime's quantizer advises; the model
    as it is where that step fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    target = workdir / "prepared.onnx"
    try:
        quant_pre_process(str(source), str(target))
        return target
    except Exception:  # noqa: BLE001 - the preprocessing is an optimisation, not a requirement
        return source


def quantizable_nodes(path: Path) -> list[str]:
    import onnx

    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type in QUANTIZABLE and n.name]


def sensitivity(source: Path, inputs: Any, workdir: Path) -> list[tuple[str, float]]:
    """Each quantizable node with the mean squared change of the logits when it alone is quantized, most
    disturbing first."""
    import numpy as np

    from zoo_export.runtime import session

    sample = inputs[:SENSITIVITY_IMAGES]
    reference = session(source).run(None, {"input": sample})[0]
    scores = []
    for node in quantizable_nodes(source):
        target = workdir / "one-node.onnx"
        _quantize(source, target, sample, only=[node])
        out = session(target).run(None, {"input": sample})[0]
        scores.append((node, float(np.mean((out - reference) ** 2))))
    target = workdir / "one-node.onnx"
    target.unlink(missing_ok=True)
    return sorted(scores, key=lambda item: -item[1])


def quantize_within_budget(found: Any, fp32: Path, target: Path, dataset: str, data_dir: str | None, *,
                           max_drop: float, calib_images: int, workdir: Path,
                           log: Callable[[str], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Write the int8 model of ``fp32`` to ``target`` and return the quantization record; ExportRefused when
    it cannot keep top-1 within ``max_drop`` points on ``dataset``'s test split."""
    import numpy as np
    from zoo_train.evaluation import evaluate_published

    from zoo_core.plugin_api import UsageError, load_dataset
    from zoo_export.images import dataset_images
    from zoo_export.parity import ExportRefused
    from zoo_export.runtime import onnx_module

    data = load_dataset(dataset, data_dir, decode=False, for_training=False)
    calib_split = next((s for s in ("train", "val") if s in data.splits and s != data.eval_split), None)
    if calib_split is None:
        raise UsageError(f"dataset {data.name} has only its {data.eval_split} split: int8 is calibrated on a train "
                         f"split and judged on the test split, never both on one")  # fmt: skip
    pre = found.weights.preprocessing
    calib = dataset_images(pre, dataset, data_dir, calib_images, split_name=calib_split)
    inputs = np.ascontiguousarray(calib.tensors.numpy(), dtype=np.float32)
    source = _prepared(fp32, workdir)
    say = log or (lambda _: None)

    baseline = evaluate_published(found.ref, dataset, data_dir)
    tries: list[dict[str, Any]] = []

    def attempt(excluded: list[str]) -> float:
        _quantize(source, target, inputs, exclude=excluded)
        report = evaluate_published(found.ref, dataset, data_dir, module=onnx_module(target))
        drop = round(baseline["top1"] - report["top1"], 4)
        tries.append({"excluded": len(excluded), "top1": report["top1"], "drop": drop})
        say(f"int8 with {len(excluded)} layer(s) left in float: top-1 {report['top1']}% "
            f"({drop:+.2f} points from {baseline['top1']}%)")  # fmt: skip
        return drop

    excluded: list[str] = []
    drop = attempt(excluded)
    ranking: list[tuple[str, float]] = []
    if drop > max_drop:
        ranking = sensitivity(source, inputs, workdir)
        limit = len(ranking) // 2
        count = 1
        while drop > max_drop and count <= limit:
            excluded = [name for name, _ in ranking[:count]]
            drop = attempt(excluded)
            count *= 2
    if drop > max_drop:
        target.unlink(missing_ok=True)
        raise ExportRefused(
            f"{found.display}: int8 refused, nothing kept: top-1 drops {drop:.2f} points on {baseline['dataset']} "
            f"{baseline['split']} ({baseline['top1']}% -> {tries[-1]['top1']}%), over the budget of {max_drop}, even "
            f"with the {len(excluded)} most sensitive of {len(ranking) or len(quantizable_nodes(source))} layers "
            f"left in float"
        )
    if source != fp32:
        source.unlink(missing_ok=True)
    return {
        "format": "QDQ", "per_channel": True, "activations": "uint8", "weights": "int8", "method": "MinMax",
        "calibration": {"dataset": baseline["dataset"], "split": calib_split, "images": len(calib),
                        "selection": "evenly spaced over the split"},
        "evaluation": {"dataset": baseline["dataset"], "split": baseline["split"],
                       "num_samples": baseline["num_samples"], "fp32_top1": baseline["top1"],
                       "int8_top1": tries[-1]["top1"], "drop": drop, "max_drop": max_drop},
        "excluded_nodes": excluded, "tries": tries,
    }  # fmt: skip
