"""Plain aligned text tables: fast to print (thousands of rows), easy to grep and pipe, and narrowed to the
terminal when one is there."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Collection, Sequence
from typing import Any

ELLIPSIS = "…"


def terminal_width() -> int | None:
    """The terminal's width (``COLUMNS`` first), or None when output goes to a pipe or a file."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    width: int | None = None,
    keep: Collection[int] = (0,),
    right: Collection[int] = (),
) -> str:
    """Columns two spaces apart; ``right`` ones right-aligned. With ``width``, columns other than ``keep``
    (the names, which must stay whole to be copied) are narrowed, widest first, until a line fits, and a cell
    that no longer fits ends in an ellipsis."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    if width is not None:
        widths = _narrowed(widths, [len(h) for h in cells[0]], width, set(keep))
    ellipsis = ELLIPSIS if _encodes(ELLIPSIS) else "~"

    def cell(text: str, i: int) -> str:
        w = widths[i]
        if len(text) > w and i not in keep:
            text = text[: max(w - len(ellipsis), 0)] + ellipsis
        return text.rjust(w) if i in right else text.ljust(w)

    lines = ["  ".join(cell(c, i) for i, c in enumerate(r)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _narrowed(widths: list[int], header_widths: list[int], width: int, keep: set[int]) -> list[int]:
    widths = list(widths)
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    # A column never gets narrower than its header (or 6 characters), so it still says what it holds.
    floor = [max(min(h, w), min(6, w)) for h, w in zip(header_widths, widths, strict=True)]
    while excess > 0:
        candidates = [i for i in range(len(widths)) if i not in keep and widths[i] > floor[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        others = [widths[i] for i in candidates if i != widest]
        # down to the next widest column (or the floor) in one step, but no further than needed
        step = min(excess, widths[widest] - max([floor[widest], *others]) or 1)
        widths[widest] -= step
        excess -= step
    return widths


def _encodes(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        return False
    return True
