"""What ``zoo list`` and ``zoo info`` show of the catalogue: rows of models or of their pretrained tags with
accuracy, size, cost and preprocessing, their filters and sorting, and the human quantities they read and
print (``10M`` parameters, ``1.5`` GMACs).

Top-1 comes from the tags' metrics (``imagenet_top1`` from torchvision, ``top1`` with its ``dataset`` from
the registry); a model's row shows its default tag's. Parameters and GMACs come from ``zoo_core.stats_cache``
and only when a filter or a sort needs them, so a plain listing reads cached JSON and nothing else.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zoo_core.catalogue import Catalogue, ModelEntry
from zoo_core.errors import UsageError
from zoo_core.names import is_pattern, parse, split_pattern
from zoo_core.resolve import resolve

SORT_KEYS = ("name", "params", "gmacs", "top1")
BOUNDS = (("params", "parameters (10M)"), ("gmacs", "GMACs (1.5, or 500M MACs)"), ("top1", "% top-1 (80)"))
FIELDS = {"params": "num_params", "gmacs": "gmacs", "top1": "top1"}
LABELS = {"num_params": "parameters", "gmacs": "GMACs", "top1": "top-1"}
LABELS_SHORT = {"num_params": "params", "gmacs": "GMACs"}
SUFFIXES = {"K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12}
AMOUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([KMGBT]?)\s*%?\s*$", re.IGNORECASE)


@dataclass
class Row:
    """One line of a listing: a model, or one of its tags (``tag`` set)."""

    name: str  # what to type: the model's display name, plus ``.tag`` for a tag
    entry: ModelEntry
    tag: str | None
    top1: float | None
    top5: float | None
    dataset: str | None
    num_params: int | None = None
    gmacs: float | None = None

    @property
    def weights(self) -> dict[str, Any]:
        """The tag's metadata (for a model row, its default tag's; empty when it has none)."""
        tag = self.tag or self.entry.default_tag
        return self.entry.pretrained.get(tag, {}) if tag else {}

    @property
    def input_size(self) -> tuple[int, ...]:
        if self.tag:
            return tuple(self.weights["preprocessing"]["input_size"])
        return self.entry.input_size

    def value(self, field: str) -> float | None:
        return getattr(self, field)

    def to_dict(self, catalogue: Catalogue) -> dict[str, Any]:
        """What ``zoo list --json`` prints of the row."""
        e = self.entry
        if self.tag:
            pre = self.weights["preprocessing"]
            out = {
                "name": self.name, "model": e.qualified, "tag": self.tag, "plugin": e.plugin,
                "default": self.tag == e.default_tag, "source": self.weights.get("source"),
                "top1": self.top1, "top5": self.top5, "dataset": self.dataset, "input_size": list(pre["input_size"]),
                "crop_pct": pre.get("crop_pct"), "crop_mode": pre.get("crop_mode"),
                "resize_size": pre.get("resize_size"), "interpolation": pre.get("interpolation"),
                "license": self.weights.get("license"),
            }  # fmt: skip
        else:
            out = {
                "name": e.name, "qualified": e.qualified, "plugin": e.plugin,
                "default": catalogue.is_default("model", e), "family": e.family, "input_size": e.input_size,
                "num_classes": e.num_classes, "pretrained": list(e.pretrained), "default_tag": e.default_tag,
                "top1": self.top1,
            }  # fmt: skip
        for field in ("num_params", "gmacs"):
            if getattr(self, field) is not None:
                out[field] = getattr(self, field)
        return out


def accuracy(meta: dict[str, Any]) -> tuple[float | None, float | None, str | None]:
    """(top-1, top-5, dataset) a tag's metrics report, None where they do not."""
    metrics = meta.get("metrics") or {}
    for prefix, dataset in (("", metrics.get("dataset")), ("imagenet_", "imagenet-1k")):
        top1 = metrics.get(f"{prefix}top1")
        if _number(top1):
            top5 = metrics.get(f"{prefix}top5") if metrics.get("topk", 5) == 5 else None  # zoo's eval: top-k, k < 5
            return float(top1), float(top5) if _number(top5) else None, str(dataset) if dataset else None
    return None, None, None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def model_rows(catalogue: Catalogue, entries: Iterable[ModelEntry]) -> list[Row]:
    rows = []
    for e in entries:
        default = e.pretrained.get(e.default_tag, {}) if e.default_tag else {}
        rows.append(Row(catalogue.display_name("model", e), e, None, *accuracy(default)))
    return rows


def exact_pattern(name: str) -> str:
    """A name given to ``zoo list`` as a pattern: a source name or a version (``hf-hub:OWNER/REPO``,
    ``MODEL.TAG@N``) becomes the tag it resolves to; other names stay, so ``resnet50.a1_in1k`` finds that tag
    of whichever plugin's ``resnet50`` has it."""
    ref = parse(name)
    return resolve(ref).qualified if ref.is_source or ref.version is not None else name


def check_exact(patterns: Iterable[str], rows: Sequence[Row]) -> None:
    """An exact name that matched nothing fails as the resolver says (unknown model or tag, with the close ones)."""
    for pattern in patterns:
        model, tag = split_pattern(pattern)
        if not is_pattern(pattern) and not any(
            fnmatch.fnmatchcase(r.entry.name, model) or fnmatch.fnmatchcase(r.entry.qualified, model)
            for r in rows if tag is None or r.tag == tag
        ):  # fmt: skip
            resolve(pattern)


def tag_rows(catalogue: Catalogue, entries: Iterable[ModelEntry], patterns: Sequence[str] = ()) -> list[Row]:
    """A row per tag of each model: with ``patterns`` (``model[.tag]`` wildcards), the tags that a pattern
    matching the model allows (every tag for a pattern without a tag part)."""
    pairs = [split_pattern(p) for p in patterns]
    rows = []
    for e in entries:
        allowed = [tag or "*" for model, tag in pairs
                   if fnmatch.fnmatchcase(e.name, model) or fnmatch.fnmatchcase(e.qualified, model)]  # fmt: skip
        name = catalogue.display_name("model", e)
        for tag, meta in e.pretrained.items():
            if not pairs or any(fnmatch.fnmatchcase(tag, p) for p in allowed):
                rows.append(Row(f"{name}.{tag}", e, tag, *accuracy(meta)))
    return rows


# -- filters and sorting ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """``low <= value <= high`` for one field (``num_params``, ``gmacs`` or ``top1``)."""

    field: str
    low: float | None = None
    high: float | None = None

    def admits(self, value: float | None) -> bool:
        return value is not None and (self.low is None or value >= self.low) and (
            self.high is None or value <= self.high)  # fmt: skip


def parse_bounds(options: dict[str, str | None]) -> list[Bound]:
    """``{"min_params": "1M", "max_params": "10M", ...}`` (the command's options) -> a Bound per field given."""
    found = []
    for name, _ in BOUNDS:
        low, high = options.get(f"min_{name}"), options.get(f"max_{name}")
        if low is None and high is None:
            continue
        lo = parse_amount(low, f"--min-{name}", FIELDS[name]) if low is not None else None
        hi = parse_amount(high, f"--max-{name}", FIELDS[name]) if high is not None else None
        if lo is not None and hi is not None and lo > hi:
            raise UsageError(f"--min-{name} {low} is above --max-{name} {high}: nothing can match")
        found.append(Bound(FIELDS[name], lo, hi))
    return found


def parse_amount(text: str, option: str, field: str) -> float:
    """``10M``, ``1.5G``, ``80``, ``80%`` -> a number in the field's unit (parameters, GMACs, percent).

    A suffix (K, M, G or B, T) multiplies; for GMACs a suffixed value is a count of MACs (``500M`` is 0.5).
    """
    match = AMOUNT_RE.match(text)
    if match is None:
        raise UsageError(f"{option}: expected a number such as 10M, 1.5G or 80, got {text!r}")
    value, suffix = float(match.group(1)), match.group(2).upper()
    if suffix and field == "top1":
        raise UsageError(f"{option}: top-1 is a percentage such as 80 or 80.5, got {text!r}")
    if suffix:
        value *= SUFFIXES[suffix]
        if field == "gmacs":
            value /= 1e9
    return value


def select(
    rows: list[Row],
    bounds: Sequence[Bound] = (),
    sort: str = "name",
    progress: Callable[[str], None] | None = None,
) -> tuple[list[Row], list[str]]:
    """Rows within ``bounds``, ordered by ``sort`` (top-1 best first, parameters and GMACs smallest first,
    unknown values last), and one-line notes on what was unknown. Parameters and GMACs are looked up only when
    a bound or the sort needs them."""
    if sort not in SORT_KEYS:
        raise UsageError(f"--sort: expected one of {', '.join(SORT_KEYS)}, got {sort!r}")
    fields = {b.field for b in bounds} | {FIELDS.get(sort, "")}
    stats = [f for f in ("num_params", "gmacs") if f in fields]
    notes: list[str] = []
    # Top-1 is in the metadata: filter on it first, so that sizes are counted only for the rows it keeps.
    rows = _within(rows, [b for b in bounds if b.field == "top1"], notes)
    if stats:
        from zoo_core.stats_cache import lookup, model_query, tag_query

        queries = [tag_query(r.entry, r.tag) if r.tag else model_query(r.entry) for r in rows]
        for row, values in zip(rows, lookup(queries, stats, progress), strict=True):
            row.num_params, row.gmacs = values.get("num_params", row.num_params), values.get("gmacs", row.gmacs)
    rows = _within(rows, [b for b in bounds if b.field != "top1"], notes)
    if sort != "name":
        field = FIELDS[sort]
        sign = -1 if field == "top1" else 1
        rows = sorted(rows, key=lambda r: (r.value(field) is None, sign * (r.value(field) or 0)))
        unknown = sum(r.value(field) is None for r in rows)
        if unknown:
            notes.append(f"{_many(unknown, rows)} with unknown {LABELS[field]} (shown as ?) sorted last")
    return rows, notes


def _within(rows: list[Row], bounds: Sequence[Bound], notes: list[str]) -> list[Row]:
    """The rows every bound admits; a note for each bound that left out rows it could not judge."""
    for bound in bounds:
        unknown = sum(r.value(bound.field) is None for r in rows)
        if unknown:
            notes.append(f"{_many(unknown, rows)} with unknown {LABELS[bound.field]} left out")
        rows = [r for r in rows if bound.admits(r.value(bound.field))]
    return rows


def list_table(
    rows: Sequence[Row], tags: bool, bounds: Sequence[Bound], sort: str
) -> tuple[list[str], list[list[str]], set[int], set[int]]:
    """``zoo list`` as (headers, cells, columns never shortened, right-aligned columns): parameters and GMACs
    where a bound or the sort asked for them; names and figures are never shortened (one cut short would
    mislead), only the words around them."""
    asked = {b.field for b in bounds} | {FIELDS.get(sort, "")}
    stats = [f for f in ("num_params", "gmacs") if f in asked]
    unknown = "?" if "top1" in asked else ""
    headers = ["name", *(["source"] if tags else ["plugin", "family"]), *(LABELS_SHORT[f] for f in stats), "top-1",
               "input", "crop (resize)" if tags else "pretrained (default)"]  # fmt: skip
    cells = []
    for r in rows:
        line = [r.name, *([r.weights.get("source") or ""] if tags else [r.entry.plugin, r.entry.family])]
        line += [fmt_count(r.num_params) if f == "num_params" else fmt_gmacs(r.gmacs) for f in stats]
        line += [fmt_pct(r.top1, unknown if r.weights else ""), fmt_size(r.input_size)]
        if tags:
            line.append(fmt_crop(r.weights["preprocessing"]))
        else:
            line.append(f"{len(r.entry.pretrained)} ({r.entry.default_tag})" if r.entry.pretrained else "")
        cells.append(line)
    figures = {headers.index(h) for h in (*(LABELS_SHORT[f] for f in stats), "top-1")}
    whole = {0, *figures, headers.index("input"), *([len(headers) - 1] if tags else [])}
    return headers, cells, whole, figures


def tags_table(rows: Sequence[Row]) -> tuple[list[tuple[str, str]], list[str], list[list[str]], set[int]]:
    """The tags of one model as (what every tag shares, headers, cells, right-aligned columns): a column with
    one value for every tag is said once instead of on each line, and a column no tag fills is left out."""
    headers = ["tag", "source", "top-1", "top-5", "dataset", "input", "crop (resize)", "interpolation", "licence"]
    table = [
        [r.tag or "", r.weights.get("source") or "", fmt_pct(r.top1), fmt_pct(r.top5), r.dataset or "",
         fmt_size(r.input_size), fmt_crop(r.weights["preprocessing"]),
         r.weights["preprocessing"].get("interpolation") or "", r.weights.get("license") or ""]
        for r in rows
    ]  # fmt: skip
    shared: list[tuple[str, str]] = []
    shown = [0]
    for i in range(1, len(headers)):
        values = {row[i] for row in table}
        if len(table) > 1 and len(values) == 1 and "" not in values:
            shared.append((headers[i], values.pop()))
        elif values - {""}:
            shown.append(i)
    right = {n for n, i in enumerate(shown) if headers[i] in ("top-1", "top-5")}
    return shared, [headers[i] for i in shown], [[row[i] for i in shown] for row in table], right


def _many(n: int, rows: Sequence[Row]) -> str:
    what = "tag" if rows and rows[0].tag else "model"
    return f"{n} {what}{'' if n == 1 else 's'}"


# -- how values read --------------------------------------------------------------------------------


def fmt_count(n: float | None, unknown: str = "?") -> str:
    """25557032 -> 25.6M."""
    if n is None:
        return unknown
    for suffix, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{_sig3(n / scale)}{suffix}"
    return f"{n:g}"


def fmt_gmacs(g: float | None, unknown: str = "?") -> str:
    return unknown if g is None else _sig3(g)


def _sig3(x: float) -> str:
    """Three significant digits, never in exponent form."""
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}" if abs(x) >= 1e-4 or x == 0 else "<0.0001"  # .3g writes no exponent down to 1e-4


def fmt_pct(v: float | None, unknown: str = "") -> str:
    return unknown if v is None else f"{v:.2f}"


def fmt_size(size: Sequence[int]) -> str:
    """(3, 224, 224) -> 224x224; other channel counts are said: (1, 28, 28) -> 1x28x28."""
    return "x".join(str(s) for s in (size[1:] if size[0] == 3 else size))


def fmt_crop(pre: dict[str, Any]) -> str:
    """How the image becomes the input: ``0.875 (256)`` is resize to 256 and centre-crop 87.5%."""
    pct = f"{pre.get('crop_pct', 1.0):g}"
    mode = pre.get("crop_mode", "center")
    if mode == "squash":
        return "squash" if pct == "1" else f"squash {pct}"
    text = pct if mode == "center" else f"{mode} {pct}"
    return f"{text} ({pre['resize_size']})" if pre.get("resize_size") else text
