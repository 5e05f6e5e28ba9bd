"""Confusion matrices of registry entries. An entry records its per-class accuracy but not the matrix, so the app
evaluates the weights on the test split they were measured on, with ``zoo eval``'s own function, once per set
of weights (keyed by checksum) for the life of the server. Nothing is written: the matrix lives in memory."""

from __future__ import annotations

import threading
from typing import Any

from zoo_core.plugin_api import UsageError


class Evaluations:
    """``zoo eval``'s report of each entry asked for, computed once."""

    def __init__(self) -> None:
        self._reports: dict[tuple[str, str], dict[str, Any]] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._lock = threading.Lock()

    def report(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The confusion matrix of an entry (``zoo registry show --json``) with its labels and top-1: from its
        metrics where they hold one, else from evaluating it on its dataset's test split."""
        metrics = entry.get("metrics") or {}
        if metrics.get("confusion") and metrics.get("labels"):
            return {"confusion": metrics["confusion"], "labels": metrics["labels"], "top1": metrics.get("top1"),
                    "dataset": metrics.get("dataset"), "split": metrics.get("split"), "evaluated": False}
        key = (str(entry.get("version_ref") or entry["ref"]), str(entry["sha256"]))
        with self._lock:
            if key in self._reports:
                return self._reports[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._reports:
                    return self._reports[key]
            report = self._evaluate(key[0], entry)
            with self._lock:
                self._reports[key] = report
            return report

    @staticmethod
    def _evaluate(ref: str, entry: dict[str, Any]) -> dict[str, Any]:
        training = (entry.get("config") or {}).get("training") or {}
        dataset = (entry.get("metrics") or {}).get("dataset") or training.get("dataset")
        if not dataset:
            raise UsageError(f"{entry['ref']} records no dataset to draw its confusion matrix on")
        from zoo_train.evaluation import evaluate_published

        report = evaluate_published(ref, str(dataset), training.get("data_dir"),
                                    data_options=training.get("data_options") or None)  # fmt: skip
        if "confusion" not in report:
            raise UsageError(f"{entry['ref']} has {len(report['labels'])} classes: too many for a confusion matrix")
        return {"confusion": report["confusion"], "labels": report["labels"], "top1": report["top1"],
                "dataset": report["dataset"], "split": report["split"], "evaluated": True}
