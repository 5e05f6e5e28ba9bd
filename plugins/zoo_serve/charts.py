"""Plots as SVG text, drawn on the server: training curves, accuracy against throughput with its Pareto front,
a confusion matrix and per-class bars. Inline SVG needs no script, no image library and no second request, and
stays sharp at any zoom; every label is escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
FONT = 'font-family="system-ui, sans-serif" font-size="11"'
MARGIN = {"left": 56, "right": 16, "top": 14, "bottom": 40}


@dataclass(frozen=True)
class Point:
    """One point of a scatter plot; ``front`` marks it on the Pareto front, ``hollow`` a shaky measurement."""

    x: float
    y: float
    label: str
    front: bool = False
    hollow: bool = False


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def log_ticks(low: float, high: float) -> list[float]:
    """1, 2 and 5 times the powers of ten from below ``low`` to above ``high`` (both positive)."""
    ticks: list[float] = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        ticks += [m * 10.0**exponent for m in (1, 2, 5)]
    inside = [t for t in ticks if low <= t <= high]
    below = [t for t in ticks if t < low][-1:]
    above = [t for t in ticks if t > high][:1]
    return below + inside + above


def fmt_tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:g}"


class _Frame:
    """The plotting area of a chart and its two scales (linear, or logarithmic on y)."""

    def __init__(self, width: int, height: int, xs: list[float], ys: list[float], log_y: bool = False,
                 top: int = MARGIN["top"]) -> None:  # fmt: skip
        self.width, self.height, self.log_y = width, height, log_y
        low, high = min(xs), max(xs)
        if all(float(x).is_integer() for x in xs) and high - low <= 10:  # epochs: whole numbers only
            self.x_ticks = [float(x) for x in range(int(low), int(max(high, low + 1)) + 1)]
        else:
            self.x_ticks = nice_ticks(low, high)
        if log_y:
            self.y_ticks = log_ticks(min(ys), max(ys))
        else:
            self.y_ticks = nice_ticks(min(ys), max(ys))
        self.x0, self.x1 = self.x_ticks[0], self.x_ticks[-1]
        self.y0, self.y1 = self.y_ticks[0], self.y_ticks[-1]
        self.left, self.top = MARGIN["left"], top
        self.right, self.bottom = width - MARGIN["right"], height - MARGIN["bottom"]

    def px(self, x: float) -> float:
        return self.left + (x - self.x0) / ((self.x1 - self.x0) or 1) * (self.right - self.left)

    def py(self, y: float) -> float:
        if self.log_y:
            share = (math.log10(y) - math.log10(self.y0)) / ((math.log10(self.y1) - math.log10(self.y0)) or 1)
        else:
            share = (y - self.y0) / ((self.y1 - self.y0) or 1)
        return self.bottom - share * (self.bottom - self.top)

    def axes(self, x_label: str, y_label: str) -> list[str]:
        parts = [f'<rect x="{self.left}" y="{self.top}" width="{self.right - self.left}" '
                 f'height="{self.bottom - self.top}" fill="none" stroke="#999"/>']  # fmt: skip
        for t in self.x_ticks:
            x = self.px(t)
            parts.append(f'<line x1="{x:.1f}" y1="{self.top}" x2="{x:.1f}" y2="{self.bottom}" stroke="#eee"/>')
            parts.append(f'<text x="{x:.1f}" y="{self.bottom + 14}" text-anchor="middle">{fmt_tick(t)}</text>')
        for t in self.y_ticks:
            y = self.py(t)
            parts.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.right}" y2="{y:.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{self.left - 4}" y="{y + 4:.1f}" text-anchor="end">{fmt_tick(t)}</text>')
        mid_x, mid_y = (self.left + self.right) / 2, (self.top + self.bottom) / 2
        parts.append(f'<text x="{mid_x:.1f}" y="{self.height - 6}" text-anchor="middle">{escape(x_label)}</text>')
        parts.append(f'<text x="12" y="{mid_y:.1f}" text-anchor="middle" '
                     f'transform="rotate(-90 12 {mid_y:.1f})">{escape(y_label)}</text>')  # fmt: skip
        return parts


def _svg(width: int, height: int, title: str, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" {FONT}><title>{escape(title)}</title>{"".join(parts)}</svg>')  # fmt: skip


def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]], x_label: str, y_label: str, title: str,
    width: int = 460, height: int = 240,
) -> str:  # fmt: skip
    """Lines (one per named series of (x, y) points) with a legend; a series of one point is a dot."""
    points = [p for _, line in series for p in line if all(map(math.isfinite, p))]
    if not points:
        return ""
    frame = _Frame(width, height, [p[0] for p in points], [p[1] for p in points], top=24)
    parts = frame.axes(x_label, y_label)
    for i, (name, line) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        shown = [(frame.px(x), frame.py(y)) for x, y in line if math.isfinite(x) and math.isfinite(y)]
        if len(shown) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in shown)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}"/>' for x, y in shown]
        lx = frame.left + 110 * i  # the legend is a row above the plotting area, clear of the lines
        parts.append(f'<rect x="{lx}" y="8" width="10" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="13">{escape(name)}</text>')
    return _svg(width, height, title, parts)


def scatter(
    points: Sequence[Point], x_label: str, y_label: str, title: str, log_y: bool = True,
    width: int = 720, height: int = 420,
) -> str:  # fmt: skip
    """Labelled points; those on the Pareto front filled and joined by the front's staircase."""
    if not points:
        return ""
    usable = [p for p in points if math.isfinite(p.x) and math.isfinite(p.y) and (p.y > 0 or not log_y)]
    if not usable:
        return ""
    frame = _Frame(width, height, [p.x for p in usable], [p.y for p in usable], log_y=log_y)
    parts = frame.axes(x_label, y_label)
    front = sorted((p for p in usable if p.front), key=lambda p: p.x)
    if len(front) > 1:
        steps = []
        for a, b in zip(front, front[1:], strict=False):
            steps += [(a.x, a.y), (b.x, a.y)]
        steps.append((front[-1].x, front[-1].y))
        path = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in steps)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="1.5" '
                     'stroke-dasharray="4 3"/>')  # fmt: skip
    for p in usable:
        x, y = frame.px(p.x), frame.py(p.y)
        colour = "#d62728" if p.front else "#1f77b4"
        fill = "none" if p.hollow else colour
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{5 if p.front else 4}" fill="{fill}" '
                     f'stroke="{colour}" stroke-width="1.5"><title>{escape(p.label)}</title></circle>')  # fmt: skip
        if x > frame.right - 7 * len(p.label):  # near the right edge: the label goes to the left of its point
            parts.append(f'<text x="{x - 6:.1f}" y="{y - 7:.1f}" text-anchor="end">{escape(p.label)}</text>')
        else:
            parts.append(f'<text x="{x + 6:.1f}" y="{y - 5:.1f}">{escape(p.label)}</text>')
    legend = [("#d62728", "Pareto front: nothing is both faster and more accurate"), ("#1f77b4", "other records")]
    for i, (colour, text) in enumerate(legend):
        ly = frame.top + 14 + 15 * i
        parts.append(f'<circle cx="{frame.left + 12}" cy="{ly - 4}" r="4" fill="{colour}"/>')
        parts.append(f'<text x="{frame.left + 22}" y="{ly}">{escape(text)}</text>')
    return _svg(width, height, title, parts)


def pareto_front(pairs: Sequence[tuple[float, float]]) -> list[bool]:
    """For each (x, y), whether no other pair is at least as good on both (higher is better) and better on one."""
    marks = []
    for i, (x, y) in enumerate(pairs):
        beaten = any((ox >= x and oy >= y) and (ox > x or oy > y) for j, (ox, oy) in enumerate(pairs) if j != i)
        marks.append(not beaten)
    return marks


def heatmap(matrix: Sequence[Sequence[int]], labels: Sequence[str], title: str, cell: int = 0) -> str:
    """A confusion matrix: rows the true class, columns the predicted one, shaded by the share of the row."""
    n = len(labels)
    if n == 0 or len(matrix) != n:
        return ""
    cell = cell or max(14, min(44, 520 // n))
    left, top = 70, 20
    width, height = left + n * cell + 20, top + n * cell + 60
    parts = []
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        for j, count in enumerate(row):
            share = count / total
            shade = round(255 - 200 * share)
            colour = f"rgb({shade},{round(255 - 140 * share)},255)"
            x, y = left + j * cell, top + i * cell
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{colour}" stroke="#fff">'
                         f'<title>true {escape(labels[i])}, predicted {escape(labels[j])}: {count}</title></rect>')
            if count and cell >= 18:
                ink = "#fff" if share > 0.5 else "#000"
                parts.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                             f'fill="{ink}">{count}</text>')  # fmt: skip
    if n <= 40:
        for i, label in enumerate(labels):
            parts.append(f'<text x="{left - 4}" y="{top + i * cell + cell / 2 + 4}" text-anchor="end">'
                         f'{escape(label[:12])}</text>')  # fmt: skip
            x = left + i * cell + cell / 2
            parts.append(f'<text x="{x}" y="{top + n * cell + 14}" text-anchor="middle">{escape(label[:4])}</text>')
    parts.append(f'<text x="{left + n * cell / 2}" y="{height - 20}" text-anchor="middle">predicted</text>')
    parts.append(f'<text x="12" y="{top + n * cell / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 12 {top + n * cell / 2})">true</text>')  # fmt: skip
    return _svg(width, height, title, parts)


def bars(values: Sequence[tuple[str, float]], title: str, top: float = 100.0, unit: str = "%") -> str:
    """Horizontal bars, one per (label, value), on a scale from 0 to ``top``."""
    if not values:
        return ""
    row, left, length = 18, 90, 300
    width, height = left + length + 60, row * len(values) + 10
    parts = []
    for i, (label, value) in enumerate(values):
        y = 5 + i * row
        size = max(0.0, min(value, top)) / top * length
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(label[:14])}</text>')
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{length}" height="{row - 6}" fill="#eee"/>')
        parts.append(f'<rect x="{left}" y="{y + 2}" width="{size:.1f}" height="{row - 6}" fill="#1f77b4"/>')
        parts.append(f'<text x="{left + length + 6}" y="{y + 12}">{value:.2f}{escape(unit)}</text>')
    return _svg(width, height, title, parts)


def message(text: str, width: int = 480, height: int = 60) -> str:
    """An SVG that says one line (where a plot cannot be drawn, an image element still shows why)."""
    return _svg(width, height, text, [f'<text x="8" y="{height / 2 + 4}">{escape(text)}</text>'])
