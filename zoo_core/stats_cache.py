"""Parameters and GMACs of catalogue models without building them for real: from the weights' metadata
where it gives them, else from the counts zoo ships for its built-in plugins (``zoo_core/data/
model_stats.json``, written by ``benchmarks/model_stats.py``), else counted once on the meta device (no
memory, no weights) and cached per plugin version in ``$ZOO_CACHE/stats/<plugin>-<key>.json`` (the key of
the plugin's catalogue cache), so that a second ``zoo list --sort params`` reads JSON and imports no torch.

The shipped counts of a plugin are used only where they were counted with the versions of torch and of the
plugin's library (torchvision, timm) installed here and with the plugin's code as it is here
(``zoo_core.shipped``); otherwise its models are counted live.

A model with lazy modules (``nn.LazyLinear``) gets its shapes from one dry run at its input size, on the
meta device, else on the CPU without gradients. A value that cannot be counted (a model that will not build
or run) is cached as unknown (null) and not tried again for that plugin version.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_core import records
from zoo_core.atomic_io import atomic_write_json
from zoo_core.catalogue import ModelEntry
from zoo_core.paths import cache_dir
from zoo_core.shipped import matches

SCHEMA = 1
FIELDS = ("num_params", "gmacs")
SAVE_EVERY_S = 10.0  # an interrupted first count keeps what it has counted
PROGRESS_AFTER = 10  # counting more models than this says so on stderr
PROGRESS_EVERY_S = 15.0  # and how far it has got, this often
SHIPPED_PATH = Path(__file__).resolve().parent / "data" / "model_stats.json"
SHIPPED_SCHEMA = 1
# What counting costs on a 2-core CPU, for the estimate printed first: seconds per model on the meta device
# (timm's catalogue, median), and the imports of torch and a model library when they are not imported yet.
SECONDS_PER_MODEL = {"num_params": 0.08, "gmacs": 0.17}
STARTUP_S = 2.5


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
    """The model as ``create_model(name)`` builds it, at its input size (counts its plugin declares for it, too)."""
    kwargs = {"num_classes": entry.num_classes}
    declared = {f: entry.metadata[f] for f in FIELDS if entry.metadata.get(f) is not None}
    return StatsQuery(entry, kwargs, entry.input_size, {**declared, **_known(entry, kwargs, entry.input_size)})


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


# -- the counts shipped for the built-in plugins ----------------------------------------------------------


@functools.cache
def _read_shipped(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    plugins = data.get("plugins") if isinstance(data, dict) and data.get("schema") == SHIPPED_SCHEMA else None
    return plugins if isinstance(plugins, dict) else {}


@functools.cache
def _shipped_for(path: Path, plugin: str, module: str) -> dict[str, dict[str, Any]]:
    section = _read_shipped(path).get(plugin)
    if not matches(section, module) or not isinstance(section.get("stats"), dict):
        return {}  # counted with other libraries or other plugin code: trusting it could show wrong numbers
    return {k: v for k, v in section["stats"].items() if isinstance(v, dict)}


def shipped(plugin: str) -> dict[str, dict[str, Any]]:
    """The counts zoo ships for a built-in plugin's models, by query key; empty for any other plugin and where
    they were counted with other library versions or other plugin code than this installation's."""
    from zoo_core.plugins import get_host

    info = get_host(entries=False).infos.get(plugin)
    if info is None or not info.builtin:
        return {}
    return _shipped_for(SHIPPED_PATH, plugin, info.module)


# -- the counts of this installation --------------------------------------------------------------------


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
                    print(f"zoo: warning: cannot write the stats cache ({e.strerror or e})", file=sys.stderr)
        self._dirty.clear()

    def put(self, plugin: str, key: str, values: dict[str, Any]) -> None:
        self.counts(plugin)[key] = {**self.counts(plugin).get(key, {}), **values}
        self._dirty.add(plugin)


# A count is null where it could not be made (see ``count``).
COUNTS_SPEC = records.obj({"num_params": records.integer(0, null=True), "gmacs": records.number(0, null=True)})
CACHE_SPEC = records.obj({
    "schema": records.version(SCHEMA, required=True),
    "stats": records.obj(others=COUNTS_SPEC, max_len=10**6, required=True),
})  # fmt: skip


def _read(path: Path) -> dict[str, dict[str, Any]]:
    """The counts cached at ``path``; none when the file is missing or not valid (they are counted again)."""
    try:
        return records.load(path, CACHE_SPEC, missing={"stats": {}})["stats"]
    except (OSError, records.RecordError):
        return {}


def lookup(
    queries: Iterable[StatsQuery], want: Iterable[str], progress: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """``{"num_params": int | None, "gmacs": float | None}`` (the fields in ``want``) for each query, in order;
    None where it is unknown. Counts what neither the metadata, the shipped counts nor the cache has, and caches
    it; with ``progress``, a count of many models first says how long it should take, then how far it got."""
    queries, want = list(queries), [f for f in FIELDS if f in set(want)]
    cache = StatsCache()
    results: list[dict[str, Any]] = []
    todo: list[tuple[int, StatsQuery, list[str]]] = []
    for i, q in enumerate(queries):
        values = {f: q.known[f] for f in want if f in q.known}
        if len(values) < len(want):
            for source in (shipped(q.entry.plugin), cache.counts(q.entry.plugin)):
                found = source.get(q.key, {})
                values.update({f: found[f] for f in want if f not in values and f in found})
        results.append({f: values.get(f) for f in want})
        missing = [f for f in want if f not in values]
        if missing:
            todo.append((i, q, missing))
    if not todo:
        return results
    say = progress if progress is not None and len(todo) > PROGRESS_AFTER else None
    if say is not None:
        what = " and ".join("parameters" if f == "num_params" else "GMACs" for f in want)
        many = f"{len(todo)} model{'' if len(todo) == 1 else 's'}"
        say(f"counting {what} of {many} on the meta device, about {duration(estimate(todo))}, once (cached for "
            "the next list)")  # fmt: skip
    began = last_save = last_said = time.monotonic()
    try:
        for n, (i, q, missing) in enumerate(todo, 1):
            counted = count(q, missing)
            cache.put(q.entry.plugin, q.key, counted)
            results[i].update({f: counted[f] for f in missing})
            now = time.monotonic()
            if say is not None and now - last_said > PROGRESS_EVERY_S and n < len(todo):
                left = (now - began) / n * (len(todo) - n)  # the pace so far says more than the first guess
                say(f"counted {n} of {len(todo)}, about {duration(left)} left")
                last_said = now
            if now - last_save > SAVE_EVERY_S:
                cache.save()
                last_save = now
    finally:
        cache.save()
    return results


def estimate(todo: Iterable[tuple[int, StatsQuery, list[str]]]) -> float:
    """Seconds that counting ``todo`` should take here, imports included."""
    seconds = sum(SECONDS_PER_MODEL[f] for _, _, fields in todo for f in fields)
    return seconds + (STARTUP_S if "torch" not in sys.modules else 0.0)


def duration(seconds: float) -> str:
    """12 -> ``12 s``; 200 -> ``3 min``; 4000 -> ``1 h 7 min``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def count(query: StatsQuery, fields: Iterable[str]) -> dict[str, Any]:
    """Build the model on the meta device and count ``fields``; None for what cannot be counted."""
    import warnings

    from zoo_core.model_stats import count_gmacs, count_params

    fields = list(fields)
    out: dict[str, Any] = dict.fromkeys(fields)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constructor deprecation notes of thousands of models
        model = _shaped_model(query)
        if model is None:
            return out
        if "num_params" in out:
            out["num_params"] = count_params(model)
        if "gmacs" in out:
            try:
                out["gmacs"] = round(count_gmacs(model, tuple(query.input_size)), 4)
            except (Exception, SystemExit):  # noqa: BLE001 - data-dependent forwards do not run on the meta device
                pass
    return out


def _shaped_model(query: StatsQuery) -> Any | None:
    """The model built on the meta device, its lazy modules shaped by a dry run at the query's input size; a
    lazy model whose dry run needs real numbers is built and run on the CPU (no gradients). None when the model
    cannot be built or shaped: its counts are unknown, never an error."""
    from zoo_core.model_stats import build_on_meta, has_uninitialised, materialize

    def build() -> Any:
        return query.entry.build(**query.kwargs)

    try:
        model = build_on_meta(build)
        if not has_uninitialised(model):
            return model
    except (Exception, SystemExit):  # noqa: BLE001 - a model that cannot be built here is simply unknown
        return None
    for make in (lambda: model, build):
        try:
            shaped = make()
            materialize(shaped, tuple(query.input_size))
            return shaped
        except (Exception, SystemExit):  # noqa: BLE001 - next the CPU; after it, unknown
            continue
    return None
