"""The training plugin: the ``classifier`` trainer, and the ``zoo train``, ``zoo eval`` and ``zoo datasets``
commands (``zoo_train.training`` and ``zoo_train.evaluation`` are their library).

``classifier`` is the tutorial's supervised loop made fast and safe: cross-entropy with Adam or SGD over
uint8 batches that are augmented and normalised on the device, autocast for bf16/fp16, a progress report,
validation each epoch, an atomic safetensors checkpoint each epoch (``--resume`` continues from it), and a
clear error when the loss stops being a number; under torchrun, DistributedDataParallel over the ranks
(``zoo train --nproc-per-node N``, ``zoo_train.launch``). A third-party trainer registers the same way and gets the
same ``zoo_core.plugin_api.TrainJob``.
"""

from __future__ import annotations

from typing import Any

from zoo_core import hookimpl


@hookimpl
def zoo_register_trainers(register: Any) -> None:
    register(
        "classifier",
        train_classifier,
        description="Supervised image classification: cross-entropy, Adam or SGD, per-epoch validation and "
        "checkpoints, resumable; DistributedDataParallel under torchrun",
        distributed=True,
    )


@hookimpl
def zoo_register_commands(cli: Any) -> None:
    from zoo_train.cli import datasets_cmd, eval_cmd, runs_cmd, train_cmd

    for command in (train_cmd, eval_cmd, datasets_cmd, runs_cmd):
        cli.add_command(command)


def train_classifier(job: Any) -> dict[str, Any]:
    """Train ``job.model`` in place; return its metrics (epochs, history, best and last validation top-1)."""
    from zoo_train.loop import train_classifier as run

    return run(job)
