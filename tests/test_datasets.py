"""Datasets: registration, image folders decoded once (grayscale, odd sizes), the cache, and the batched
on-device augmentation and normalisation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from zoo_train.pipeline import BatchPipeline, channel_stats

from zoo_core.cli import main
from zoo_core.datasets import Split, batches, load_dataset, num_batches
from zoo_core.errors import UsageError


def write_image_folder(root: Path, *, size: tuple[int, int] = (12, 12), mode: str = "L", per_class: int = 12,
                       odd: dict[str, tuple[int, int]] | None = None, seed: int = 0) -> Path:  # fmt: skip
    """A two-class folder (``top``: bright upper half, ``bottom``: bright lower half) of PNGs; ``odd``
    maps file names to other sizes."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("test", per_class // 2)):
        for label in ("bottom", "top"):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                name = f"{i:03d}.png"
                h, w = (odd or {}).get(f"{split}/{label}/{name}", size)
                img = rng.integers(0, 60, (h, w), dtype=np.uint8)
                rows = slice(0, h // 2) if label == "top" else slice(h // 2, h)
                img[rows] += 150
                pil = Image.fromarray(img, "L")
                (pil if mode == "L" else pil.convert(mode)).save(folder / name)
    return root


def test_datasets_command_lists_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {"cifar10", "imagefolder", "digits", "synthetic"} <= set(rows)
    assert rows["imagefolder"]["needs_data_dir"] is True
    assert rows["digits"]["input_size"] == [1, 8, 8] and rows["digits"]["plugin"] == "data"
    assert main(["datasets"]) == 0
    assert "imagefolder" in capsys.readouterr().out


def test_digits_are_uint8_grayscale_with_a_fixed_split() -> None:
    a, b = load_dataset("digits"), load_dataset("digits")
    assert a.input_size == (1, 8, 8) and a.num_classes == 10 and a.eval_split == "test"
    train = a.split("train")
    assert train.pixels.dtype == torch.uint8 and train.images.shape[1:] == (1, 8, 8)
    assert len(train) + len(a.split("test")) == 1797
    assert torch.equal(train.labels, b.split("train").labels)  # the same split every time
    assert int(train.pixels.max()) == 255


def test_image_folder_grayscale_odd_sizes_decoded_once(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "shapes", odd={"train/top/000.png": (20, 9), "test/bottom/001.png": (5, 7)})
    data = load_dataset("imagefolder", root)
    assert data.classes == ["bottom", "top"]
    assert data.input_size == (1, 12, 12)  # grayscale kept; the odd ones resized to the common size
    assert data.source["resized_images"] == 2 and "cache" not in data.source
    assert [len(data.split(s)) for s in ("train", "test")] == [24, 12]
    top = data.split("train").images[data.split("train").labels == 1].float()
    assert top[:, :, :6].mean() > top[:, :, 6:].mean() + 100  # decoded the right way up

    again = load_dataset("imagefolder", root)
    assert "cache" in again.source  # decoded tensors reused
    assert torch.equal(again.split("test").pixels, data.split("test").pixels)

    img = root / "train" / "top" / "003.png"
    Image.fromarray(np.zeros((12, 12), np.uint8), "L").save(img)
    os.utime(img, ns=(1, 1))
    changed = load_dataset("imagefolder", root)
    assert "cache" not in changed.source  # a changed file means a new decode
    assert load_dataset("imagefolder", root, image_size=16).input_size == (1, 16, 16)


def test_mixed_grayscale_and_colour_become_rgb(tmp_path: Path) -> None:
    root = write_image_folder(tmp_path / "mixed")
    Image.new("RGBA", (12, 12), (255, 0, 0, 128)).save(root / "train" / "top" / "red.png")
    data = load_dataset("imagefolder", root)
    assert data.channels == 3
    red = data.split("train").pixels[data.split("train").labels == 1][-1]
    assert red[..., 0].min() == 255 and red[..., 1].max() == 0  # alpha dropped, colour kept
    gray = data.split("train").pixels[0].float()
    assert torch.equal(gray[..., 0], gray[..., 1])  # grayscale images repeated into RGB


def test_bad_folders_are_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and "does not exist" in err and "Traceback" not in err

    (tmp_path / "flat").mkdir()
    with pytest.raises(UsageError, match="no train/ folder"):
        load_dataset("imagefolder", tmp_path / "flat")
    root = write_image_folder(tmp_path / "broken")
    (root / "test" / "top" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(UsageError, match=r"cannot decode image .*bad\.png"):
        load_dataset("imagefolder", root)
    (root / "test" / "top" / "bad.png").unlink()
    (root / "test" / "cow").mkdir()
    with pytest.raises(UsageError, match="class 'cow' is not in train/"):
        load_dataset("imagefolder", root)
    with pytest.raises(UsageError, match="has no option"):
        load_dataset("digits", colour=True)


@pytest.mark.parametrize(
    "opts",
    [
        ["image_size=abc"], ["image_size=[28]"], ["image_size=-3"], ["name=x"], ["data_dir=/tmp"], ["colour=1"],
    ],
)
def test_bad_data_options_are_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], opts: list[str]
) -> None:
    root = write_image_folder(tmp_path / "shapes", per_class=2)
    args = ["train", "simplecnn", "--dataset", "imagefolder", "--data-dir", str(root), "--epochs", "1"]
    code = main([*args, *(a for o in opts for a in ("--data-opt", o))])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and "Traceback" not in err and "zoo: error:" in err


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("synthetic", {"num_classes": 0}), ("synthetic", {"image_size": "big"}), ("synthetic", {"train_size": -1}),
        ("digits", {"test_fraction": "half"}), ("digits", {"seed": "abc"}),
    ],
)
def test_bad_option_values_are_usage_errors(name: str, options: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        load_dataset(name, **options)


def test_a_corrupt_cache_is_rebuilt(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    root = write_image_folder(tmp_path / "shapes", per_class=2)
    load_dataset("imagefolder", root)
    cache = Path(load_dataset("imagefolder", root).source["cache"])
    for damage in (
        lambda: cache.write_bytes(cache.read_bytes()[:100]),  # truncated
        lambda: save_file({"train.pixels": torch.zeros(1)}, str(cache)),  # not zoo's: no metadata
    ):
        damage()
        data = load_dataset("imagefolder", root)
        assert "cache" not in data.source and len(data.split("train")) == 4  # decoded again
        assert "cache" in load_dataset("imagefolder", root).source  # and the cache rewritten


def test_synthetic_takes_options() -> None:
    data = load_dataset("synthetic", num_classes=3, image_size=16, channels=1, train_size=30, test_size=9)
    assert data.input_size == (1, 16, 16) and data.num_classes == 3 and len(data.split("test")) == 9


def test_stats_are_the_split_mean_and_std() -> None:
    pixels = torch.randint(0, 256, (50, 6, 5, 3), dtype=torch.uint8)
    mean, std = channel_stats(Split(pixels, torch.zeros(50, dtype=torch.long)))
    x = pixels.double() / 255
    assert mean == pytest.approx(x.mean((0, 1, 2)).tolist(), abs=1e-4)
    assert std == pytest.approx(x.std((0, 1, 2), unbiased=False).tolist(), abs=1e-4)


def test_pipeline_normalises_into_channels_last() -> None:
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    pipe = BatchPipeline(mean=[0.1, 0.2, 0.3], std=[0.5, 0.25, 0.2], size=(8, 8), channels=3)
    out = pipe(images)
    expected = (images.float() / 255 - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor(
        [0.5, 0.25, 0.2]
    ).view(1, 3, 1, 1)
    assert torch.allclose(out, expected, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last)
    gray = BatchPipeline(mean=[0.5] * 3, std=[0.5] * 3, size=(16, 16), channels=3)(images[:, :1])
    assert gray.shape == (4, 3, 16, 16)  # grayscale to RGB and resized, as published preprocessing says
    assert torch.equal(gray[:, 0], gray[:, 2])


def test_standard_augmentation_is_pad_crop_and_flip_per_image() -> None:
    images = torch.randint(1, 256, (16, 3, 8, 8), dtype=torch.uint8)
    pipe = BatchPipeline(mean=[0.0] * 3, std=[1 / 255] * 3, size=(8, 8), channels=3, augment="standard")
    out = pipe(images, torch.Generator().manual_seed(1), train=True).round().to(torch.uint8)
    assert torch.equal(pipe(images), images.float())  # evaluation never augments
    p = pipe.padding
    padded = torch.nn.functional.pad(images, (p, p, p, p))
    crops, flips = set(), set()
    for i in range(len(images)):
        found = [(dy, dx, f) for dy in range(2 * p + 1) for dx in range(2 * p + 1) for f in (False, True)
                 if torch.equal(out[i], (lambda c: c.flip(-1) if f else c)(padded[i, :, dy:dy + 8, dx:dx + 8]))]
        assert found, f"image {i} is not a padded crop of its input"
        crops.add(found[0][:2])
        flips.add(found[0][2])
    assert len(crops) > 1 and flips == {False, True}  # each image gets its own crop and flip


def test_strong_augmentation_keeps_shape_and_range() -> None:
    images = torch.randint(0, 256, (8, 3, 12, 12), dtype=torch.uint8)
    pipe = BatchPipeline(mean=[0.0] * 3, std=[1 / 255] * 3, size=(12, 12), channels=3, augment="strong")
    out = pipe(images, torch.Generator().manual_seed(0), train=True)
    assert out.shape == images.shape and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 255.01
    standard = BatchPipeline(mean=[0.0] * 3, std=[1 / 255] * 3, size=(12, 12), channels=3, augment="standard")
    assert not torch.allclose(out, standard(images, torch.Generator().manual_seed(0), train=True))


def test_batches_cover_the_split_and_skip_a_lone_last_image() -> None:
    split = Split(torch.arange(9, dtype=torch.uint8).view(9, 1, 1, 1).expand(9, 2, 2, 1).contiguous(),
                  torch.arange(9))  # fmt: skip
    seen = torch.cat([y for _, y in batches(split, 4)])
    assert seen.tolist() == list(range(9))
    shuffled = [y for _, y in batches(split, 4, shuffle=True, generator=torch.Generator().manual_seed(0))]
    assert [len(y) for y in shuffled] == [4, 4] == [4] * num_batches(split, 4, train=True)
    for images, labels in batches(split, 4, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert torch.equal(images[:, 0, 0, 0].long(), labels)  # images stay with their labels


@pytest.mark.slow
def test_cifar10_copy_loads_through_the_cache(cifar10_dir: Path) -> None:
    data = load_dataset("cifar10", cifar10_dir)
    assert data.input_size == (3, 32, 32) and data.num_classes == 10
    assert [len(data.split(s)) for s in ("train", "test")] == [50000, 10000]
    assert "cache" in load_dataset("cifar10", cifar10_dir).source
