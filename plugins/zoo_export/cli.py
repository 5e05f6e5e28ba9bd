"""``zoo export``: parse, call ``zoo_export.verified``, print."""

from __future__ import annotations

from typing import Any

import click

from zoo_core.plugin_api import Choice, echo_json, json_option, model_argument, the_model


def _say(text: str) -> None:
    click.echo(f"zoo: {text}", err=True)


@click.command("export")
@model_argument
@click.option("--format", "fmt", type=Choice(("onnx", "pt2")), default="onnx", show_default=True,
              help="ONNX (run by onnxruntime) or a torch.export program (torch.export.load).")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False),
              help="Also write the export here, and its metadata to OUT.json.")
@click.option("--batch", default="dynamic", show_default=True, metavar="dynamic|N",
              help="The batch size the file takes.")
@click.option("--opset", type=int, help="ONNX opset (default: the exporter's).")
@click.option("--dataset", "--data", "dataset", metavar="NAME",
              help="Check parity on this dataset's test split (default: the weights' own, else generated images).")
@click.option("--data-dir", help="The folder of --dataset or --calib, where it needs one.")
@click.option("--int8", is_flag=True, help="Quantize the verified ONNX export to int8 (static, QDQ, per channel).")
@click.option("--calib", metavar="DATASET", help="With --int8: calibrate on its train split, judge on its test split.")
@click.option("--calib-images", type=int, default=256, show_default=True, help="With --int8: pictures to calibrate on.")
@click.option("--max-drop", type=float, default=1.0, show_default=True,
              help="With --int8: the most top-1 points the int8 model may lose.")
@click.option("--force", is_flag=True, help="Export again even when a verified export is stored.")
@json_option
def export_cmd(model: str | None, model_option: str | None, fmt: str, out: str | None, batch: str,
               opset: int | None, dataset: str | None, data_dir: str | None, int8: bool, calib: str | None,
               calib_images: int, max_drop: float, force: bool, as_json: bool) -> None:  # fmt: skip
    """Export MODEL[.TAG] to ONNX or pt2, kept only if it computes what the model computes (the parity gate).

    \b
    zoo export resnet18.imagenet1k_v1 --format onnx --out r18.onnx
    zoo export simplecnn.run1 --int8 --calib digits
    zoo export hf-hub:alice/digits --format pt2 --out digits.pt2
    """
    from zoo_core.plugin_api import UsageError
    from zoo_export.verified import export, export_int8

    name = the_model(model, model_option)
    if int8:
        if fmt != "onnx" or batch != "dynamic" or opset is not None:
            raise UsageError("--int8 quantizes the ONNX export of a dynamic batch: drop --format pt2, --batch, --opset")
        outcome = export_int8(name, calib=calib, data_dir=data_dir, max_drop=max_drop, calib_images=calib_images,
                              out=out, force=force, log=_say)  # fmt: skip
    else:
        if calib is not None:
            raise UsageError("--calib is for --int8")
        outcome = export(name, fmt=fmt, batch=batch, opset=opset, dataset=dataset, data_dir=data_dir, out=out,
                         force=force, log=_say)  # fmt: skip
    stored = outcome.stored
    if as_json:
        echo_json({**stored.to_dict(), "reused": outcome.reused, "copies": [str(p) for p in outcome.copies]})
        return
    click.echo(_describe(stored.record, outcome.reused))
    click.echo(f"  stored   {stored.file}")
    for path in outcome.copies:
        click.echo(f"  written  {path}")


def _describe(record: dict[str, Any], reused: bool) -> str:
    """The export in a few lines: what, how, and what the gate (or the budget) found."""
    what = f"{'int8 ' if record.get('int8') else ''}{record['format'].upper()} export of {record['model']}"
    how = record["exporter"] + (f", opset {record['opset']}" if record.get("opset") else "")
    lines = [f"{'reused verified' if reused else 'verified'} {what} ({how}, {record['size_bytes']:,} bytes)"]
    if record.get("exporter_fallback"):
        lines.append(f"  note     not the dynamo exporter's file: {record['exporter_fallback']}")
    parity = record.get("parity")
    if parity:
        lines.append(f"  parity   {parity['images']} {parity['source']} images at batch "
                     f"{' and '.join(map(str, parity['batches']))}: top-1 agrees on all ({parity['ties']} ties), "
                     f"max |Δlogit| {parity['max_abs_diff']:.3g} (tolerance {parity['tolerance']['atol']} + "
                     f"{parity['tolerance']['rtol']} x max|logit|)")  # fmt: skip
    q = record.get("quantization")
    if q:
        e = q["evaluation"]
        lines.append(f"  int8     top-1 {e['int8_top1']}% vs {e['fp32_top1']}% on {e['dataset']} {e['split']} "
                     f"(drop {e['drop']:.2f}, budget {e['max_drop']}); {q['size_ratio']}x smaller; "
                     f"{len(q['excluded_nodes'])} layer(s) left in float; calibrated on {q['calibration']['images']} "
                     f"{q['calibration']['dataset']} {q['calibration']['split']} images")  # fmt: skip
    latency = record.get("latency")
    if latency and "export_ms" in latency:
        lines.append(f"  latency  batch 1: {latency['export_ms']:.3g} ms ({latency['runtime']}) vs "
                     f"{latency['eager_ms']:.3g} ms eager, {latency['threads']} threads")  # fmt: skip
    elif latency and "int8_ms" in latency:
        lines.append(f"  latency  batch 1: {latency['int8_ms']:.3g} ms int8 vs {latency['fp32_ms']:.3g} ms fp32 "
                     f"(onnxruntime)")  # fmt: skip
    return "\n".join(lines)
