"""The training-side data pipeline: uint8 batches to normalised float batches on the training device, with
channel conversion, resize and augmentation batched on tensors; and the per-channel statistics a model
trained from scratch is normalised with."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoo_core.plugin_api import Split, UsageError, convert_channels

AUGMENTS = ("none", "standard", "strong", "flip-translate")


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


class BatchPipeline:
    """uint8 batches -> normalised float batches on ``device``: channel conversion, resize, augmentation
    (``none``, ``standard`` = random crop with padding + flip, ``strong`` = standard + rotation 15 deg and
    colour jitter 0.2, ``flip-translate`` = flip + shifts of up to 2 px with a mirrored border), all batched on
    tensors."""

    def __init__(
        self, *, mean: Sequence[float], std: Sequence[float], size: Sequence[int], channels: int,
        augment: str = "none", device: Any = "cpu", channels_last: bool = True,
        resize_to: Sequence[int] | None = None,
    ) -> None:  # fmt: skip
        import torch

        if augment not in AUGMENTS:
            raise UsageError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTS)}")
        if len(mean) != channels or len(std) != channels:
            raise UsageError(f"mean/std have {len(mean)}/{len(std)} values for {channels}-channel input")
        self.device = torch.device(device)
        self.size = (int(size[0]), int(size[1]))
        # resize to this first, then centre-crop to ``size``: weights whose preprocessing crops
        self.resize_to = (int(resize_to[0]), int(resize_to[1])) if resize_to is not None else None
        self.channels, self.augment, self.channels_last = channels, augment, channels_last
        std_t = torch.tensor(std, dtype=torch.float32, device=self.device)
        mean_t = torch.tensor(mean, dtype=torch.float32, device=self.device)
        self.scale, self.offset = 1.0 / (255.0 * std_t), -mean_t / std_t  # per channel, last dimension
        # torchvision's RandomCrop(32, padding=4), scaled for other sizes; flip-translate shifts half as far
        self.padding = max(1, round((2 if augment == "flip-translate" else 4) * min(self.size) / 32))

    def __call__(self, images: Any, generator: Any = None, train: bool = False, flip: bool = True) -> Any:
        """The batch for the network; ``train`` augments it, flipping half of the images unless ``flip`` is
        False (a trainer that flips them itself, as the ``fast`` trainer's alternating flip does)."""
        import torch

        x = images.to(self.device, non_blocking=True)
        augment = self.augment if train else "none"
        same_size = tuple(x.shape[2:]) == self.size and self.resize_to in (None, self.size)
        if augment != "none" and same_size:
            x = self._crop_flip(x, generator, flip)  # on uint8: a quarter of the bytes to move
        if x.shape[1] != self.channels or not same_size or augment == "strong":
            x = convert_channels(x.float(), self.channels)
            if not same_size and self.resize_to is not None:
                x = torch.nn.functional.interpolate(x, size=self.resize_to, mode="bilinear", antialias=True,
                                                    align_corners=False)  # fmt: skip
                top = int(round((self.resize_to[0] - self.size[0]) / 2))
                left = int(round((self.resize_to[1] - self.size[1]) / 2))
                x = x[:, :, top : top + self.size[0], left : left + self.size[1]]
            elif not same_size:
                x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", antialias=True,
                                                    align_corners=False)  # fmt: skip
                if augment != "none":
                    x = self._crop_flip(x, generator, flip)
            if augment == "strong":
                x = x.contiguous()  # grid_sample and the per-image reductions are far slower on channels_last
                x = self._jitter(self._rotate(x, generator), generator)
        # (x / 255 - mean) / std as one fused multiply-add over N x H x W x C memory, straight from uint8
        x = torch.addcmul(self.offset, x.permute(0, 2, 3, 1), self.scale).permute(0, 3, 1, 2)
        return x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)

    def _rand(self, n: int, generator: Any) -> Any:
        import torch

        return torch.rand(n, generator=generator).to(self.device)

    def _crop_flip(self, x: Any, generator: Any, flip: bool = True) -> Any:
        """Random crop (zero padding) and horizontal flip of half of the images (``flip``) with one gather of
        pixels."""
        import torch
        import torch.nn.functional as F

        n, c, h, w = x.shape
        p = self.padding
        if self.augment == "flip-translate":
            return self._translate_flip(x, generator, flip)
        padded = F.pad(x.permute(0, 2, 3, 1), (0, 0, p, p, p, p))  # N x (H+2p) x (W+2p) x C
        oy = torch.randint(0, 2 * p + 1, (n, 1, 1), generator=generator).to(self.device)
        ox = torch.randint(0, 2 * p + 1, (n, 1, 1), generator=generator).to(self.device)
        ar_w = torch.arange(w, device=self.device).view(1, 1, w)
        rows = oy + torch.arange(h, device=self.device).view(1, h, 1)
        cols = ox + (self._flipped(ar_w, n, generator) if flip else ar_w)
        pixel = (torch.arange(n, device=self.device).view(n, 1, 1) * (h + 2 * p) + rows) * (w + 2 * p) + cols
        return padded.reshape(-1, c).index_select(0, pixel.view(-1)).view(n, h, w, c).permute(0, 3, 1, 2)

    def _translate_flip(self, x: Any, generator: Any, flip: bool = True) -> Any:
        """Shift every image by up to ``padding`` pixels each way, the uncovered border mirrored from the image
        (no black bars for the network to learn), and flip half of them (``flip``): one gather of pixels."""
        import torch

        n, c, h, w = x.shape
        p = self.padding
        oy = torch.randint(-p, p + 1, (n, 1, 1), generator=generator).to(self.device)
        ox = torch.randint(-p, p + 1, (n, 1, 1), generator=generator).to(self.device)
        ar_w = torch.arange(w, device=self.device).view(1, 1, w)
        rows = _mirror(oy + torch.arange(h, device=self.device).view(1, h, 1), h)
        cols = _mirror(ox + (self._flipped(ar_w, n, generator) if flip else ar_w), w)
        pixel = (torch.arange(n, device=self.device).view(n, 1, 1) * h + rows) * w + cols
        return x.permute(0, 2, 3, 1).reshape(-1, c).index_select(0, pixel.view(-1)).view(n, h, w, c).permute(0, 3, 1, 2)

    def _flipped(self, columns: Any, n: int, generator: Any) -> Any:
        """The column indices (1 x 1 x W) of ``n`` images, reversed for a random half of them."""
        import torch

        flip = (torch.rand(n, 1, 1, generator=generator) < 0.5).to(self.device)
        return torch.where(flip, columns.shape[2] - 1 - columns, columns)

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


def _mirror(index: Any, size: int) -> Any:
    """Positions outside 0..size-1 reflected back inside (-1 -> 1, size -> size - 2), for shifts under ``size``."""
    index = index.abs()
    return (size - 1) - (size - 1 - index).abs()
