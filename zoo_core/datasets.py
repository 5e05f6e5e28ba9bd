"""The dataset contract: what a dataset plugin's builder returns, and how zoo loads one by name.

A ``Dataset`` holds its splits (``train``, ``test``, optionally ``val``) as uint8 tensors laid out
N x H x W x C in memory, so one gather crops and flips a whole batch, and the float batch it produces is
already channels_last. ``from_arrays`` makes one from arrays; ``load_dataset`` builds one from the catalogue
and validates it, so a plugin's mistake is one clear line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from zoo_core.errors import UsageError, first_line

# -- the dataset type --------------------------------------------------------------------------------


@dataclass
class Split:
    """One split: ``pixels`` is uint8 N x H x W x C, ``labels`` int64 N; ``paths`` are the image files, in
    order, when the dataset came from files (a dataset loaded with ``decode=False`` has only those)."""

    pixels: Any
    labels: Any
    paths: list[str] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def images(self) -> Any:
        """The images as N x C x H x W (a channels_last view of ``pixels``)."""
        return self.pixels.permute(0, 3, 1, 2)

    def subset(self, index: Any) -> Split:
        paths = [self.paths[i] for i in index.tolist()] if self.paths is not None else None
        pixels = self.pixels.index_select(0, index) if self.pixels is not None else None
        return Split(pixels, self.labels.index_select(0, index), paths)

    def to(self, device: Any) -> Split:
        return Split(self.pixels.to(device) if self.pixels is not None else None, self.labels.to(device), self.paths)


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
    def _decoded(self) -> Split:
        split = next((s for s in self.splits.values() if s.pixels is not None), None)
        if split is None:
            raise UsageError(f"dataset {self.name} was loaded as files only (decode=False): it has no pixels")
        return split

    @property
    def channels(self) -> int:
        return int(self._decoded.pixels.shape[3])

    @property
    def image_size(self) -> tuple[int, int]:
        shape = self._decoded.pixels.shape
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


def validate(dataset: Any, name: str, for_training: bool = True) -> Dataset:
    """Check what a dataset builder returned, so a plugin's mistake is one clear line. A dataset to train on
    needs a train split with an image of every class (at least two classes); one to evaluate needs a test
    or val split."""
    import torch

    if not isinstance(dataset, Dataset):
        raise UsageError(f"dataset {name}: the builder returned {type(dataset).__name__}, not a zoo Dataset")
    if not ({"test", "val"} & set(dataset.splits)) or (for_training and "train" not in dataset.splits):
        need = "a train split and a test or val split" if for_training else "a test or val split"
        raise UsageError(f"dataset {name}: needs {need}, has {list(dataset.splits)}")
    shape = None
    for split_name, split in dataset.splits.items():
        p, y = split.pixels, split.labels
        if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] == 0:
            raise UsageError(f"dataset {name}: split {split_name} has no labels (an int64 vector, one per image)")
        if p is None:
            if split.paths is None or len(split.paths) != y.shape[0]:
                raise UsageError(f"dataset {name}: split {split_name} has neither pixels nor one file per label")
        else:
            if p.dtype != torch.uint8 or p.dim() != 4 or p.shape[3] not in (1, 3):
                raise UsageError(f"dataset {name}: split {split_name} must be uint8 N x H x W x C (C 1 or 3)")
            if p.shape[0] != y.shape[0]:
                raise UsageError(f"dataset {name}: split {split_name} has {p.shape[0]} images, {y.shape[0]} labels")
            if shape is not None and tuple(p.shape[1:]) != shape:
                raise UsageError(f"dataset {name}: splits have different image shapes")
            shape = tuple(p.shape[1:])
        if int(y.min()) < 0 or int(y.max()) >= dataset.num_classes:
            raise UsageError(f"dataset {name}: split {split_name} has labels outside 0..{dataset.num_classes - 1}")
    if for_training:
        if dataset.num_classes < 2:
            raise UsageError(f"dataset {name} has {dataset.num_classes} class ({', '.join(dataset.classes)}): a "
                             "classifier needs at least two")  # fmt: skip
        counts = torch.bincount(dataset.splits["train"].labels, minlength=dataset.num_classes)
        empty = [c for c, n in zip(dataset.classes, counts.tolist(), strict=True) if n == 0]
        if empty:
            raise UsageError(f"dataset {name}: class(es) {', '.join(empty[:5])} have no training images and would "
                             "never be learnt; add images or remove them")  # fmt: skip
    return dataset


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


# -- reading splits ---------------------------------------------------------------------------------


def batches(
    split: Split, batch_size: int, *, shuffle: bool = False, generator: Any = None, drop_last: bool = False,
    start: int = 0, rank: int = 0, world_size: int = 1,
) -> Iterator[tuple[Any, Any]]:  # fmt: skip
    """(uint8 N x C x H x W images, labels) batches; a final batch of one is dropped when training
    (batch norm cannot use it). ``start`` skips that many batches.

    With ``world_size`` above 1, this rank's share, as ``DistributedSampler`` deals it: the epoch's order
    (the same permutation on every rank, given generators seeded alike) is padded by repeating its head to
    a multiple of ``world_size``, and rank ``r`` takes positions ``r, r + world_size, ...``. Every rank
    gets the same number of batches, and batch ``i`` of all ranks together is batch ``i`` of one process
    with ``batch_size * world_size``. Evaluation should not pad: see ``shard_indices``.
    """
    import torch

    order = torch.randperm(len(split), generator=generator) if shuffle else None
    if world_size > 1:
        order = shard_indices(len(split), rank, world_size, order=order, pad=True)
    n = len(split) if order is None else len(order)
    stop = n - n % batch_size if drop_last or (shuffle and n % batch_size == 1) else n
    for i in range(start * batch_size, stop, batch_size):
        if order is None:
            yield split.images[i : i + batch_size], split.labels[i : i + batch_size]
        else:
            idx = order[i : i + batch_size].to(split.pixels.device)
            yield split.pixels.index_select(0, idx).permute(0, 3, 1, 2), split.labels.index_select(0, idx)


def shard_indices(n: int, rank: int, world_size: int, *, order: Any = None, pad: bool = False) -> Any:
    """Rank ``rank``'s positions of ``order`` (default 0..n-1): every ``world_size``-th from ``rank``. With
    ``pad`` the order is first extended by repeating its head to a multiple of ``world_size`` (equal shares,
    as training needs); without it, each sample is in exactly one share (as exact evaluation needs)."""
    import torch

    order = torch.arange(n) if order is None else order
    if pad and n % world_size:
        extra = world_size - n % world_size
        order = torch.cat([order, order.repeat(-(-extra // max(n, 1)))[:extra]])
    return order[rank::world_size]


def num_batches(split: Split, batch_size: int, train: bool = False, world_size: int = 1) -> int:
    """How many batches ``batches`` yields (per rank, with ``world_size`` above 1)."""
    n = len(split) if world_size == 1 else -(-len(split) // world_size)
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


def load_dataset(
    name: str, /, data_dir: str | os.PathLike[str] | None = None, *, decode: bool = True, for_training: bool = True,
    **options: Any,
) -> Dataset:  # fmt: skip
    """Build the dataset ``[plugin:]name`` from the catalogue (cached where its builder caches); ``options``
    go to its builder, so ``name`` is positional-only.

    ``decode=False`` asks a builder that reads files (one that takes a ``decode`` argument) for the file
    paths only, without decoding them; other builders decode as usual. ``for_training=False`` accepts a
    dataset with only a test or val split (evaluation)."""
    import inspect

    from zoo_core.plugins import get_catalogue

    entry = get_catalogue().get("dataset", name)
    builder = entry.builder
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    reserved = {"decode", "for_training"}  # asked by zoo itself, not options a user gives
    unknown = [k for k in options if (params and not takes_any and k not in params) or k in reserved]
    if unknown:
        known = [k for k in params if k != "data_dir" and k not in reserved]
        has = ", ".join(known) or "none"
        raise UsageError(f"dataset {entry.name} has no option {', '.join(unknown)} (it has: {has})")
    if entry.metadata.get("needs_data_dir") and not data_dir:
        raise UsageError(f"dataset {entry.name} needs --data-dir DIR")
    if not decode and "decode" in params:
        options = {**options, "decode": False}
    if not for_training and "for_training" in params:
        options = {**options, "for_training": False}
    try:
        dataset = entry.build(data_dir=str(data_dir) if data_dir else None, passthrough=(TypeError, ValueError),
                              **options)  # fmt: skip
    except (TypeError, ValueError) as e:
        if not options:
            reason = first_line(e, typed=True, whole=True)
            raise UsageError(f"dataset {entry.name}: plugin '{entry.plugin}' failed: {reason}") from None
        # An option the builder does not take, or a value of the wrong type: the user's to fix.
        raise UsageError(f"dataset {entry.name}: {e} (check its options: {options})") from None
    return validate(dataset, entry.name, for_training)
