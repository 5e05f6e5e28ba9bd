"""Files a command writes on request (--csv, --plot, --json FILE): checked before the work, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

from zoo_core.errors import UsageError, ZooError


def check_output(path: str | Path, option: str) -> None:
    """Fail before a run, not after it, on an output path whose folder cannot be written."""
    folder = Path(path).absolute().parent
    while not folder.exists():  # atomic_io creates the missing folders
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: {folder} is not a folder zoo can write to")


def write_output(path: str | Path, data: str | bytes, option: str) -> None:
    """Write an output file atomically; one that cannot be written is a one-line error."""
    from zoo_core.atomic_io import atomic_write_bytes

    try:
        atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as e:
        raise ZooError(f"{option} {path}: cannot write it: {e.strerror or e}") from None


def image_format(path: str | Path, option: str = "--plot") -> str:
    """The picture format a file name's suffix asks for (png without one); UsageError for one matplotlib lacks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fmt = Path(path).suffix[1:].lower() or "png"
    formats = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in formats:
        raise UsageError(f"{option} {path}: cannot draw a .{fmt} file; use one of {', '.join(sorted(formats))}")
    return fmt


def check_plot(path: str | Path, option: str = "--plot") -> None:
    """Fail before a run on a picture path that cannot be written or drawn."""
    check_output(path, option)
    image_format(path, option)
