"""Image folders (``train/``, ``val/``, ``test/`` of class folders) decoded once into uint8 tensors.

Every image is decoded to its true colours or refused with its file name (``decode_image``); the decoded
dataset is cached (``zoo_data.cache``), keyed by the folder, every file's name, size and mtime, and the
decode options, so a changed folder is noticed and an unchanged one opens at the cost of a directory scan.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import Dataset, Split, UsageError, convert_channels
from zoo_data.cache import cached

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TORCHVISION_DECODES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}  # the rest go through PIL
MAX_SIDE = 256  # images are stored at most this large: the cache is for small-image training
SPLIT_NAMES = ("train", "val", "test")


def _class_dirs(folder: Path) -> list[str]:
    return sorted(d.name for d in os.scandir(folder) if d.is_dir() and not d.name.startswith("."))


def scan_image_folder(root: Path, for_training: bool = True) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """``root/{train,val,test}/<class>/<image>`` -> (classes, split -> [(file path, class index)]).

    To evaluate (``for_training=False``) a folder needs no train/: its val/ or test/ alone, or class folders
    straight in ``root`` (read as the test split), will do; the classes are then that split's folders."""
    if not root.is_dir():
        raise UsageError(f"dataset folder {root} does not exist")
    split_dirs = {s: root / s for s in SPLIT_NAMES if (root / s).is_dir()}
    if "train" in split_dirs:
        classes = _class_dirs(root / "train")
    elif for_training:
        raise UsageError(f"{root} has no train/ folder; expected train/<class>/*.png and test/<class>/*.png")
    else:
        if not split_dirs:  # class folders straight in root: an evaluation set such as ImageNet's val/
            split_dirs = {"test": root}
        classes = sorted({c for folder in split_dirs.values() for c in _class_dirs(folder)})
    if not classes:
        where = next(iter(split_dirs.values()), root)
        raise UsageError(f"{where} has no class folders; expected <class>/<image> inside it")
    index = {c: i for i, c in enumerate(classes)}
    files: dict[str, list[tuple[str, int]]] = {}
    for split, split_dir in split_dirs.items():
        rows: list[tuple[str, int]] = []
        for d in sorted(os.scandir(split_dir), key=lambda e: e.name):
            if not d.is_dir() or d.name.startswith("."):
                continue
            if d.name not in index:
                raise UsageError(f"{split_dir / d.name}: class {d.name!r} is not in train/ ({', '.join(classes)})")
            with os.scandir(d.path) as it:
                images = sorted(e.path for e in it if os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
                                and e.is_file())  # fmt: skip
            if not images and split == "train":
                raise UsageError(f"{d.path} has no images: class {d.name!r} would never be trained; add images "
                                 "or remove the folder")  # fmt: skip
            rows += [(path, index[d.name]) for path in images]
        if not rows:
            raise UsageError(f"{split_dir} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        files[split] = rows
    if "test" not in files and "val" not in files:
        raise UsageError(f"{root} has no test/ or val/ folder of class subfolders")
    return classes, files


def fingerprint(files: dict[str, list[tuple[str, int]]], root: Path) -> str:
    """A digest of every file's path below ``root``, label, size and mtime: any change to the folder
    changes it. Plain strings and ``os.stat``: 60,000 files take about 0.2 s."""
    import hashlib

    digest = hashlib.sha256()
    skip = len(str(root)) + 1
    stat = os.stat
    for split, rows in files.items():
        for path, label in rows:
            st = stat(path)
            digest.update(f"{split}\0{path[skip:]}\0{label}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _torchvision_decoder() -> Callable[[str], Any] | None:
    """torchvision's libjpeg-turbo/libpng decoder (about twice as fast as PIL here), or None where a
    future torchvision no longer has it."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 0.29 points to torchcodec; it still works
            from torchvision.io import ImageReadMode, decode_image, read_file
    except ImportError:
        return None

    def decode(path: str) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_image(read_file(str(path)), mode=ImageReadMode.UNCHANGED)

    return decode


def decode_image(path: str) -> Any:
    """One image as a uint8 C x H x W tensor with C in (1, 3), in its true colours (zoo_core.images): 8-bit
    RGB and grayscale JPEGs and PNGs take torchvision's faster decoder, every other mode goes through PIL."""
    import numpy as np
    import torch

    from zoo_core.plugin_api import image_mode, load_image

    mode, fmt = image_mode(path)
    decode = _torchvision_decoder() if fmt in ("JPEG", "PNG") and mode in ("RGB", "L") else None
    if decode is not None:
        try:
            img = decode(path)
        except Exception:  # noqa: BLE001 - what torchvision cannot read, PIL may: it decides below
            img = None
        if img is not None and img.dtype == torch.uint16:  # a 16-bit PNG that PIL calls RGB or L
            img = (img.to(torch.int32) * 255 + 32767).div(65535, rounding_mode="floor").to(torch.uint8)
        if img is not None and img.dtype == torch.uint8 and img.shape[0] in (1, 3):
            return img
    arr = np.asarray(load_image(path))
    return torch.from_numpy(arr.copy()).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1)


def _resize(img: Any, size: tuple[int, int]) -> Any:
    import torch.nn.functional as F

    if tuple(img.shape[1:]) == tuple(size):
        return img
    x = F.interpolate(img[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return x[0].round_().clamp_(0, 255).byte()


def _target_size(sizes: Counter[tuple[int, int]]) -> tuple[int, int]:
    """The most common image size (ties: the larger)."""
    return max(sizes.items(), key=lambda kv: (kv[1], kv[0][0] * kv[0][1]))[0]


def decode_image_folder(
    root: Path, classes: list[str], files: dict[str, list[tuple[str, int]]], name: str,
    image_size: tuple[int, int] | None = None, channels: int | None = None,
) -> Dataset:  # fmt: skip
    """Decode every image once. Size: ``image_size``, else the most common one; channels: ``channels``,
    else 1 when every image is grayscale and 3 otherwise."""
    import torch

    decoded: dict[str, list[Any]] = {}
    sizes: Counter[tuple[int, int]] = Counter()
    gray = True
    for split, rows in files.items():
        images = []
        for path, _ in rows:
            img = decode_image(path)
            h, w = img.shape[1:]
            if max(h, w) > MAX_SIDE:  # keep memory bounded: large photos shrink right away
                scale = MAX_SIDE / max(h, w)
                img = _resize(img, (max(1, round(h * scale)), max(1, round(w * scale))))
            sizes[tuple(img.shape[1:])] += 1
            gray = gray and img.shape[0] == 1
            images.append(img)
        decoded[split] = images
    size = tuple(image_size) if image_size else _target_size(sizes)
    want = channels or (1 if gray else 3)
    splits = {}
    resized = 0
    for split, images in decoded.items():
        pixels = torch.empty(len(images), size[0], size[1], want, dtype=torch.uint8)
        for i, img in enumerate(images):
            if tuple(img.shape[1:]) != size:
                img, resized = _resize(img, size), resized + 1
            if img.shape[0] != want:
                img = convert_channels(img[None], want)[0] if want == 3 else _to_gray_u8(img)
            pixels[i] = img.permute(1, 2, 0)
        labels = torch.tensor([label for _, label in files[split]], dtype=torch.long)
        splits[split] = Split(pixels, labels)
    source = {"kind": "imagefolder", "path": str(root), "resized_images": resized,
              "original_sizes": len(sizes), "grayscale": want == 1}  # fmt: skip
    return Dataset(name, classes, splits, source)


def _to_gray_u8(img: Any) -> Any:
    return convert_channels(img[None].float(), 1)[0].round_().clamp_(0, 255).byte()


def load_image_folder(
    root: str | os.PathLike[str], name: str = "imagefolder",
    image_size: int | Sequence[int] | None = None, channels: int | None = None, decode: bool = True,
    for_training: bool = True,
) -> Dataset:  # fmt: skip
    """An ImageFolder-layout dataset (``train/``, ``test/`` or ``val/`` of class folders), from the cache
    when its files have not changed. ``decode=False``: the file paths and labels only (to evaluate with
    the weights' own preprocessing); every split keeps its ``paths`` either way."""
    root = Path(root).expanduser().resolve()
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if size is not None:
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(map(_positive, size))):
            raise UsageError(f"image_size must be a positive integer or [height, width], got {image_size!r}")
        size = tuple(size)
    if channels not in (None, 1, 3):
        raise UsageError(f"channels must be 1 or 3, got {channels}")
    import torch

    try:
        classes, files = scan_image_folder(root, for_training)
        if not decode:
            splits = {s: Split(None, torch.tensor([y for _, y in rows], dtype=torch.long), [p for p, _ in rows])
                      for s, rows in files.items()}  # fmt: skip
            return Dataset(name, classes, splits, {"kind": "imagefolder", "path": str(root), "decoded": False})
        files_digest = fingerprint(files, root)
    except OSError as e:  # an unreadable folder, or a file removed while scanning
        raise UsageError(f"cannot read dataset folder {root}: {e}") from None
    key = {"root": str(root), "name": name, "size": size, "channels": channels, "files": files_digest}
    dataset = cached(key, lambda: decode_image_folder(root, classes, files, name, size, channels))
    for split_name, split in dataset.splits.items():
        split.paths = [p for p, _ in files[split_name]]
    return dataset


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
