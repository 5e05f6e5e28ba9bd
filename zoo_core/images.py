"""Reading image files: every mode PIL opens becomes its true colours (``RGB``, or ``L`` for grayscale
sources), or a one-line error that names the file. The one decoder contract of zoo: datasets, evaluation
and prediction all read pictures through ``load_image``. Pictures over ``max_image_pixels()`` are refused
from their header, before any pixel is decoded."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from zoo_core.errors import UsageError, first_line

# PIL's own refusal (twice its Image.MAX_IMAGE_PIXELS, below which it only warns), as a fixed number so that
# zoo's limit does not depend on what other code in the process set PIL's to.
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970
MAX_PIXELS_VARIABLE = "ZOO_MAX_IMAGE_PIXELS"

GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
SIXTEEN_BIT = {"I;16", "I;16L", "I;16B", "I;16N"}


def _refuse(path: str | os.PathLike[str], why: str) -> UsageError:
    return UsageError(f"cannot decode image {path}: {why}")


def _scaled_to_bytes(path: str | os.PathLike[str], image: Any) -> Any:
    """A 16-bit, 32-bit integer or float grayscale image as 8-bit ``L`` by its value range, never clipped."""
    import numpy as np
    from PIL import Image

    values = np.asarray(image)
    mode = image.mode
    if mode in SIXTEEN_BIT or mode == "I":
        # "I" is how PIL opens 16-bit PNGs and TIFFs too; wider values are not a picture zoo can read.
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise _refuse(path, f"mode {mode} holds values outside 0..65535")
        scaled = values.astype(np.float64) / 257.0
    else:  # "F": floats in [0, 1] (most tools) or [0, 255]
        if not np.isfinite(values).all():
            raise _refuse(path, "mode F holds NaN or infinite values")
        low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if low < 0 or high > 255:
            raise _refuse(path, f"mode F holds values in [{low:g}, {high:g}], neither [0, 1] nor [0, 255]")
        scaled = values * 255.0 if high <= 1.0 else values
    return Image.fromarray(np.rint(scaled).astype(np.uint8), "L")


def _lab_to_rgb(image: Any) -> Any:
    from PIL import ImageCms

    transform = ImageCms.buildTransform(ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB")
    return ImageCms.applyTransform(image, transform)


def to_true_colours(image: Any, path: str | os.PathLike[str] = "<image>") -> Any:
    """A PIL image of any mode as ``RGB`` (colour sources) or ``L`` (grayscale sources); alpha is dropped, as
    torchvision's and timm's loaders do, palettes are expanded."""
    mode = image.mode
    try:
        if mode in ("RGB", "L"):
            return image
        if mode in SIXTEEN_BIT or mode in ("I", "F"):
            return _scaled_to_bytes(path, image)
        if mode in ("1", "LA"):
            return image.convert("L")
        if mode == "La":  # premultiplied: undo it through RGBa, then take the luma
            return image.convert("RGBa").convert("RGB").convert("L")
        if mode == "LAB":
            return _lab_to_rgb(image)
        if mode in ("P", "PA"):
            return image.convert("RGBA").convert("RGB")
        return image.convert("RGB")  # RGBA, RGBa, RGBX, CMYK, YCbCr, HSV, ...
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - a mode PIL cannot convert is the same problem for the user
        raise _refuse(path, f"mode {mode} cannot be converted to colours ({e})") from None


def max_image_pixels() -> int | None:
    """The most pixels (width x height) zoo decodes in one picture: ``ZOO_MAX_IMAGE_PIXELS``, else PIL's
    decompression-bomb limit; None when the variable is ``none`` (no limit)."""
    value = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not value:
        return DEFAULT_MAX_IMAGE_PIXELS
    if value.lower() == "none":
        return None
    try:
        limit = int(value.replace(",", "").replace("_", ""))
    except ValueError:
        limit = 0
    if limit < 1:
        raise UsageError(f"{MAX_PIXELS_VARIABLE}={value!r}: give a number of pixels (e.g. 400000000) or 'none'")
    return limit


# PIL's own bomb check runs inside Image.open, before zoo sees the size, and would refuse what
# ZOO_MAX_IMAGE_PIXELS allows: it is off only while a header is read, under a lock, since the setting is
# PIL's global. Reading a header takes microseconds, so decoding threads hardly wait.
_PIL_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _opened(path: str | os.PathLike[str]) -> Iterator[Any]:
    """The PIL image of ``path``, its header read and its size checked against ``max_image_pixels()``."""
    from PIL import Image

    limit = max_image_pixels()
    with _PIL_LIMIT_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            image = Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved
    with image:
        width, height = image.size
        if limit is not None and width * height > limit:
            raise UsageError(f"{path}: {width * height:,} pixels ({width}x{height}) is over the limit of {limit:,} "
                             f"(set {MAX_PIXELS_VARIABLE} to read larger pictures)")  # fmt: skip
        yield image


# What PIL raises for a file it cannot read: its DecompressionBombError (a frame of an animation over PIL's
# limit) is none of the others.
def _unreadable() -> tuple[type[BaseException], ...]:
    from PIL import Image, UnidentifiedImageError

    return OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError


def load_image(path: str | os.PathLike[str]) -> Any:
    """Open an image file as a PIL image in ``RGB`` or ``L`` with its true colours (first frame of an animation)."""
    try:
        with _opened(path) as image:
            image.load()
            return to_true_colours(image, path)
    except UsageError:
        raise
    except _unreadable() as e:
        text = first_line(e)
        raise _refuse(path, text) from None


def image_mode(path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """(mode, format) from the file's header, without decoding the pixels."""
    try:
        with _opened(path) as image:
            return image.mode, image.format
    except UsageError:
        raise
    except _unreadable() as e:
        text = first_line(e)
        raise _refuse(path, text) from None
