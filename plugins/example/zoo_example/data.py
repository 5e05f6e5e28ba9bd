"""The stripes dataset: striped images in four orientations, generated from a seed (nothing to download)."""

from __future__ import annotations

from typing import Any

LABELS = ("horizontal", "vertical", "diagonal", "antidiagonal")
IMAGE_SIZE = 16


def make_stripes(count: int, seed: int = 0, size: int = IMAGE_SIZE) -> tuple[Any, Any]:
    """``count`` uint8 images (N x H x W x 3) of stripes with a random period, phase and colours, and their
    labels (indices into LABELS)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(LABELS), count)
    period = rng.integers(3, 7, count)[:, None, None]
    phase = rng.random(count)[:, None, None] * period
    yy, xx = np.mgrid[0:size, 0:size]
    # The coordinate each orientation's stripes change along, in LABELS order.
    along = np.stack([yy, xx, yy + xx, yy - xx]).astype(np.float64)[labels]
    on = (along + phase) % period < period / 2
    fg = rng.integers(0, 256, (count, 3))
    bg = (fg + rng.integers(40, 72, (count, 3))) % 256  # near enough to fg to make the task worth learning
    images = np.where(on[..., None], fg[:, None, None, :], bg[:, None, None, :]).astype(np.float64)
    images += rng.normal(0.0, 100.0, images.shape)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), labels


def build_stripes(data_dir: str | None = None, train_size: int = 2000, test_size: int = 500, seed: int = 0) -> Any:
    """The dataset zoo loads: ``train_size`` training and ``test_size`` test images, drawn from ``seed``."""
    from zoo_core.plugin_api import UsageError, from_arrays

    if train_size < 1 or test_size < 1:
        raise UsageError("stripes: train_size and test_size must be at least 1")
    splits = {"train": make_stripes(train_size, seed), "test": make_stripes(test_size, seed + 1)}
    return from_arrays("stripes", LABELS, splits, kind="generated", seed=seed)
