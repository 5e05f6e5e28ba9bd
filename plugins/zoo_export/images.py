"""The pictures the parity gate runs: the weights' own evaluation data where zoo knows it, else a generated set.

Either way every picture goes through the weights' own preprocessing (``create_transform``), so the export is
checked on inputs of the kind it will see. The generated set is fixed (seeded) and varied on purpose: dark and
bright, smooth and busy, grey and coloured, so that a forward pass that branches on its input's statistics
takes different branches across the set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoo_core.plugin_api import Preprocessing, UsageError, ZooError, first_line

MIN_IMAGES = 64
SEED = 20240521


@dataclass
class ParityImages:
    """Normalised inputs (N x C x H x W float32) and where they came from."""

    tensors: Any
    source: str  # "digits test", "generated (seed ...)"

    def __len__(self) -> int:
        return int(self.tensors.shape[0])


def parity_images(pre: Preprocessing, *, dataset: str | None = None, data_dir: str | None = None,
                  known_dataset: str | None = None, count: int = MIN_IMAGES,
                  warn: Any = None) -> ParityImages:  # fmt: skip
    """``count`` pictures preprocessed as ``pre`` says: from ``dataset`` (given by the user: its failure is an
    error), else from ``known_dataset`` (the weights' own: its failure falls back, with a ``warn``), else
    generated."""
    if count < MIN_IMAGES:
        raise UsageError(f"the parity gate needs at least {MIN_IMAGES} images, got {count}")
    if dataset:
        return dataset_images(pre, dataset, data_dir, count)
    if known_dataset:
        try:
            return dataset_images(pre, known_dataset, data_dir, count)
        except (ZooError, OSError, ValueError) as e:
            if warn is not None:
                warn(f"the weights' dataset {known_dataset} cannot be read ({first_line(e)}); checking parity on "
                     f"generated images")  # fmt: skip
    return generated(pre, count)


def dataset_images(pre: Preprocessing, name: str, data_dir: str | None, count: int,
                   split_name: str | None = None) -> ParityImages:  # fmt: skip
    """``count`` pictures spread evenly over a split of the dataset (default: its evaluation split; every class
    shows, since folders are in class order); fewer when the split has fewer, but at least ``MIN_IMAGES``."""
    import torch
    from PIL import Image

    from zoo_core.plugin_api import create_transform, load_dataset, load_image

    data = load_dataset(name, data_dir, decode=False, for_training=False)
    split_name = split_name or data.eval_split
    split = data.split(split_name)
    if len(split) < MIN_IMAGES:
        raise UsageError(f"dataset {data.name} {split_name} has {len(split)} images; at least {MIN_IMAGES} are "
                         f"needed")  # fmt: skip
    count = min(count, len(split))
    index = torch.linspace(0, len(split) - 1, count).round().long().unique().tolist()
    transform = create_transform(pre)
    pictures = []
    for i in index:
        if split.pixels is not None:
            pixels = split.pixels[i].numpy()
            pictures.append(Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels))
        else:
            pictures.append(load_image(split.paths[i]))
    return ParityImages(torch.stack([transform(p) for p in pictures]), f"{data.name} {split_name}")


def generated(pre: Preprocessing, count: int = MIN_IMAGES, seed: int = SEED) -> ParityImages:
    """A fixed, varied set of ``count`` pictures (seeded), preprocessed as ``pre`` says."""
    import numpy as np
    import torch
    from PIL import Image

    from zoo_core.plugin_api import create_transform

    rng = np.random.default_rng(seed)
    _, h, w = pre.input_size
    # a little larger than the input, so resizes and crops do real work, as they do on photos
    side_h, side_w = max(8, round(h * 1.15)), max(8, round(w * 1.15))
    transform = create_transform(pre)
    kinds = (_gradient, _blobs, _stripes, _checks, _smooth_noise, _noise, _flat)
    pictures = []
    for i in range(count):
        picture = kinds[i % len(kinds)](rng, side_h, side_w)
        # brightness and contrast sweep the set from dark to bright, so input statistics vary widely
        level = (i * 0.61803) % 1.0
        picture = np.clip(picture * rng.uniform(0.3, 1.2) + (level - 0.5) * 200, 0, 255)
        if rng.random() < 0.2:
            picture = np.repeat(picture.mean(axis=2, keepdims=True), 3, axis=2)
        pictures.append(Image.fromarray(picture.astype(np.uint8), "RGB"))
    return ParityImages(torch.stack([transform(p) for p in pictures]), f"generated (seed {seed})")


def _grid(h: int, w: int) -> tuple[Any, Any]:
    import numpy as np

    return np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")


def _gradient(rng: Any, h: int, w: int) -> Any:
    import numpy as np

    y, x = _grid(h, w)
    angle = rng.uniform(0, np.pi)
    t = np.cos(angle) * x + np.sin(angle) * y
    ends = rng.uniform(0, 255, (2, 3))
    return ends[0] + (ends[1] - ends[0]) * t[..., None]


def _blobs(rng: Any, h: int, w: int) -> Any:
    import numpy as np

    y, x = _grid(h, w)
    out = np.full((h, w, 3), rng.uniform(0, 120, 3))
    for _ in range(rng.integers(2, 6)):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.35)
        mask = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
        out += mask[..., None] * rng.uniform(-100, 200, 3)
    return out


def _stripes(rng: Any, h: int, w: int) -> Any:
    import numpy as np

    y, x = _grid(h, w)
    angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 12)
    wave = np.sin(2 * np.pi * freq * (np.cos(angle) * x + np.sin(angle) * y))
    a, b = rng.uniform(0, 255, (2, 3))
    return a + (b - a) * (wave[..., None] + 1) / 2


def _checks(rng: Any, h: int, w: int) -> Any:
    import numpy as np

    cells = int(rng.integers(2, 9))
    y, x = _grid(h, w)
    board = (np.floor(y * cells) + np.floor(x * cells)) % 2
    a, b = rng.uniform(0, 255, (2, 3))
    return a + (b - a) * board[..., None]


def _smooth_noise(rng: Any, h: int, w: int) -> Any:
    import numpy as np
    from PIL import Image

    coarse = rng.uniform(0, 255, (int(rng.integers(3, 8)), int(rng.integers(3, 8)), 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse, "RGB").resize((w, h), Image.BICUBIC), dtype=float)


def _noise(rng: Any, h: int, w: int) -> Any:
    return rng.uniform(0, 255, (h, w, 3))


def _flat(rng: Any, h: int, w: int) -> Any:
    return rng.uniform(0, 255, 3) + rng.normal(0, 12, (h, w, 3))
