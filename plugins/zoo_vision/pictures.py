"""Pictures as matplotlib figures of an exact pixel size (one figure pixel per picture pixel), so a written
file has the size of what it shows: a heat map over an image at the image's size, a grid of feature maps."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

DPI = 100
GAP = 2  # pixels between the maps of a grid
MIN_CELL = 64  # maps smaller than this are enlarged by a whole factor (nearest), so each pixel stays visible


def pixel_figure(pixels: Any) -> Any:
    """An H x W x 3 float array in [0, 1] -> a matplotlib Figure of exactly W x H pixels at its dpi."""
    from matplotlib.figure import Figure

    fig = Figure(dpi=DPI)
    fig.figimage(pixels, xo=0, yo=0, origin="upper", resize=True)
    return fig


def save_figure(fig: Any, path: str | Path, option: str = "--out") -> Path:
    """Write ``fig`` in the format its suffix asks for, atomically, at one file pixel per figure pixel."""
    from zoo_core.plugin_api import image_format, write_output

    buffer = io.BytesIO()
    fig.savefig(buffer, format=image_format(path, option), dpi=fig.dpi)
    write_output(path, buffer.getvalue(), option)
    return Path(path)


def normalise(values: Any) -> Any:
    """Each map scaled to [0, 1] over its own range; a constant map is all zeros (never NaN)."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(values.shape[0], -1)
    low, high = flat.min(axis=1), flat.max(axis=1)
    span = np.where(high > low, high - low, 1.0)
    scaled = (flat - low[:, None]) / span[:, None]
    scaled[high <= low] = 0.0
    return scaled.reshape(values.shape)


def grid_layout(count: int, map_size: tuple[int, int]) -> tuple[int, int, int, tuple[int, int]]:
    """(rows, columns, enlargement, (height, width) in pixels) of the grid ``grid_pixels`` draws."""
    h, w = map_size
    columns = max(1, math.ceil(math.sqrt(count)))
    rows = max(1, math.ceil(count / columns))
    scale = max(1, math.ceil(MIN_CELL / max(h, w)))
    return rows, columns, scale, (rows * h * scale + (rows + 1) * GAP, columns * w * scale + (columns + 1) * GAP)


def grid_pixels(maps: Any, colormap: str = "viridis") -> Any:
    """C x h x w maps -> an RGB grid (each map on its own scale, enlarged to at least MIN_CELL pixels)."""
    import matplotlib
    import numpy as np

    maps = normalise(maps)
    count, h, w = maps.shape
    rows, columns, scale, (height, width) = grid_layout(count, (h, w))
    canvas = np.ones((height, width, 3))
    colours = matplotlib.colormaps[colormap](maps)[..., :3]
    for i in range(count):
        r, c = divmod(i, columns)
        top, left = GAP + r * (h * scale + GAP), GAP + c * (w * scale + GAP)
        cell = np.repeat(np.repeat(colours[i], scale, axis=0), scale, axis=1)
        canvas[top:top + h * scale, left:left + w * scale] = cell
    return canvas


def overlay_pixels(image: Any, heat: Any, seen: Any, alpha: float = 0.5, colormap: str = "jet") -> Any:
    """A PIL image with ``heat`` (H x W in [0, 1]) blended over the part the model sees (``seen``, H x W bool)."""
    import matplotlib
    import numpy as np

    rgb = np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0
    colours = matplotlib.colormaps[colormap](np.clip(np.asarray(heat, dtype=np.float64), 0, 1))[..., :3]
    weight = alpha * np.asarray(seen, dtype=np.float64)[..., None]
    return rgb * (1 - weight) + colours * weight
