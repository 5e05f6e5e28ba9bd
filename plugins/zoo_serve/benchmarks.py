"""Benchmark records for the benchmarks page: the files of ``zoo benchmark --json`` given to ``zoo serve
--benchmarks``, and the speed and accuracy that ``zoo benchmark MODEL.TAG --dataset D`` wrote into registry
entries. Each becomes a record in ``zoo benchmark --json``'s shape, with a row of what the page shows: top-1
measured by the benchmark, else the weights' published top-1 (a model benchmarked without weights: its default
tag's, since speed does not depend on the weights), samples/s, and whether it is on the Pareto front of
accuracy against throughput among the rows shown."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import UsageError, ZooError, records

_PHASE = records.obj({"samples_per_sec": records.number(0), "step_time_ms": records.number(0),
                      "batch_size": records.integer(0)})  # fmt: skip
# What the page reads of a record; the rest of it is shown as it is.
RECORD_SPEC = records.list_of(records.obj({
    "model": records.string(500, min_len=1, required=True), "qualified": records.string(500, null=True),
    "tag": records.string(500, null=True), "error": records.string(100_000, null=True),
    "gmacs": records.number(null=True), "param_count": records.integer(0, null=True),
    "infer": records.obj(others=None, null=True), "train": records.obj(others=None, null=True),
    "accuracy": records.obj({"top1": records.number(0, 100, null=True), "dataset": records.string(500, null=True)},
                            null=True),
    "environment": records.obj({"device": records.string(200, null=True),
                                "device_name": records.string(500, null=True),
                                "precision": records.string(50, null=True)}, null=True),
}), 100_000)  # fmt: skip
SORT_KEYS = ("model", "device", "precision", "batch", "img", "samples_per_sec", "step_ms", "top1", "params",
             "gmacs", "source")  # fmt: skip


@dataclass
class Row:
    """A record as the page shows it."""

    record: dict[str, Any]
    source: str  # the file it came from, or "registry"
    top1: float | None = None
    top1_from: str = ""  # "measured" (by the benchmark) or "published" (the weights' metadata)
    pareto: bool = False

    @property
    def phase(self) -> dict[str, Any]:
        return self.record.get("infer") or self.record.get("train") or {}

    @property
    def env(self) -> dict[str, Any]:
        return self.record.get("environment") or {}

    def value(self, key: str) -> Any:
        """The field ``key`` of SORT_KEYS."""
        env, phase = self.env, self.phase
        return {
            "model": self.name, "device": env.get("device_name") or env.get("device"),
            "precision": env.get("precision"), "batch": phase.get("batch_size"), "img": env.get("img_size"),
            "samples_per_sec": phase.get("samples_per_sec"), "step_ms": phase.get("step_time_ms"),
            "top1": self.top1, "params": self.record.get("param_count"), "gmacs": self.record.get("gmacs"),
            "source": self.source,
        }[key]  # fmt: skip

    @property
    def name(self) -> str:
        tag = self.record.get("tag")
        return f"{self.record['model']}.{tag}" if tag and "." not in self.record["model"] else self.record["model"]

    @property
    def measured(self) -> bool:
        return bool(self.phase.get("samples_per_sec")) and not self.record.get("error")


def read_files(paths: list[str]) -> list[tuple[dict[str, Any], str]]:
    """Every record of the ``zoo benchmark --json`` files ``paths``, with the file's name; a file that is not
    such a list is a one-line error naming it (``zoo serve`` stops before it starts)."""
    found = []
    for path in paths:
        try:
            data = records.load(Path(path), RECORD_SPEC)
        except FileNotFoundError:
            raise UsageError(f"--benchmarks {path}: no such file") from None
        except records.RecordError as e:
            raise UsageError(f"--benchmarks {path}: not the output of `zoo benchmark --json` ({e})") from None
        found += [(record, Path(path).name) for record in data]
    return found


def from_registry(entries: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str]]:
    """Records of what ``zoo benchmark MODEL.TAG --dataset D`` wrote into registry entries (``zoo registry list
    --json``), one per device and precision, in ``zoo benchmark --json``'s shape."""
    found = []
    for entry in entries:
        runs = (entry.get("metrics") or {}).get("benchmark") or {}
        for summary in runs.values() if isinstance(runs, dict) else []:
            if not isinstance(summary, dict):
                continue
            env = dict(summary.get("environment") or {})
            env.setdefault("img_size", summary.get("img_size"))
            record = {
                "model": entry["ref"], "qualified": entry.get("model"), "tag": entry.get("tag"),
                "gmacs": summary.get("gmacs"), "error": None, "environment": env,
                "infer": {"samples_per_sec": summary.get("infer_samples_per_sec"),
                          "step_time_ms": summary.get("infer_step_time_ms"),
                          "batch_size": summary.get("infer_batch_size")},
                "accuracy": {k: summary.get(k) for k in ("top1", "top5", "dataset", "split") if k in summary},
            }  # fmt: skip
            found.append((record, "registry"))
    return found


def rows_of(found: list[tuple[dict[str, Any], str]], published: dict[tuple[str, str | None], float]) -> list[Row]:
    """Rows with their top-1: measured, else ``published[(qualified, tag)]`` (tag None: the default tag's)."""
    rows = []
    for record, source in found:
        row = Row(record, source)
        measured = (record.get("accuracy") or {}).get("top1")
        if isinstance(measured, (int, float)):
            row.top1, row.top1_from = float(measured), "measured"
        else:
            key = (str(record.get("qualified") or record["model"]), record.get("tag"))
            if published.get(key) is not None:
                row.top1, row.top1_from = published[key], "published"
        rows.append(row)
    return rows


def choices(rows: list[Row]) -> dict[str, list[str]]:
    """The devices and precisions the rows were measured with, for the page's filters."""
    return {"devices": sorted({str(r.value("device")) for r in rows if r.value("device")}),
            "precisions": sorted({str(r.value("precision")) for r in rows if r.value("precision")})}  # fmt: skip


def select(rows: list[Row], device: str = "", precision: str = "", sort: str = "samples_per_sec",
           descending: bool = True) -> list[Row]:  # fmt: skip
    """The rows of ``device`` and ``precision`` (all when empty), sorted, with the Pareto front marked among
    those with both a top-1 and a throughput."""
    from zoo_serve.charts import pareto_front

    if sort not in SORT_KEYS:
        raise UsageError(f"sort: expected one of {', '.join(SORT_KEYS)}, got {sort!r}")
    kept = [r for r in rows if (not device or r.value("device") == device)
            and (not precision or r.value("precision") == precision)]  # fmt: skip
    plotted = [r for r in kept if r.measured and r.top1 is not None]
    for row, on_front in zip(plotted, pareto_front([(r.top1, r.phase["samples_per_sec"]) for r in plotted]),
                             strict=True):  # fmt: skip
        row.pareto = on_front
    known = sorted((r for r in kept if r.value(sort) is not None), key=lambda r: r.value(sort), reverse=descending)
    return known + [r for r in kept if r.value(sort) is None]


def collect(from_files: list[tuple[dict[str, Any], str]]) -> list[Row]:
    """The rows of every benchmark record: those of the files given to ``zoo serve``, and the registry's."""
    from zoo_serve import answers

    found = list(from_files) + from_registry(answers.registry_entries())
    return rows_of(found, published_top1({str(r.get("qualified") or r["model"]) for r, _ in found}))


def published_top1(models: set[str]) -> dict[tuple[str, str | None], float]:
    """(model, tag) -> the top-1 that tag's metadata publishes, from ``zoo list MODEL.* --tags --json``; (model,
    None) is the default tag's. Models the catalogue does not have are left out."""
    from zoo_serve import answers

    found: dict[tuple[str, str | None], float] = {}
    patterns = []
    for model in sorted(models):
        try:
            patterns.append(f"{answers.checked(model).entry.qualified}.*")
        except ZooError:
            continue
    if not patterns:
        return found
    for row in answers.cli_json("list", "--tags", "--json", "--", *patterns):
        if row.get("top1") is None:
            continue
        found[(row["model"], row["tag"])] = row["top1"]
        if row.get("default"):
            found[(row["model"], None)] = row["top1"]
    return found
