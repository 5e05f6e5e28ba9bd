"""The training plugin: the ``classifier`` and ``fast`` trainers, zoo's recipes (``zoo_train/recipes/*.json``,
with ``fastcnn``, the network of ``cifar10-fast``), and the ``zoo train``, ``zoo eval``, ``zoo datasets`` and
``zoo recipes`` commands (``zoo_train.training`` and ``zoo_train.evaluation`` are their library).

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
    register(
        "fast",
        train_fast,
        description="Few epochs, cheap steps: whitening init, SGD without decay on biases, lookahead with a "
        "moving average of the weights, one validation at the end (the cifar10-fast recipe)",
    )


@hookimpl
def zoo_register_models(register: Any) -> None:
    register(
        "fastcnn",
        build_fastcnn,
        family="fast",
        description="Whitening 2x2 conv, three conv-pool-BN groups (64, 256, 256), global max pool: the network "
        "of the cifar10-fast recipe",
        input_size=(3, 32, 32),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        num_classes=10,
        min_input_size=(1, 16, 16),
        gradcam_layer="groups.2.conv2",
        num_params=1_972_792,  # declared, so that `zoo list` never builds it to count (tests/test_recipes.py checks)
        gmacs=0.1181,
    )


@hookimpl
def zoo_register_recipes(register: Any) -> None:
    from zoo_train.recipes import register_builtin

    register_builtin(register)


@hookimpl
def zoo_register_commands(cli: Any) -> None:
    from zoo_train.cli import datasets_cmd, eval_cmd, runs_cmd, train_cmd
    from zoo_train.recipes_cli import recipes_cmd

    for command in (train_cmd, eval_cmd, datasets_cmd, runs_cmd, recipes_cmd):
        cli.add_command(command)


def train_classifier(job: Any) -> dict[str, Any]:
    """Train ``job.model`` in place; return its metrics (epochs, history, best and last validation top-1)."""
    from zoo_train.loop import train_classifier as run

    return run(job)


def train_fast(job: Any) -> dict[str, Any]:
    """The ``fast`` trainer (``zoo_train.fast``)."""
    from zoo_train.fast import train_fast as run

    return run(job)


def build_fastcnn(**kwargs: Any) -> Any:
    from zoo_train.fastnet import build

    return build(**kwargs)
