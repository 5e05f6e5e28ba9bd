"""FastCNN, the network of the ``cifar10-fast`` recipe: a small VGG-like net built for few epochs.

A fixed 2x2 "whitening" convolution first (its filters are set from the training images by the ``fast``
trainer: the eigenvectors of the 2x2 patches' covariance, so the first learned layer sees decorrelated
inputs), then three groups of conv 3x3 -> max-pool -> batch norm -> GELU -> conv 3x3 -> batch norm -> GELU,
global max pooling and a linear classifier whose logits are scaled down (a temperature that keeps the early
steps of a high learning rate stable). Each conv starts as a partial identity (Dirac), so a fresh network
passes its input through. The norms' scales stay 1 (only their shifts learn): with every conv followed by a
norm, a learned scale only changes the effective learning rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_WIDTHS = (64, 256, 256)
LOGIT_SCALE = 1 / 9
BN_MOMENTUM = 0.4  # batch statistics move fast: the network changes a lot within a short run


def _norm(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, momentum=BN_MOMENTUM, eps=1e-12)
    norm.weight.requires_grad_(False)
    return norm


def _dirac(conv: nn.Conv2d) -> nn.Conv2d:
    """The first ``in_channels`` filters pass their input channel through; the others keep their random init."""
    with torch.no_grad():
        n = min(conv.in_channels, conv.out_channels)
        nn.init.dirac_(conv.weight[:n])
    return conv


class ConvGroup(nn.Module):
    """conv -> max-pool (halves the side) -> BN -> GELU -> conv -> BN -> GELU."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__()
        self.conv1 = _dirac(nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False))
        self.norm1 = _norm(channels_out)
        self.conv2 = _dirac(nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False))
        self.norm2 = _norm(channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class FastCNN(nn.Module):
    """Whitening 2x2 conv (fixed once set), three ConvGroups, global max pool, scaled linear classifier."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, widths: Sequence[int] = DEFAULT_WIDTHS) -> None:
        super().__init__()
        if len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"widths must be three positive channel counts, got {list(widths)}")
        self.num_classes = num_classes
        patch = in_chans * 2 * 2
        self.whiten = nn.Conv2d(in_chans, 2 * patch, 2, bias=False)  # each eigen-direction with both signs
        self.whiten_bias = nn.Parameter(torch.zeros(2 * patch))
        channels = [2 * patch, *widths]
        self.groups = nn.Sequential(*(ConvGroup(channels[i], channels[i + 1]) for i in range(3)))
        self.head: nn.Module = nn.Linear(widths[-1], num_classes, bias=False) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.whiten.weight.requires_grad:
            x = self.whiten(x)
        else:  # fixed filters: no gradient to compute for them, nor for the input
            with torch.no_grad():
                x = self.whiten(x)
        x = F.gelu(x + self.whiten_bias.view(1, -1, 1, 1).to(x.dtype))
        x = self.groups(x)
        x = torch.amax(x, dim=(2, 3))
        return self.head(x) * LOGIT_SCALE if self.num_classes else x

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """A new classifier for ``num_classes`` (0: none, the model returns its pooled features)."""
        self.num_classes = num_classes
        features = self.groups[-1].conv2.out_channels
        device = self.whiten.weight.device
        self.head = nn.Linear(features, num_classes, bias=False).to(device) if num_classes else nn.Identity()

    @torch.no_grad()
    def set_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the 2x2 filters from normalised images (N x C x H x W): each output is a patch projected on one
        eigenvector of the patches' covariance, divided by the square root of its eigenvalue, and then freeze
        them."""
        c = self.whiten.in_channels
        patches = images.float().unfold(2, 2, 1).unfold(3, 2, 1)  # N, C, H-1, W-1, 2, 2
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4)
        patches = patches - patches.mean(0)
        # float32 products (a fifth of the time of float64 for 5,000 images), float64 from the sums on
        covariance = (patches.T @ patches).double() / max(len(patches) - 1, 1)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp(min=0) + eps)[:, None]).reshape(c * 4, c, 2, 2)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).to(self.whiten.weight.dtype))
        self.whiten.weight.requires_grad_(False)


def build(num_classes: int = 10, in_chans: int = 3, widths: Sequence[int] = DEFAULT_WIDTHS) -> FastCNN:
    return FastCNN(num_classes=num_classes, in_chans=in_chans, widths=tuple(int(w) for w in widths))
