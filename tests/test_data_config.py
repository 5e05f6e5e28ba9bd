"""Preprocessing follows the weights: zoo's transform gives the very tensors torchvision's
``weights.transforms()`` and timm's ``create_transform(resolve_data_config(...))`` give; every image mode
decodes to its true colours or is refused with the file's name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo_core.data_config import create_transform, describe, resolve_data_config
from zoo_core.errors import UsageError
from zoo_core.images import load_image

RNG = np.random.default_rng(0)
PICTURES = [Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in
            [(300, 400), (500, 333), (224, 224), (97, 131)]]  # fmt: skip


@pytest.mark.parametrize("arch, weights", [
    ("resnet50", "IMAGENET1K_V2"),  # resize 232, bilinear
    ("densenet121", "IMAGENET1K_V1"),  # resize 256, crop 224
    ("efficientnet_b3", "IMAGENET1K_V1"),  # bicubic, 320 -> 300
    ("inception_v3", "IMAGENET1K_V1"),  # 342 -> 299
])  # fmt: skip
def test_transform_equals_torchvisions_weights_transforms(arch, weights):
    import torchvision.models as tvm

    reference = tvm.get_model_weights(arch)[weights].transforms()
    ours = create_transform(resolve_data_config(f"torchvision:{arch}.{weights.lower()}"))
    for picture in PICTURES:
        assert torch.equal(ours(picture), reference(picture)), (arch, picture.size)


@pytest.mark.parametrize("name", [
    "resnet50.a1_in1k",  # crop_pct 0.95, bicubic
    "efficientnet_b3.ra2_in1k",
    "convnext_base.fb_in22k_ft_in1k_384",  # crop_mode squash
    "vit_base_patch16_sapiens2.fb",  # a non-square input (1024 x 768)
    "deepseek_vit_412m.deepseek_v4_1_flash",  # crop_mode border: fit, pad with the mean, crop
])  # fmt: skip
def test_transform_equals_timms_create_transform(name):
    import timm
    from timm.data import create_transform as timm_transform
    from timm.data import resolve_data_config as timm_config

    reference = timm_transform(**timm_config(pretrained_cfg=timm.models.get_pretrained_cfg(name).to_dict()))
    ours = create_transform(resolve_data_config(f"timm:{name}"))
    for picture in PICTURES:
        assert torch.equal(ours(picture), reference(picture)), (name, picture.size)


def test_overrides_keep_the_crop_share_and_are_described():
    pre = resolve_data_config("resnet50.imagenet1k_v1")  # torchvision: resize 256, crop 224
    assert pre.input_size == (3, 224, 224) and pre.resize_size == 256
    small = resolve_data_config("resnet50.imagenet1k_v1", img_size=112)
    assert small.input_size == (3, 112, 112) and small.crop_pct == 0.875 and small.resize_size is None
    assert create_transform(small)(PICTURES[0]).shape == (3, 112, 112)
    assert describe(pre).startswith("resize 256 (bilinear), centre crop 224x224, RGB")
    with pytest.raises(UsageError, match="--crop-pct must be in"):
        resolve_data_config("resnet50.imagenet1k_v1", crop_pct=3)


def test_a_model_without_weights_uses_its_own_input():
    pre = resolve_data_config("improvedcnn")
    assert pre.input_size == (3, 32, 32) and pre.crop_pct == 1.0
    assert create_transform(pre)(PICTURES[1]).shape == (3, 32, 32)


# -- image modes ------------------------------------------------------------------------------------------

GRAY = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (16, 1)), "L")  # 16 x 25 ramp
_Y, _X = np.mgrid[0:16, 0:25]
# smooth colours, so that lossy JPEG stays close to them
COLOUR = Image.fromarray(np.stack([_X * 10, _Y * 15, 255 - _X * 5], -1).astype(np.uint8), "RGB")


def _saved(tmp_path: Path, image: Image.Image, name: str) -> Path:
    path = tmp_path / name
    image.save(path)
    return path


def _sixteen_bit(tmp_path: Path, mode: str, fmt: str) -> Path:
    values = np.asarray(GRAY).astype(np.uint32) * 257  # the same ramp, on 16 bits
    image = Image.fromarray(values.astype(np.int32), "I") if mode == "I" else Image.fromarray(values.astype(np.uint16))
    return _saved(tmp_path, image, f"sixteen_{mode.replace(';', '')}.{fmt}")


# mode -> (how to make a file of that mode, the colours it must decode to, tolerance)
def _cases(tmp_path: Path) -> dict[str, tuple[Path, Image.Image, int]]:
    float_gray = Image.fromarray(np.asarray(GRAY).astype(np.float32) / 255.0, "F")
    return {
        "L (png)": (_saved(tmp_path, GRAY, "l.png"), GRAY, 0),
        "RGB (jpeg)": (_saved(tmp_path, COLOUR, "rgb.jpg"), COLOUR, 16),  # JPEG is lossy
        "RGB (png)": (_saved(tmp_path, COLOUR, "rgb.png"), COLOUR, 0),
        "RGBA (png)": (_saved(tmp_path, COLOUR.convert("RGBA"), "rgba.png"), COLOUR, 0),
        "P (png)": (_saved(tmp_path, COLOUR.convert("P", palette=Image.Palette.ADAPTIVE), "p.png"),
                    COLOUR.convert("P", palette=Image.Palette.ADAPTIVE).convert("RGB"), 0),
        "P (gif)": (_saved(tmp_path, COLOUR.convert("P"), "p.gif"), COLOUR.convert("P").convert("RGB"), 0),
        "LA (png)": (_saved(tmp_path, GRAY.convert("LA"), "la.png"), GRAY, 0),
        "1 (bmp)": (_saved(tmp_path, GRAY.point(lambda v: 255 if v > 120 else 0).convert("1"), "one.bmp"),
                    GRAY.point(lambda v: 255 if v > 120 else 0), 0),
        "CMYK (jpeg)": (_saved(tmp_path, COLOUR.convert("CMYK"), "cmyk.jpg"), COLOUR, 16),
        "CMYK (tiff)": (_saved(tmp_path, COLOUR.convert("CMYK"), "cmyk.tif"), COLOUR, 1),
        "YCbCr (tiff)": (_saved(tmp_path, COLOUR.convert("YCbCr"), "ycbcr.tif"), COLOUR, 4),
        "I;16 (png)": (_sixteen_bit(tmp_path, "I;16", "png"), GRAY, 1),
        "I;16 (tiff)": (_sixteen_bit(tmp_path, "I;16", "tif"), GRAY, 1),
        "I (tiff)": (_sixteen_bit(tmp_path, "I", "tif"), GRAY, 1),
        "F (tiff)": (_saved(tmp_path, float_gray, "f.tif"), GRAY, 1),
        "RGB (webp lossless)": (tmp_path / "rgb.webp", COLOUR, 0),
        "L (pgm)": (_saved(tmp_path, GRAY, "l.pgm"), GRAY, 0),
        "RGB (ppm)": (_saved(tmp_path, COLOUR, "rgb.ppm"), COLOUR, 0),
    }


def test_every_mode_decodes_to_its_true_colours(tmp_path):
    COLOUR.save(tmp_path / "rgb.webp", lossless=True)
    from zoo_data.image_folder import decode_image

    for case, (path, expected, tolerance) in _cases(tmp_path).items():
        want = np.asarray(expected).astype(int)
        for decoded in (np.asarray(load_image(path)), decode_image(str(path)).permute(1, 2, 0).numpy()):
            got = decoded.astype(int).reshape(want.shape)  # grayscale stays one channel, colour three
            assert np.abs(got - want).max() <= tolerance, (case, np.abs(got - want).max())


def test_images_that_cannot_be_read_are_refused_with_their_name(tmp_path):
    from zoo_data.image_folder import decode_image

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    wild = tmp_path / "wild.tif"
    Image.fromarray(np.full((4, 4), 1e6, dtype=np.float32), "F").save(wild)
    for path, why in ((broken, "broken.png"), (wild, "neither [0, 1] nor [0, 255]")):
        for read in (load_image, lambda p: decode_image(str(p))):
            with pytest.raises(UsageError, match="cannot decode image .*" + why.replace("[", r"\[")):
                read(path)
