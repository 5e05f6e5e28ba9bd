"""Muon for conv filters, SGD with Nesterov momentum for everything else: one optimizer, so that checkpoints
and ``--resume`` treat it like any other.

Muon (Keller Jordan, 2024) keeps a Nesterov momentum of each filter bank's gradient and steps along that
momentum orthogonalised: the bank as an out x (in * kh * kw) matrix, every singular value pushed towards 1 by
a few Newton-Schulz iterations. Each direction the gradient has moves alike, however small its share of the
gradient's norm. Every conv here is followed by batch norm, so only a filter bank's direction matters: its
norm is reset to sqrt(out) before each step, which keeps the step's angle, and so the learning rate's
meaning, the same all through the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

NEWTON_SCHULZ = (3.4445, -4.7750, 2.0315)  # quintic coefficients: the steepest slope at 0 that still settles
NEWTON_SCHULZ_STEPS = 3


def orthogonalised(matrix: torch.Tensor, steps: int = NEWTON_SCHULZ_STEPS) -> torch.Tensor:
    """``matrix`` with its singular values moved near 1 (to roughly 0.7-1.2, which serves as well as exactly
    1), in bf16: x <- a x + (b x x^T + c (x x^T)^2) x, from x scaled to a spectral norm of at most 1."""
    a, b, c = NEWTON_SCHULZ
    x = matrix.bfloat16()
    x = x / (x.norm() + 1e-7)  # the Frobenius norm bounds the largest singular value
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T  # x x^T is then the smaller Gram matrix
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x if wide else x.T


class MuonSGD(torch.optim.Optimizer):
    """Groups with ``muon=True`` (4-d conv weights): Muon with Nesterov momentum; the others: SGD with Nesterov
    momentum and weight decay, as ``torch.optim.SGD(nesterov=True)`` does it."""

    def __init__(self, params: Iterable[Any], lr: float, momentum: float, weight_decay: float = 0.0) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "muon": False})
        for group in self.param_groups:
            if group["muon"] and any(p.ndim < 2 for p in group["params"]):
                raise ValueError("Muon steps matrices: give it weights of two or more dimensions")

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # noqa: ARG002 - the Optimizer interface
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if group["muon"] or not decay else p.grad.add(p, alpha=decay)
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad.clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(grad)
                update = grad.add(state["momentum_buffer"], alpha=momentum)  # Nesterov
                if group["muon"]:
                    p.mul_(math.sqrt(p.shape[0]) / p.norm().clamp(min=1e-12))
                    update = orthogonalised(update.reshape(len(update), -1)).view_as(p).to(p.dtype)
                p.add_(update, alpha=-lr)
