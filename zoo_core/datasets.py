"""Datasets as uint8 image tensors, decoded once and cached; augmentation and normalisation batched on
the training device.

A ``Dataset`` holds its splits (``train``, ``test``, optionally ``val``) as uint8 tensors laid out
N x H x W x C in memory, so one gather crops and flips a whole batch, and the float batch it produces
is already channels_last. Image folders are decoded once into ``$ZOO_CACHE/datasets`` (safetensors),
keyed by the folder, every file's size and mtime, and the decode options; later runs load the cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_core.errors import UsageError

CACHE_VERSION = 1
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
TORCHVISION_DECODES = {".jpg", ".jpeg", ".png", ".gif", ".webp"}  # the rest go through PIL
MAX_SIDE = 256  # images are stored at most this large: the cache is for small-image training
AUGMENTS = ("none", "standard", "strong")
SPLIT_NAMES = ("train", "val", "test")


# -- the dataset type --------------------------------------------------------------------------------


@dataclass
class Split:
    """One split: ``pixels`` is uint8 N x H x W x C, ``labels`` int64 N."""

    pixels: Any
    labels: Any

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def images(self) -> Any:
        """The images as N x C x H x W (a channels_last view of ``pixels``)."""
        return self.pixels.permute(0, 3, 1, 2)

    def subset(self, index: Any) -> Split:
        return Split(self.pixels.index_select(0, index), self.labels.index_select(0, index))

    def to(self, device: Any) -> Split:
        return Split(self.pixels.to(device), self.labels.to(device))


@dataclass
class Dataset:
    """A labelled image dataset in memory: class names, splits, and where it came from."""

    name: str
    classes: list[str]
    splits: dict[str, Split]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.splits["train"].pixels.shape[3])

    @property
    def image_size(self) -> tuple[int, int]:
        shape = self.splits["train"].pixels.shape
        return int(shape[1]), int(shape[2])

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (self.channels, *self.image_size)

    @property
    def eval_split(self) -> str:
        """The split accuracy is reported on: ``test``, else ``val``."""
        return "test" if "test" in self.splits else "val"

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise UsageError(f"dataset {self.name} has no {name!r} split (it has {', '.join(self.splits)})")
        return self.splits[name]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "classes": self.classes,
            "num_classes": self.num_classes,
            "input_size": list(self.input_size),
            "splits": {k: len(v) for k, v in self.splits.items()},
            "source": self.source,
        }


def validate(dataset: Any, name: str) -> Dataset:
    """Check what a dataset builder returned, so a plugin's mistake is one clear line."""
    import torch

    if not isinstance(dataset, Dataset):
        raise UsageError(f"dataset {name}: the builder returned {type(dataset).__name__}, not a zoo Dataset")
    if "train" not in dataset.splits or not ({"test", "val"} & set(dataset.splits)):
        raise UsageError(f"dataset {name}: needs a train split and a test or val split, has {list(dataset.splits)}")
    shape = None
    for split_name, split in dataset.splits.items():
        p, y = split.pixels, split.labels
        if p.dtype != torch.uint8 or p.dim() != 4 or p.shape[3] not in (1, 3) or y.dim() != 1:
            raise UsageError(f"dataset {name}: split {split_name} must be uint8 N x H x W x C (C 1 or 3)")
        if p.shape[0] != y.shape[0] or p.shape[0] == 0:
            raise UsageError(f"dataset {name}: split {split_name} has {p.shape[0]} images, {y.shape[0]} labels")
        if shape is not None and tuple(p.shape[1:]) != shape:
            raise UsageError(f"dataset {name}: splits have different image shapes")
        shape = tuple(p.shape[1:])
        if int(y.min()) < 0 or int(y.max()) >= dataset.num_classes:
            raise UsageError(f"dataset {name}: split {split_name} has labels outside 0..{dataset.num_classes - 1}")
    return dataset


def channel_stats(split: Split, channels: int | None = None, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Per-channel mean and std in [0, 1] of a split, after converting it to ``channels`` channels."""
    import torch

    if channels in (None, split.pixels.shape[3]):
        # A histogram of the 256 byte values per channel: exact, and no float copy of the whole split.
        values = torch.arange(256, dtype=torch.float64) / 255
        counts = [torch.bincount(split.pixels[..., c].reshape(-1), minlength=256).double()
                  for c in range(split.pixels.shape[3])]  # fmt: skip
        mean = torch.stack([(h * values).sum() / h.sum() for h in counts])
        sq = torch.stack([(h * values * values).sum() / h.sum() for h in counts])
    else:
        total, total_sq, n = 0.0, 0.0, 0
        for start in range(0, len(split), chunk):
            x = convert_channels(split.images[start : start + chunk].float().div_(255), channels)
            x = x.transpose(0, 1).reshape(x.shape[1], -1).double()
            total, total_sq, n = total + x.sum(1), total_sq + (x * x).sum(1), n + x.shape[1]
        mean, sq = total / n, total_sq / n
    std = torch.sqrt(torch.clamp(sq - mean * mean, min=1e-12))
    return [round(float(v), 4) for v in mean], [round(float(v), 4) for v in std]


# -- building datasets -------------------------------------------------------------------------------


def from_arrays(name: str, classes: Sequence[str], splits: dict[str, tuple[Any, Any]], **source: Any) -> Dataset:
    """A Dataset from uint8 arrays (N x H x W x C, or N x H x W for grayscale) and integer labels."""
    import numpy as np
    import torch

    out = {}
    for split_name, (images, labels) in splits.items():
        pixels = torch.as_tensor(np.ascontiguousarray(images))
        if pixels.dim() == 3:
            pixels = pixels.unsqueeze(3)
        out[split_name] = Split(pixels.to(torch.uint8).contiguous(), torch.as_tensor(np.asarray(labels)).long())
    return Dataset(name, [str(c) for c in classes], out, dict(source))


def synthetic(
    num_classes: int = 10, image_size: int = 32, channels: int = 3, train_size: int = 5000,
    test_size: int = 1000, seed: int = 0,
) -> Dataset:  # fmt: skip
    """Random images with a faint per-class pattern (so a model can learn something), for throughput work."""
    import torch

    sizes = {"num_classes": num_classes, "image_size": image_size, "channels": channels, "train_size": train_size,
             "test_size": test_size}  # fmt: skip
    bad = [f"{k}={v!r}" for k, v in sizes.items() if not _positive(v)]
    if bad:
        raise UsageError(f"synthetic dataset sizes must be positive integers, got {', '.join(bad)}")
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(num_classes, image_size, image_size, channels, generator=g) * 96
    splits = {}
    for split_name, n in (("train", train_size), ("test", test_size)):
        labels = torch.randint(0, num_classes, (n,), generator=g)
        noise = torch.rand(n, image_size, image_size, channels, generator=g) * 160
        splits[split_name] = Split((patterns[labels] + noise).to(torch.uint8), labels)
    classes = [f"class{i}" for i in range(num_classes)]
    return Dataset("synthetic", classes, splits, {"kind": "synthetic", "seed": seed})


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _cache_file(key: str) -> Path:
    from zoo_core.paths import cache_dir

    return cache_dir() / "datasets" / f"{key}.safetensors"


def _read_cache(path: Path) -> Dataset | None:
    """The cached dataset, or None when the file is unreadable or not a valid dataset (it is then rebuilt)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = json.loads(f.metadata()["zoo_dataset"])
            splits = {s: Split(f.get_tensor(f"{s}.pixels"), f.get_tensor(f"{s}.labels")) for s in meta["splits"]}
        dataset = Dataset(meta["name"], meta["classes"], splits, {**meta["source"], "cache": str(path)})
        return validate(dataset, meta["name"])
    except (OSError, ValueError, KeyError, TypeError, SafetensorError, UsageError):
        return None


def _write_cache(path: Path, dataset: Dataset) -> None:
    from safetensors.torch import save_file

    tensors = {}
    for s, split in dataset.splits.items():
        tensors[f"{s}.pixels"], tensors[f"{s}.labels"] = split.pixels.contiguous(), split.labels.contiguous()
    meta = {"name": dataset.name, "classes": dataset.classes, "splits": list(dataset.splits),
            "source": dataset.source}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"zoo_dataset": json.dumps(meta)})
        os.replace(tmp, path)  # a reader sees the whole cache file or none
    except OSError:  # a read-only cache makes zoo slower, not broken
        tmp.unlink(missing_ok=True)


def cached(key_parts: Any, build: Callable[[], Dataset]) -> Dataset:
    """``build()`` once per distinct ``key_parts`` (JSON-able); later calls load the decoded tensors."""
    key = hashlib.sha256(json.dumps([CACHE_VERSION, key_parts], sort_keys=True).encode()).hexdigest()[:24]
    path = _cache_file(key)
    if path.is_file():
        dataset = _read_cache(path)
        if dataset is not None:
            return dataset
    dataset = build()
    _write_cache(path, dataset)
    return dataset


# -- image folders -----------------------------------------------------------------------------------


def scan_image_folder(root: Path) -> tuple[list[str], dict[str, list[tuple[Path, int]]]]:
    """``root/{train,val,test}/<class>/<image>`` -> (classes, split -> [(file, class index)])."""
    if not root.is_dir():
        raise UsageError(f"dataset folder {root} does not exist")
    if not (root / "train").is_dir():
        raise UsageError(f"{root} has no train/ folder; expected train/<class>/*.png and test/<class>/*.png")
    classes = sorted(d.name for d in os.scandir(root / "train") if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise UsageError(f"{root / 'train'} has no class folders; expected train/<class>/<image>")
    index = {c: i for i, c in enumerate(classes)}
    files: dict[str, list[tuple[Path, int]]] = {}
    for split in SPLIT_NAMES:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        rows = []
        for d in sorted(os.scandir(split_dir), key=lambda e: e.name):
            if not d.is_dir() or d.name.startswith("."):
                continue
            if d.name not in index:
                raise UsageError(f"{split_dir / d.name}: class {d.name!r} is not in train/ ({', '.join(classes)})")
            rows += [
                (Path(e.path), index[d.name])
                for e in sorted(os.scandir(d.path), key=lambda e: e.name)
                if e.is_file() and Path(e.name).suffix.lower() in IMAGE_EXTENSIONS
            ]
        if not rows:
            raise UsageError(f"{split_dir} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        files[split] = rows
    if "test" not in files and "val" not in files:
        raise UsageError(f"{root} has no test/ or val/ folder of class subfolders")
    return classes, files


def _fingerprint(files: dict[str, list[tuple[Path, int]]], root: Path) -> list[Any]:
    out = []
    for split, rows in files.items():
        for path, label in rows:
            st = path.stat()
            out.append([split, str(path.relative_to(root)), label, st.st_size, st.st_mtime_ns])
    return out


@functools.lru_cache(maxsize=1)
def _torchvision_decoder() -> Callable[[Path], Any] | None:
    """torchvision's libjpeg-turbo/libpng decoder (about twice as fast as PIL here), or None where a
    future torchvision no longer has it."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 0.29 points to torchcodec; it still works
            from torchvision.io import ImageReadMode, decode_image, read_file
    except ImportError:
        return None

    def decode(path: Path) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return decode_image(read_file(str(path)), mode=ImageReadMode.UNCHANGED)

    return decode


def _decode(path: Path) -> Any:
    """One image as a uint8 C x H x W tensor with C in (1, 3): alpha dropped, palettes expanded."""
    import torch

    try:
        decode = _torchvision_decoder() if path.suffix.lower() in TORCHVISION_DECODES else None
        if decode is not None:
            img = decode(path)
            if img.shape[0] == 2:
                img = img[:1]
            elif img.shape[0] == 4:
                img = img[:3]
        else:
            import numpy as np
            from PIL import Image

            with Image.open(path) as pil:
                gray = pil.mode in ("1", "L", "LA", "I", "I;16", "F")
                arr = np.asarray(pil.convert("L" if gray else "RGB"))
            img = torch.from_numpy(arr.copy()).reshape(arr.shape[0], arr.shape[1], -1).permute(2, 0, 1)
        if img.dtype != torch.uint8:  # 16-bit PNGs
            img = (img.float() / (65535.0 if img.dtype == torch.uint16 else img.float().max())).mul(255).byte()
        return img
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - any decoder failure is the same problem for the user
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"cannot decode image {path}: {msg}") from None


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
    root: Path, classes: list[str], files: dict[str, list[tuple[Path, int]]], name: str,
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
            img = _decode(path)
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
    image_size: int | Sequence[int] | None = None, channels: int | None = None,
) -> Dataset:  # fmt: skip
    """An ImageFolder-layout dataset (``train/``, ``test/`` or ``val/`` of class folders), from the cache
    when its files have not changed."""
    root = Path(root).expanduser().resolve()
    size = (image_size, image_size) if isinstance(image_size, int) else image_size
    if size is not None:
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(map(_positive, size))):
            raise UsageError(f"image_size must be a positive integer or [height, width], got {image_size!r}")
        size = tuple(size)
    if channels not in (None, 1, 3):
        raise UsageError(f"channels must be 1 or 3, got {channels}")
    try:
        classes, files = scan_image_folder(root)
        fingerprint = _fingerprint(files, root)
    except OSError as e:  # an unreadable folder, or a file removed while scanning
        raise UsageError(f"cannot read dataset folder {root}: {e}") from None
    key = {"root": str(root), "name": name, "size": size, "channels": channels, "files": fingerprint}
    return cached(key, lambda: decode_image_folder(root, classes, files, name, size, channels))


# -- batches and the on-device pipeline --------------------------------------------------------------


def batches(
    split: Split, batch_size: int, *, shuffle: bool = False, generator: Any = None, drop_last: bool = False,
    start: int = 0,
) -> Iterator[tuple[Any, Any]]:  # fmt: skip
    """(uint8 N x C x H x W images, labels) batches; a final batch of one is dropped when training
    (batch norm cannot use it). ``start`` skips that many batches."""
    import torch

    n = len(split)
    order = torch.randperm(n, generator=generator) if shuffle else None
    stop = n - n % batch_size if drop_last or (shuffle and n % batch_size == 1) else n
    for i in range(start * batch_size, stop, batch_size):
        if order is None:
            yield split.images[i : i + batch_size], split.labels[i : i + batch_size]
        else:
            idx = order[i : i + batch_size].to(split.pixels.device)
            yield split.pixels.index_select(0, idx).permute(0, 3, 1, 2), split.labels.index_select(0, idx)


def num_batches(split: Split, batch_size: int, train: bool = False) -> int:
    n = len(split)
    if train and n % batch_size == 1:
        n -= 1
    return -(-n // batch_size)


def convert_channels(x: Any, channels: int | None) -> Any:
    """N x C x H x W float images to ``channels`` channels: gray -> RGB repeats, RGB -> gray by luma."""
    if channels is None or x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1)
    if channels == 1 and x.shape[1] == 3:
        import torch

        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    raise UsageError(f"cannot convert {x.shape[1]}-channel images to {channels} channels")


class BatchPipeline:
    """uint8 batches -> normalised float batches on ``device``: channel conversion, resize, augmentation
    (``none``, ``standard`` = random crop with padding + flip, ``strong`` = standard + rotation 15 deg and
    colour jitter 0.2), all batched on tensors."""

    def __init__(
        self, *, mean: Sequence[float], std: Sequence[float], size: Sequence[int], channels: int,
        augment: str = "none", device: Any = "cpu", channels_last: bool = True,
    ) -> None:  # fmt: skip
        import torch

        if augment not in AUGMENTS:
            raise UsageError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTS)}")
        if len(mean) != channels or len(std) != channels:
            raise UsageError(f"mean/std have {len(mean)}/{len(std)} values for {channels}-channel input")
        self.device = torch.device(device)
        self.size = (int(size[0]), int(size[1]))
        self.channels, self.augment, self.channels_last = channels, augment, channels_last
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self.scale, self.offset = 1.0 / (255.0 * std_t), -mean_t / std_t  # per channel, last dimension
        # torchvision's RandomCrop(32, padding=4), scaled for other sizes
        self.padding = max(1, round(4 * min(self.size) / 32))

    def __call__(self, images: Any, generator: Any = None, train: bool = False) -> Any:
        import torch

        x = images.to(self.device, non_blocking=True)
        augment = self.augment if train else "none"
        same_size = tuple(x.shape[2:]) == self.size
        if augment != "none" and same_size:
            x = self._crop_flip(x, generator)  # on uint8: a quarter of the bytes to move
        if x.shape[1] != self.channels or not same_size or augment == "strong":
            x = convert_channels(x.float(), self.channels)
            if not same_size:
                x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", antialias=True,
                                                    align_corners=False)  # fmt: skip
                if augment != "none":
                    x = self._crop_flip(x, generator)
            if augment == "strong":
                x = x.contiguous()  # grid_sample and the per-image reductions are far slower on channels_last
                x = self._jitter(self._rotate(x, generator), generator)
        # (x / 255 - mean) / std as one fused multiply-add over N x H x W x C memory, straight from uint8
        x = torch.addcmul(self.offset, x.permute(0, 2, 3, 1), self.scale).permute(0, 3, 1, 2)
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def _rand(self, n: int, generator: Any) -> Any:
        import torch

        return torch.rand(n, generator=generator).to(self.device)

    def _crop_flip(self, x: Any, generator: Any) -> Any:
        """Random crop (zero padding) and horizontal flip of every image with one gather of pixels."""
        import torch
        import torch.nn.functional as F

        n, c, h, w = x.shape
        p = self.padding
        padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, p, p, p, p))  # N x (H+2p) x (W+2p) x C
        oy = torch.randint(0, 2 * p + 1, (n, 1, 1), generator=generator).to(self.device)
        ox = torch.randint(0, 2 * p + 1, (n, 1, 1), generator=generator).to(self.device)
        flip = (torch.rand(n, 1, 1, generator=generator) < 0.5).to(self.device)
        rows = oy + torch.arange(h, device=self.device).view(1, h, 1)
        ar_w = torch.arange(w, device=self.device).view(1, 1, w)
        cols = ox + torch.where(flip, w - 1 - ar_w, ar_w)
        pixel = (torch.arange(n, device=self.device).view(n, 1, 1) * (h + 2 * p) + rows) * (w + 2 * p) + cols
        return padded.reshape(-1, c).index_select(0, pixel.view(-1)).view(n, h, w, c).permute(0, 3, 1, 2)

    def _rotate(self, x: Any, generator: Any, degrees: float = 15.0) -> Any:
        import math

        import torch
        import torch.nn.functional as F

        angle = (self._rand(x.shape[0], generator) * 2 - 1) * math.radians(degrees)
        cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _jitter(self, x: Any, generator: Any, amount: float = 0.2) -> Any:
        """Brightness, contrast and saturation, each scaled by a factor in [1 - amount, 1 + amount]."""
        n = x.shape[0]

        def factor() -> Any:
            return (1 + (self._rand(n, generator) * 2 - 1) * amount).view(n, 1, 1, 1)

        x = (x * factor()).clamp_(0, 255)
        gray = convert_channels(x, 1) if x.shape[1] == 3 else x
        m = gray.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - m) * factor() + m).clamp_(0, 255)
        if x.shape[1] == 3:
            gray = convert_channels(x, 1)
            x = ((x - gray) * factor() + gray).clamp_(0, 255)
        return x

    def describe(self) -> dict[str, Any]:
        return {"size": list(self.size), "channels": self.channels, "augment": self.augment,
                "padding": self.padding, "channels_last": self.channels_last}  # fmt: skip


# -- the catalogue's datasets ------------------------------------------------------------------------


def list_datasets() -> list[dict[str, Any]]:
    """Every registered dataset with its plugin and metadata (reads the catalogue only)."""
    from zoo_core.plugins import get_catalogue

    catalogue = get_catalogue()
    return [
        {"name": e.name, "qualified": e.qualified, "plugin": e.plugin,
         "default": catalogue.is_default("dataset", e), **e.metadata}
        for e in catalogue.all("dataset")
    ]  # fmt: skip


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["image_size=28", "channels=1"]`` -> ``{"image_size": 28, "channels": 1}`` (values as JSON, else text)."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.isidentifier():
            raise UsageError(f"dataset option {pair!r} is not KEY=VALUE")
        if key == "data_dir":
            raise UsageError("give the dataset folder with --data-dir DIR, not --data-opt")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def load_dataset(name: str, /, data_dir: str | os.PathLike[str] | None = None, **options: Any) -> Dataset:
    """Build the dataset ``[plugin:]name`` from the catalogue (cached where its builder caches); ``options``
    go to its builder, so ``name`` is positional-only."""
    import inspect

    from zoo_core.plugins import get_catalogue

    entry = get_catalogue().get("dataset", name)
    builder = entry.builder
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    unknown = [k for k in options if params and not takes_any and k not in params]
    if unknown:
        known = [k for k in params if k != "data_dir"]
        has = ", ".join(known) or "none"
        raise UsageError(f"dataset {entry.name} has no option {', '.join(unknown)} (it has: {has})")
    if entry.metadata.get("needs_data_dir") and not data_dir:
        raise UsageError(f"dataset {entry.name} needs --data-dir DIR")
    try:
        dataset = builder(data_dir=str(data_dir) if data_dir else None, **options)
    except (TypeError, ValueError) as e:
        if not options:
            raise
        # An option the builder does not take, or a value of the wrong type: the user's to fix.
        raise UsageError(f"dataset {entry.name}: {e} (check its options: {options})") from None
    return validate(dataset, entry.name)
