"""Built-in datasets: cifar10, imagefolder, digits, synthetic.

Each builder returns a ``zoo_core.plugin_api.Dataset`` of uint8 tensors; image folders are decoded once
and cached (``zoo_data.image_folder``). Builders import torch only when called, so registering them is free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo_core import hookimpl


@hookimpl
def zoo_register_datasets(register: Any) -> None:
    register(
        "cifar10",
        build_cifar10,
        description="CIFAR-10: 60,000 32x32 colour images in 10 classes (torchvision download, or an "
        "ImageFolder copy via --data-dir or $ZOO_DATA/cifar10)",
        num_classes=10,
        input_size=[3, 32, 32],
        needs_data_dir=False,
    )
    register(
        "imagefolder",
        build_imagefolder,
        description="Your own images: DIR/train/<class>/* and DIR/test/<class>/* (or val/); any size, "
        "grayscale or colour",
        needs_data_dir=True,
    )
    register(
        "digits",
        build_digits,
        description="scikit-learn's bundled 8x8 grayscale handwritten digits (1,797 images, offline)",
        num_classes=10,
        input_size=[1, 8, 8],
        needs_data_dir=False,
    )
    register(
        "synthetic",
        build_synthetic,
        description="Random images with a faint class pattern, for throughput work (options: num_classes, "
        "image_size, channels, train_size, test_size, seed)",
        num_classes=10,
        input_size=[3, 32, 32],
        needs_data_dir=False,
    )


def _default_dir(name: str) -> Path | None:
    """``$ZOO_DATA/<name>`` when it holds an ImageFolder copy."""
    root = os.environ.get("ZOO_DATA")
    if root and (Path(root) / name / "train").is_dir():
        return Path(root) / name
    return None


def build_cifar10(
    data_dir: str | None = None, image_size: int | list[int] | None = None, channels: int | None = None,
    decode: bool = True, for_training: bool = True,
) -> Any:
    """CIFAR-10 from an ImageFolder copy, a torchvision ``cifar-10-batches-py`` folder, or a download."""
    from zoo_core.plugin_api import UsageError
    from zoo_data.image_folder import load_image_folder

    folder = Path(data_dir).expanduser() if data_dir else _default_dir("cifar10")
    if folder is not None and (folder / "train").is_dir():
        return load_image_folder(folder, name="cifar10", image_size=image_size, channels=channels, decode=decode,
                                 for_training=for_training)  # fmt: skip
    if image_size is not None or channels is not None:
        raise UsageError("cifar10's image_size and channels options need an ImageFolder copy (--data-dir); "
                         "torchvision's copy is 32x32 RGB")  # fmt: skip
    return _torchvision_cifar10(folder)


def _torchvision_cifar10(folder: Path | None) -> Any:
    from zoo_core.plugin_api import UsageError, downloads_dir, first_line, from_arrays

    if folder is not None and not folder.is_dir():
        raise UsageError(f"dataset folder {folder} does not exist")
    root = folder or downloads_dir() / "cifar10"
    download = folder is None
    try:
        from torchvision.datasets import CIFAR10

        train = CIFAR10(str(root), train=True, download=download)
        test = CIFAR10(str(root), train=False, download=download)
    except Exception as e:  # noqa: BLE001 - no network, a partial download, a wrong folder: one message
        msg = first_line(e)
        raise UsageError(
            f"cannot {'download' if download else 'read'} CIFAR-10 in {root} ({msg}); pass --data-dir with "
            "an ImageFolder copy (train/<class>/*.jpg, test/<class>/*.jpg) or set ZOO_DATA"
        ) from None
    splits = {"train": (train.data, train.targets), "test": (test.data, test.targets)}
    return from_arrays("cifar10", train.classes, splits, kind="torchvision", path=str(root))


def build_imagefolder(
    data_dir: str | None = None, image_size: int | list[int] | None = None, channels: int | None = None,
    decode: bool = True, for_training: bool = True,
) -> Any:
    """Any folder with ``train/`` and ``test/`` (or ``val/``) of class subfolders; to evaluate, a val/ or
    test/ alone, or class folders straight in the folder."""
    from zoo_core.plugin_api import UsageError
    from zoo_data.image_folder import load_image_folder

    if not data_dir:
        raise UsageError("the imagefolder dataset needs --data-dir DIR (DIR/train/<class>/*, DIR/test/<class>/*)")
    return load_image_folder(data_dir, name="imagefolder", image_size=image_size, channels=channels, decode=decode,
                             for_training=for_training)  # fmt: skip


def build_digits(data_dir: str | None = None, test_fraction: float = 0.2, seed: int = 0) -> Any:
    """scikit-learn's 8x8 digits as uint8 images, split once with a fixed seed."""
    import numpy as np

    from zoo_core.plugin_api import UsageError, from_arrays

    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError("the digits dataset needs scikit-learn: pip install scikit-learn") from None
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    order = np.random.default_rng(seed).permutation(len(images))
    n_test = int(round(len(images) * float(test_fraction)))
    test, train = order[:n_test], order[n_test:]
    splits = {"train": (images[train], digits.target[train]), "test": (images[test], digits.target[test])}
    return from_arrays("digits", [str(c) for c in range(10)], splits, kind="sklearn", seed=seed)


def build_synthetic(data_dir: str | None = None, **options: Any) -> Any:
    from zoo_data.synthetic import synthetic

    return synthetic(**options)
