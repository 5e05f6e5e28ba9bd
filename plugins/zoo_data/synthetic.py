"""Random images with a faint per-class pattern: a dataset for throughput work and quick tests."""

from __future__ import annotations

from typing import Any

from zoo_core.plugin_api import Dataset, Split, UsageError


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


