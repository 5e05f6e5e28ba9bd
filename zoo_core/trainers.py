"""The trainer contract: what a trainer plugin's ``factory(job)`` receives.

A trainer (``zoo_register_trainers``) gets a ``TrainJob`` -- the model already on its device, the uint8
splits, the batched on-device pipelines, the run's settings and a run folder for checkpoints -- trains the
model in place and returns its metrics (``epochs``, ``history``, ``best_val_top1``, ...). Everything
around it (building the model for the data, preprocessing, resume bookkeeping, evaluation, publishing) is
the training plugin's, the same for every trainer.

Under torchrun (``zoo train --nproc-per-node N``) every rank calls the same factory with its own
``TrainJob``; ``job.distributed`` (``zoo_core.distributed.Distributed``) says where it stands. A trainer
that declares ``distributed=True`` when it registers must, with ``job.world_size`` above 1:

- train through ``job.distributed.wrap(job.model)`` (DistributedDataParallel: gradients averaged in
  ``backward``) and keep ``job.model`` itself for saving and evaluating;
- read its share of each epoch: ``batches(job.train, batch_size, shuffle=True, generator=g,
  rank=job.rank, world_size=job.world_size)`` with ``g`` seeded alike on every rank (``batch_size`` is per
  rank; the effective batch is ``batch_size * world_size``);
- write files (checkpoints) and report progress only where ``job.is_main``; the other ranks must make the
  same collective calls in the same order (``job.all_reduce`` for metrics, ``job.distributed.barrier()``,
  ``job.distributed.broadcast_bytes`` to hand rank 0's checkpoint to the others when resuming).

zoo then averages BatchNorm statistics over the ranks, checks that every rank holds the same weights,
evaluates on shards of the test split with the counts summed, and publishes from rank 0. A trainer that
does not declare ``distributed=True`` is refused under torchrun with a one-line error.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_core.devices import autocast
from zoo_core.distributed import Distributed
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
    ``distributed`` is this process's place in a torchrun job (one process by default); ``rank``,
    ``world_size``, ``is_main`` and ``all_reduce`` are its shortcuts.
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
    distributed: Distributed = field(default_factory=Distributed)

    @property
    def rank(self) -> int:
        return self.distributed.rank

    @property
    def world_size(self) -> int:
        return self.distributed.world_size

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and reports progress (rank 0; always true in one process)."""
        return self.distributed.is_main

    def all_reduce(self, value: Any, op: str = "sum") -> Any:
        """A metric summed (``sum``), averaged (``mean``), or the ``max`` / ``min`` over every rank."""
        return self.distributed.all_reduce(value, op)

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
        run draw the same batches, augmentations and dropout masks as an uninterrupted one (each rank its
        own dropout masks)."""
        import torch

        for epoch in range(start, self.config.epochs + 1):
            torch.manual_seed(self.config.seed * 1_000_003 + epoch + 7_919 * self.rank)
            yield epoch
