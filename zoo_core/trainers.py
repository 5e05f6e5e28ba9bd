"""The trainer contract: what a trainer plugin's ``factory(job)`` receives.

A trainer (``zoo_register_trainers``) gets a ``TrainJob`` -- the model already on its device, the uint8
splits, the batched on-device pipelines, the run's settings and a run folder for checkpoints -- trains the
model in place and returns its metrics (``epochs``, ``history``, ``best_val_top1``, ...). Everything
around it (building the model for the data, preprocessing, resume bookkeeping, evaluation, publishing) is
the training plugin's, the same for every trainer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_core.devices import autocast
from zoo_core.errors import ZooError


class TrainingError(ZooError):
    """Training went wrong in a way the user can act on (a diverging loss, a broken trainer)."""


class Reporter:
    """Progress callbacks a trainer calls; the command line draws them, the library stays silent."""

    def info(self, text: str) -> None:
        pass

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def progress(self, step: int, loss: float, acc: float, images_per_s: float) -> None:
        pass

    def epoch_end(self, stats: dict[str, Any]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class TrainJob:
    """Everything a trainer needs.

    ``config`` holds the run's settings (``epochs``, ``batch_size``, ``lr``, ``optimizer``, ``momentum``,
    ``weight_decay``, ``schedule``, ``augment``, ``precision``, ``seed``, ...). ``params`` are the parameters
    to optimise (only the head with --freeze-backbone); call ``train_mode()`` instead of ``model.train()`` so
    frozen norms stay frozen. ``train_pipeline(images, generator, train=True)`` turns a uint8 batch into the
    model's normalised float input on ``device``; ``zoo_core.datasets.batches`` iterates a split.
    """

    model: Any
    train: Any  # zoo_core.datasets.Split (uint8), on the device when it fits
    val: Any
    train_pipeline: Any
    eval_pipeline: Any
    config: Any
    device: Any
    run_dir: Path
    resume: bool
    params: list[Any]
    labels: list[str]
    reporter: Reporter = field(default_factory=Reporter)
    frozen_modules: list[Any] = field(default_factory=list)

    def train_mode(self) -> None:
        self.model.train()
        for module in self.frozen_modules:
            module.eval()

    def autocast(self) -> Any:
        return autocast(self.device, self.config.precision)

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.safetensors"

    def epochs(self, start: int) -> Iterator[int]:
        """Epoch numbers from ``start`` to ``config.epochs`` with the per-epoch seeding that makes a resumed
        run draw the same batches, augmentations and dropout masks as an uninterrupted one."""
        import torch

        for epoch in range(start, self.config.epochs + 1):
            torch.manual_seed(self.config.seed * 1_000_003 + epoch)
            yield epoch
