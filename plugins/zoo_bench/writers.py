"""Benchmark records as a table, JSON, or a CSV whose columns match timm's benchmark.py.

timm's columns (``infer_samples_per_sec``, ``infer_step_time`` in ms, ``infer_batch_size``,
``infer_img_size``, ``infer_gmacs``, ``param_count`` in millions, and the ``train_*`` ones) keep
timm's units and rounding. One difference: zoo's ``*_samples_per_sec`` and ``*_step_time`` come from
the median step, where timm divides by the total elapsed time; zoo's ``*_samples_per_sec_mean`` is
timm's definition. Every row carries its environment.

Figures whose step times spread as interference does (``timing``: p90 or mean over 1.5x the median) are
marked: ``unstable`` in the JSON record and its phases, ``*_unstable`` in the CSV, and ``!`` after
samples/s in the table, with a footnote naming them.
"""

from __future__ import annotations

import csv
import io
from typing import Any

TIMM_COLUMNS = [
    "model",
    "infer_samples_per_sec", "infer_step_time", "infer_batch_size", "infer_img_size", "infer_gmacs",
    "train_samples_per_sec", "train_step_time", "train_batch_size", "train_img_size",
    "param_count",
]  # fmt: skip
PHASE_EXTRAS = ["samples_per_sec_mean", "step_time_p90", "peak_mem_mb", "tflops", "peak_share", "unstable"]
UNSTABLE_MARK = "!"
ENV_COLUMNS = [
    "device", "device_name", "precision", "tf32", "channels_last", "compile", "compile_mode", "runtime", "provider",
    "torch", "cuda", "cudnn", "date", "command",
]  # fmt: skip
CSV_COLUMNS = [
    *TIMM_COLUMNS,
    *(f"{phase}_{extra}" for phase in ("infer", "train") for extra in PHASE_EXTRAS),
    "qualified", "tag", "top1", "top5", "dataset", *ENV_COLUMNS, "error",
]  # fmt: skip


def _round(value: Any, digits: int) -> Any:
    return round(value, digits) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def csv_row(record: dict[str, Any]) -> dict[str, Any]:
    """One record as a flat row with every column of CSV_COLUMNS (empty where not measured)."""
    row: dict[str, Any] = dict.fromkeys(CSV_COLUMNS, "")
    env = record.get("environment") or {}
    row.update(model=record.get("model"), qualified=record.get("qualified"), tag=record.get("tag") or "",
               error=record.get("error") or "")  # fmt: skip
    if record.get("param_count") is not None:
        row["param_count"] = round(record["param_count"] / 1e6, 2)
    for phase in ("infer", "train"):
        result = record.get(phase)
        if not result:
            continue
        row.update({
            f"{phase}_samples_per_sec": _round(result["samples_per_sec"], 2),
            f"{phase}_step_time": _round(result["step_time_ms"], 3),
            f"{phase}_batch_size": result["batch_size"],
            f"{phase}_img_size": env.get("img_size"),
            f"{phase}_samples_per_sec_mean": _round(result["samples_per_sec_mean"], 2),
            f"{phase}_step_time_p90": _round(result["step_time_ms_p90"], 3),
            f"{phase}_peak_mem_mb": _round(result["peak_mem_mb"], 1),
            f"{phase}_tflops": _round(result["tflops"], 4),
            f"{phase}_peak_share": _round(result["peak_share"], 4) if result.get("peak_share") else "",
            f"{phase}_unstable": bool(result.get("unstable")),
        })  # fmt: skip
    if record.get("infer"):
        row["infer_gmacs"] = _round(record.get("gmacs"), 2)
    accuracy = record.get("accuracy") or {}
    row.update({k: accuracy[k] for k in ("top1", "top5", "dataset") if k in accuracy})
    row.update({k: env.get(k, "") if env.get(k) is not None else "" for k in ENV_COLUMNS})
    return row


def to_csv(records: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_row(r) for r in records)
    return out.getvalue()


def _fmt(value: Any, spec: str) -> str:
    return "" if value is None or value == "" else format(value, spec)


def table(records: list[dict[str, Any]]) -> str:
    """The human summary: speed, latency, memory, cost and accuracy, one row per model and phase."""
    from zoo_bench.timing import UNSTABLE_RATIO
    from zoo_core.plugin_api import format_table

    headers = ["model", "phase", "batch", "img", "samples/s", "step ms", "p90 ms", "peak MB", "params M",
               "GMACs", "TFLOP/s", "% peak", "top1", "top5"]  # fmt: skip
    rows, unstable = [], 0
    for r in records:
        env = r.get("environment") or {}
        accuracy = r.get("accuracy") or {}
        phases = [p for p in ("infer", "train") if r.get(p)] or [None]
        for i, phase in enumerate(phases):
            result = (r.get(phase) or {}) if phase else {}
            share = result.get("peak_share")
            mark = UNSTABLE_MARK if result.get("unstable") else ""
            unstable += bool(mark)
            rows.append([
                r.get("model") if i == 0 else "", phase or "-", result.get("batch_size", ""),
                env.get("img_size", ""),
                _fmt(result.get("samples_per_sec"), ",.1f") + mark, _fmt(result.get("step_time_ms"), ".2f"),
                _fmt(result.get("step_time_ms_p90"), ".2f"), _fmt(result.get("peak_mem_mb"), ",.0f"),
                _fmt(r.get("param_count", 0) / 1e6 if i == 0 and "param_count" in r else None, ".2f"),
                _fmt(r.get("gmacs") if i == 0 else None, ".3g"), _fmt(result.get("tflops"), ".3g"),
                _fmt(share * 100 if share else None, ".1f"),
                _fmt(accuracy.get("top1") if i == 0 else None, ".2f"),
                _fmt(accuracy.get("top5") if i == 0 else None, ".2f"),
            ])  # fmt: skip
    lines = [format_table(headers, rows)]
    if unstable:
        lines.append(f"{UNSTABLE_MARK} unstable: p90 or mean step time over {UNSTABLE_RATIO}x the median, as when "
                     "other work shares the machine; rerun on a quiet one")  # fmt: skip
    for r in records:
        if r.get("error"):
            lines.append(f"{r.get('model')}: error: {r['error']}")
        if r.get("registry"):
            lines.append(f"{r.get('model')}: registry entry {r.get('tag')}: {r['registry']}")
    env = next((r["environment"] for r in records if r.get("environment")), None)
    if env:
        flags = [env.get("precision", "")] + [f for f in ("channels_last", "compile") if env.get(f)]
        if env.get("compile_mode") and env.get("compile"):
            flags[-1] = f"compile={env['compile_mode']}"
        lines.append(
            f"{env.get('device_name')} ({env.get('device')}), {' '.join(flags)}, tf32={env.get('tf32')}, "
            f"torch {env.get('torch')}"
            + (f", {env['runtime']} {env.get('provider')} ({env.get('export')} export)"
               if env.get("runtime") not in (None, "torch") else "")
            + (f", CUDA {env['cuda']}" if env.get("device") != "cpu" else "")
            + ("; % peak unknown on CPU" if env.get("device") == "cpu" else "")
        )
    return "\n".join(lines)
