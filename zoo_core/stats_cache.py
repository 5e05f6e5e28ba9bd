"""Parameters and GMACs of catalogue models without building them for real: from the weights' metadata
where it gives them, else counted once on the meta device (no memory, no weights) and cached per plugin
version in ``$ZOO_CACHE/stats/<plugin>-<key>.json`` (the key of the plugin's catalogue cache), so that a
second ``zoo list --sort params`` reads JSON and imports no torch.

A value that cannot be counted (a model that will not build or run on the meta device) is cached as
unknown (null) and not tried again for that plugin version.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_core.atomic_io import atomic_write_json
from zoo_core.catalogue import ModelEntry
from zoo_core.paths import cache_dir

SCHEMA = 1
FIELDS = ("num_params", "gmacs")
SAVE_EVERY_S = 10.0  # an interrupted first count keeps what it has counted
PROGRESS_AFTER = 10  # counting more models than this says so on stderr


@dataclass
class StatsQuery:
    """One model as built with ``kwargs``, measured at ``input_size``; ``known`` are values its metadata gives."""

    entry: ModelEntry
    kwargs: dict[str, Any]
    input_size: tuple[int, int, int]
    known: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        size = "x".join(str(s) for s in self.input_size)
        return f"{self.entry.name}|{json.dumps(self.kwargs, sort_keys=True)}|{size}"


def model_query(entry: ModelEntry) -> StatsQuery:
    """The model as ``create_model(name)`` builds it, at its input size."""
    kwargs = {"num_classes": entry.num_classes}
    return StatsQuery(entry, kwargs, entry.input_size, _known(entry, kwargs, entry.input_size))


def tag_query(entry: ModelEntry, tag: str) -> StatsQuery:
    """The model as the tag's weights need it, at the tag's input size."""
    meta = entry.pretrained[tag]
    kwargs = {"num_classes": meta["num_classes"], **(meta.get("model_kwargs") or {})}
    size = tuple(meta["preprocessing"]["input_size"])
    known = {**_known(entry, kwargs, size), **_from_tag(meta, gmacs=True)}  # type: ignore[arg-type]
    return StatsQuery(entry, kwargs, size, known)  # type: ignore[arg-type]


def _from_tag(meta: dict[str, Any], gmacs: bool) -> dict[str, Any]:
    # The schema's ``gflops`` is torchvision's published figure, which counts a multiply-add once: GMACs.
    out = {"num_params": meta.get("num_params")}
    if gmacs:
        out["gmacs"] = meta.get("gflops")
    return {k: v for k, v in out.items() if v is not None}


def _known(entry: ModelEntry, kwargs: dict[str, Any], size: tuple[int, ...]) -> dict[str, Any]:
    """What a tag built exactly like this query says about it."""
    known: dict[str, Any] = {}
    for meta in entry.pretrained.values():
        built_alike = {"num_classes": meta["num_classes"], **(meta.get("model_kwargs") or {})} == kwargs
        if built_alike:
            same_size = tuple(meta["preprocessing"]["input_size"]) == tuple(size)
            known = {**_from_tag(meta, gmacs=same_size), **known}
    return known


def stats_path(plugin: str) -> Path:
    from zoo_core.plugins import get_host

    return cache_dir() / "stats" / f"{plugin}-{get_host().cache_key(plugin)}.json"


class StatsCache:
    """The cached counts of every plugin a lookup touches, read once and written back atomically."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, dict[str, Any]]] = {}
        self._dirty: set[str] = set()
        self._warned = False

    def counts(self, plugin: str) -> dict[str, dict[str, Any]]:
        if plugin not in self._data:
            self._data[plugin] = _read(stats_path(plugin))
        return self._data[plugin]

    def save(self) -> None:
        for plugin in sorted(self._dirty):
            path = stats_path(plugin)
            merged = {**_read(path), **self._data[plugin]}  # another process may have counted others meanwhile
            try:
                for old in path.parent.glob(f"{plugin}-*.json"):
                    if old != path and re.fullmatch(re.escape(plugin) + r"-[0-9a-f]{16}\.json", old.name):
                        old.unlink(missing_ok=True)  # an older version's counts
                atomic_write_json(path, {"schema": SCHEMA, "stats": merged})
            except OSError as e:  # a read-only cache makes the next list slow again, nothing worse
                if not self._warned:
                    self._warned = True
                    import sys

                    print(f"zoo: warning: cannot write the stats cache ({e.strerror or e})", file=sys.stderr)
        self._dirty.clear()

    def put(self, plugin: str, key: str, values: dict[str, Any]) -> None:
        self.counts(plugin)[key] = {**self.counts(plugin).get(key, {}), **values}
        self._dirty.add(plugin)


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    stats = data.get("stats") if isinstance(data, dict) and data.get("schema") == SCHEMA else None
    return {k: v for k, v in stats.items() if isinstance(v, dict)} if isinstance(stats, dict) else {}


def lookup(
    queries: Iterable[StatsQuery], want: Iterable[str], progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """``{"num_params": int | None, "gmacs": float | None}`` (the fields in ``want``) for each query, in order;
    None where it is unknown. Counts what neither the metadata nor the cache has, and caches it."""
    queries, want = list(queries), [f for f in FIELDS if f in set(want)]
    cache = StatsCache()
    results: list[dict[str, Any]] = []
    todo: list[tuple[int, StatsQuery, list[str]]] = []
    for i, q in enumerate(queries):
        cached = cache.counts(q.entry.plugin).get(q.key, {}) if any(f not in q.known for f in want) else {}
        values = {f: q.known.get(f, cached.get(f)) for f in want}
        missing = [f for f in want if f not in q.known and f not in cached]
        results.append(values)
        if missing:
            todo.append((i, q, missing))
    if not todo:
        return results
    if progress is not None and len(todo) > PROGRESS_AFTER:
        what = " and ".join("parameters" if f == "num_params" else "GMACs" for f in want)
        progress(f"counting {what} of {len(todo)} models on the meta device, once (cached for the next list)")
    last_save = time.monotonic()
    try:
        for n, (i, q, missing) in enumerate(todo, 1):
            counted = count(q, missing)
            cache.put(q.entry.plugin, q.key, counted)
            results[i].update({f: counted[f] for f in missing})
            if progress is not None and len(todo) > PROGRESS_AFTER and n % 100 == 0:
                progress(f"counted {n} of {len(todo)}")
            if time.monotonic() - last_save > SAVE_EVERY_S:
                cache.save()
                last_save = time.monotonic()
    finally:
        cache.save()
    return results


def count(query: StatsQuery, fields: Iterable[str]) -> dict[str, Any]:
    """Build the model on the meta device and count ``fields``; None for what cannot be counted."""
    import warnings

    from zoo_core.model_stats import build_on_meta, count_gmacs, count_params

    fields = list(fields)
    out: dict[str, Any] = dict.fromkeys(fields)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constructor deprecation notes of thousands of models
        try:
            model = build_on_meta(lambda: query.entry.build(**query.kwargs))
        except Exception:  # noqa: BLE001 - a model that cannot be built here is simply unknown
            return out
        if "num_params" in out:
            out["num_params"] = count_params(model)
        if "gmacs" in out:
            try:
                out["gmacs"] = round(count_gmacs(model, tuple(query.input_size)), 4)
            except Exception:  # noqa: BLE001 - data-dependent forwards do not run on the meta device
                pass
    return out
