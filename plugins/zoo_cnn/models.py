"""The tutorial CNN: three conv blocks, then a dropout-regularised two-layer classifier."""

from __future__ import annotations

import torch
from torch import nn


class SimpleCNN(nn.Module):
    """Conv(32)-Conv(64)-Conv(128), each 3x3 + ReLU + 2x2 max-pool; fc 512 + ReLU + dropout; fc.

    ``batch_norm=True`` adds batch norm after every convolution (the tutorial's ImprovedCNN).
    The flattened size follows ``input_size``, so any image size divisible into 8 works.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        input_size: int | tuple[int, int] = 32,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if h < 8 or w < 8:
            raise ValueError(f"input_size must be at least 8x8, got {h}x{w}")
        layers: list[nn.Module] = []
        channels = in_chans
        for out in (32, 64, 128):
            layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(128 * (h // 8) * (w // 8), 512),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(512, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
