"""Where the model's input lies on the original picture: the resize and crop of ``create_transform`` worked out
in image pixels, so maps computed over the input (Grad-CAM) are drawn, and their peak is reported, in the
picture's own coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zoo_core.plugin_api import Preprocessing, resize_sides


@dataclass(frozen=True)
class InputWindow:
    """Input pixel ``(u, v)`` (continuous, pixel ``i`` covering ``[i, i + 1)``) shows the image point
    ``((u + left) * scale_x, (v + top) * scale_y)``; ``left``/``top`` are negative where the crop pads."""

    image_size: tuple[int, int]  # (width, height) of the picture
    input_size: tuple[int, int]  # (width, height) of the model input
    left: float
    top: float
    scale_x: float  # picture pixels per resized pixel
    scale_y: float

    def to_image(self, u: float, v: float) -> tuple[float, float]:
        """A point of the model input in picture coordinates."""
        return (u + self.left) * self.scale_x, (v + self.top) * self.scale_y

    def box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1): the part of the picture the model sees."""
        x0, y0 = self.to_image(0, 0)
        x1, y1 = self.to_image(*self.input_size)
        w, h = self.image_size
        return max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1)

    def project(self, maps: Any) -> tuple[Any, Any]:
        """Maps over the model input (N x h x w, any resolution) -> (N x H x W over the picture, bilinear,
        0 where the model sees nothing; the H x W mask of what it sees)."""
        import torch
        import torch.nn.functional as F

        w, h = self.image_size
        tw, th = self.input_size
        maps = maps.detach().float()
        xs = (torch.arange(w, dtype=torch.float64, device=maps.device) + 0.5) / self.scale_x - self.left
        ys = (torch.arange(h, dtype=torch.float64, device=maps.device) + 0.5) / self.scale_y - self.top
        inside = ((ys >= 0) & (ys < th))[:, None] & ((xs >= 0) & (xs < tw))[None, :]
        gx = (2 * xs / tw - 1).float()
        gy = (2 * ys / th - 1).float()
        grid = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], dim=-1)  # H x W x (x, y)
        grid = grid.expand(maps.shape[0], h, w, 2)
        # "border": the half cell along the input's edge keeps the edge value instead of fading to zero.
        out = F.grid_sample(maps[:, None], grid, mode="bilinear", padding_mode="border", align_corners=False)[:, 0]
        return out * inside, inside


def _resized(pre: Preprocessing, width: int, height: int) -> tuple[int, int]:
    """(width, height) after the resize step of ``create_transform``, with the same rounding."""
    sh, sw = resize_sides(pre)
    if pre.crop_mode == "squash":
        return sw, sh
    if pre.crop_mode == "border":  # fit inside, keeping the ratio
        ratio = min(sh / height, sw / width)
        return max(1, round(width * ratio)), max(1, round(height * ratio))
    if sh == sw:  # torchvision's Resize(int): the shorter side to sh, the longer truncated
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(sh * long / short)
        return (sh, new_long) if width <= height else (new_long, sh)
    ratio = max(sh / height, sw / width)  # cover, keeping the ratio
    return max(1, round(width * ratio)), max(1, round(height * ratio))


def _crop_origin(resized: int, target: int, border: bool) -> float:
    """Where the centre crop (after the border mode's pad) starts, in resized pixels; negative where it pads."""
    shift = 0
    if border and resized < target:
        shift = (target - resized) // 2
        resized = target
    if resized < target:  # CenterCrop pads the missing part, (target - size) // 2 before the image
        return float(-((target - resized) // 2))
    return float(int(round((resized - target) / 2.0)) - shift)


def input_window(pre: Preprocessing, image_size: tuple[int, int]) -> InputWindow:
    """The window of a picture of ``image_size`` (width, height) that ``create_transform(pre)`` gives the model."""
    width, height = image_size
    rw, rh = _resized(pre, width, height)
    th, tw = pre.input_size[1:]
    border = pre.crop_mode == "border"
    return InputWindow(
        image_size=(width, height), input_size=(tw, th), left=_crop_origin(rw, tw, border),
        top=_crop_origin(rh, th, border), scale_x=width / rw, scale_y=height / rh,
    )  # fmt: skip
