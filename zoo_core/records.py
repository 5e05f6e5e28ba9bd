"""Checking what zoo reads back from its own files: a registry entry's config, a run record, a cache.

Those files can be edited by hand, cut short, or written by another version of zoo, so a reader declares
what each field must hold -- a ``Spec`` made with ``integer``, ``number``, ``string``, ``boolean``,
``list_of``, ``obj`` or ``version``; null only where a spec allows it -- and ``check`` (``load`` for a file,
``parse`` for JSON text) returns the data as it is, or raises one ``RecordError`` line naming the file and
the field::

    <path>/config.json: field 'num_classes' must be an integer >= 1, got '10'

A ``version`` field newer than this zoo knows raises ``NewerFormatError``, which says to upgrade zoo. Sizes
are bounded (a file, a list, a string, the nesting of JSON), so a lying file costs little to refuse.

This module is a leaf of zoo_core: it imports only ``errors``.
"""

from __future__ import annotations

import json
import math
import os
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.errors import ZooError, first_line

MAX_FILE_BYTES = 16 * 2**20  # any JSON file zoo writes is far smaller
MAX_DEPTH = 32  # nesting of a JSON document
SHOWN_CHOICES = 8  # allowed values an error lists before "..."
NO_DEFAULT: Any = object()

_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 60
_shown.maxlist = _shown.maxdict = 4


class RecordError(ZooError, ValueError):
    """A file zoo reads back does not hold what zoo writes there; the message names the file and the field.

    It is a ValueError too, so a reader that already treats bad JSON as a broken file treats this alike."""


class NewerFormatError(RecordError):
    """A file written by a newer zoo, in a format this one does not read."""


@dataclass(frozen=True)
class Spec:
    """What one field (or a whole document) must hold."""

    kind: str  # int, number, str, bool, list, object, version
    required: bool = False  # in an object: present (an optional field may be absent)
    null: bool = False  # null allowed (readers that index or iterate a field must not get None unasked)
    low: float | None = None  # int, number: the smallest value
    high: float | None = None  # int, number: the largest; version: the newest this zoo reads
    min_len: int = 0  # str, list, object: the fewest characters or items
    max_len: int | None = None  # and the most
    choices: tuple[Any, ...] | None = None  # the values allowed
    pattern: str | None = None  # str: a regular expression the whole string must match
    items: Spec | None = None  # list: each item; object: each field that ``fields`` does not name
    fields: Mapping[str, Spec] | None = None  # object: the named fields
    label: str | None = None  # what the error says is expected, where the spec's own words would not do


def integer(low: int | None = None, high: int | None = None, *, required: bool = False, null: bool = False) -> Spec:
    return Spec("int", required, null, low, high)


def number(low: float | None = None, high: float | None = None, *, required: bool = False,
           null: bool = False) -> Spec:  # fmt: skip
    """A finite number (an integer counts)."""
    return Spec("number", required, null, low, high)


def string(max_len: int = 1000, *, min_len: int = 0, choices: tuple[str, ...] | None = None,
           pattern: str | None = None, label: str | None = None, required: bool = False,
           null: bool = False) -> Spec:  # fmt: skip
    return Spec("str", required, null, min_len=min_len, max_len=max_len, choices=choices, pattern=pattern,
                label=label)  # fmt: skip


def boolean(*, required: bool = False, null: bool = False) -> Spec:
    return Spec("bool", required, null)


def list_of(items: Spec | None, max_len: int, *, min_len: int = 0, required: bool = False,
            null: bool = False) -> Spec:  # fmt: skip
    """A list of at most ``max_len`` items, each checked against ``items`` (None: any JSON)."""
    return Spec("list", required, null, min_len=min_len, max_len=max_len, items=items)


def obj(fields: Mapping[str, Spec] | None = None, *, others: Spec | None = None, max_len: int | None = None,
        required: bool = False, null: bool = False) -> Spec:  # fmt: skip
    """An object with the named ``fields``; any other field is checked against ``others`` (None: any JSON)."""
    return Spec("object", required, null, max_len=max_len, items=others, fields=fields or {})


def version(newest: int, *, required: bool = False) -> Spec:
    """A format number: an integer from 1 to ``newest``; a larger one is a file of a newer zoo."""
    return Spec("version", required, low=1, high=newest)


# -- checking ------------------------------------------------------------------------------------------------


def printable(text: str, limit: int = 1000) -> str:
    """``text`` as one line of at most ``limit`` characters (names and paths come from files too)."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown(value: Any) -> str:
    """A short repr of a value a file held, however large it is."""
    return printable(_shown.repr(value), 80)


def fail(where: str, name: str, expected: str, got: str, error: type[ZooError] = RecordError) -> ZooError:
    """The one-line error for field ``name`` of ``where`` (a file): ``got`` is already shown."""
    subject = f"field '{printable(name, 120)}' must be" if name else "must hold"
    return error(f"{printable(str(where))}: {subject} {expected}, got {got}")


def _bounds(noun: str, low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{noun} from {low:,} to {high:,}"
    if low is not None:
        return f"{noun} >= {low:,}"
    return f"{noun} <= {high:,}" if high is not None else noun


def _length(noun: str, unit: str, spec: Spec) -> str:
    if spec.max_len is None:
        return noun if not spec.min_len else f"{noun} of at least {spec.min_len:,} {unit}"
    if spec.min_len == spec.max_len:
        return f"{noun} of {spec.max_len:,} {unit}"
    if spec.min_len:
        return f"{noun} of {spec.min_len:,} to {spec.max_len:,} {unit}"
    return f"{noun} of at most {spec.max_len:,} {unit}"


def expected(spec: Spec) -> str:
    """What ``spec`` allows, in words (``an integer >= 1``)."""
    if spec.label:
        return spec.label
    if spec.choices is not None:
        listed = ", ".join(repr(c) for c in spec.choices[:SHOWN_CHOICES])
        return f"one of {listed}{', ...' if len(spec.choices) > SHOWN_CHOICES else ''}"
    words = {
        "int": lambda: _bounds("an integer", spec.low, spec.high),
        "number": lambda: _bounds("a number", spec.low, spec.high),
        "version": lambda: _bounds("an integer", spec.low, None),
        "bool": lambda: "true or false",
        "str": lambda: _length("a string", "characters", spec),
        "list": lambda: _length("a list", "items", spec),
        "object": lambda: _length("an object", "fields", spec),
    }
    return words[spec.kind]()


def _type_ok(kind: str, value: Any) -> bool:
    if kind in ("int", "version"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    types = {"str": str, "bool": bool, "list": list, "object": dict}
    return isinstance(value, types[kind])


def _problem(value: Any, spec: Spec, where: str, name: str, error: type[ZooError]) -> tuple[str, str] | None:
    """(expected, got) when ``value`` breaks ``spec`` itself (its items are checked by the caller)."""
    if not _type_ok(spec.kind, value):
        return expected(spec), shown(value)
    if spec.kind == "version" and value > spec.high:  # type: ignore[operator]
        noun = f"{name} {value}" if name else f"format {value}"
        raise (NewerFormatError if error is RecordError else error)(
            f"{printable(str(where))} was written by a newer zoo ({noun}; this zoo reads up to {spec.high:g}); "
            "upgrade zoo to read it"
        )
    if spec.kind in ("int", "number", "version"):
        if (spec.low is not None and value < spec.low) or (spec.high is not None and value > spec.high):
            return expected(spec), shown(value)
    if spec.kind in ("str", "list", "object"):
        size = len(value)
        if size < spec.min_len or (spec.max_len is not None and size > spec.max_len):
            unit = {"str": "characters", "list": "items", "object": "fields"}[spec.kind]
            got = shown(value) if spec.kind == "str" and size <= 60 else f"{size:,} {unit}"
            return (spec.label or _length(expected(Spec(spec.kind)), unit, spec)), got
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
        return expected(spec), shown(value)
    if spec.choices is not None and value not in spec.choices:
        return expected(spec), shown(value)
    return None


def check(data: Any, spec: Spec, where: str | os.PathLike[str], error: type[ZooError] = RecordError) -> Any:
    """``data`` itself when it fits ``spec``; else one ``error`` line naming ``where`` and the first bad field."""
    where = str(where)
    stack: list[tuple[Any, Spec, str]] = [(data, spec, "")]
    while stack:
        value, spec, name = stack.pop()
        if value is None and spec.null:
            continue
        problem = _problem(value, spec, where, name, error)
        if problem is not None:
            raise fail(where, name, *problem, error=error)
        if spec.kind == "list" and spec.items is not None:
            stack += [(item, spec.items, f"{name}[{i}]") for i, item in reversed(list(enumerate(value)))]
        elif spec.kind == "object":
            prefix = f"{name}." if name else ""
            fields = spec.fields or {}
            for key, field in reversed(list(fields.items())):
                if key in value:
                    stack.append((value[key], field, prefix + key))
                elif field.required:
                    raise error(f"{printable(where)}: field '{printable(prefix + key, 120)}' is missing")
            if spec.items is not None:  # in the file's order, like the named fields
                stack += reversed([(v, spec.items, prefix + str(k)) for k, v in value.items() if k not in fields])
    return data


def _depth_ok(data: Any) -> bool:
    """Whether ``data`` nests at most ``MAX_DEPTH`` deep (walked without recursion: the file chooses)."""
    stack = [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_DEPTH:
                return False
            stack += [(v, depth + 1) for v in (item.values() if isinstance(item, dict) else item)]
    return True


def parse(text: str | bytes, spec: Spec, where: str | os.PathLike[str], error: type[ZooError] = RecordError) -> Any:
    """JSON ``text`` read from ``where``, checked against ``spec``."""
    try:
        # UTF-8 only (json.loads would guess UTF-16 or 32 from bytes); UnicodeDecodeError is a ValueError, and
        # RecursionError is nesting deeper than the parser goes
        data = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
    except (ValueError, RecursionError) as e:
        reason = first_line(e, limit=None)
        raise error(f"{printable(str(where))}: not valid JSON ({printable(reason, 120)})") from None
    if not _depth_ok(data):
        raise error(f"{printable(str(where))}: JSON nested more than {MAX_DEPTH} deep")
    return check(data, spec, where, error)


def load(path: str | os.PathLike[str], spec: Spec, *, missing: Any = NO_DEFAULT, max_bytes: int = MAX_FILE_BYTES,
         error: type[ZooError] = RecordError) -> Any:  # fmt: skip
    """The JSON file ``path``, checked against ``spec``. A missing file gives ``missing`` when one is given, else
    FileNotFoundError; anything else wrong with it (unreadable, too large, not JSON, a bad field) is ``error``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            # the size first, so a huge file costs nothing; the read is bounded too, for files that grow
            too_big = os.fstat(f.fileno()).st_size > max_bytes
            raw = b"" if too_big else f.read(max_bytes + 1)
    except FileNotFoundError:
        if missing is NO_DEFAULT:
            raise
        return missing
    except OSError as e:
        raise error(f"{printable(str(path))}: cannot be read ({e.strerror or e})") from None
    if too_big or len(raw) > max_bytes:
        raise error(f"{printable(str(path))}: larger than the {max_bytes:,} bytes zoo ever writes there")
    return parse(raw, spec, path, error)
