"""zoo's example plugin: the model PocketNet with pretrained weights, the dataset ``stripes``, the trainer
``pocket-sgd`` and the command ``zoo stripes-demo``.

Each hook gets a ``register`` callback (or, for commands, a click group) from zoo. Builders and trainers
import torch only when called, so ``zoo list`` and ``zoo --help`` stay instant.
"""

from __future__ import annotations

from typing import Any

from zoo_core import hookimpl
from zoo_example.data import IMAGE_SIZE, LABELS, build_stripes
from zoo_example.models import build_pocketnet
from zoo_example.trainer import train_pocket_sgd

__version__ = "0.1.0"

# Each tag follows the weights schema (zoo_core/weights.py): zoo checks every field when the plugin loads.
PRETRAINED: dict[str, dict[str, Any]] = {
    "stripes": {
        "source": "zoo-example",
        "num_classes": 4,
        "labels": list(LABELS),
        "preprocessing": {"input_size": [3, 16, 16], "mean": [0.4998, 0.5013, 0.5011],
                          "std": [0.3581, 0.3593, 0.3585], "crop_pct": 1.0, "crop_mode": "squash"},
        "metrics": {"dataset": "stripes", "split": "test", "top1": 95.6},
        "model_kwargs": {"num_classes": 4},
        "sha256": "ffee3536f0da52cecda15da2767017e5f31aa08da47cf5b25e74f25fc2221d70",
        "file_size_mb": 0.0225,
        "recipe": "zoo train example:pocketnet --dataset stripes --trainer pocket-sgd --epochs 12 --lr 0.05 "
                  "--batch-size 64 --device cpu --seed 0",
        "license": "Apache-2.0",
        "description": "Trained on stripes by plugins/example/make_weights.py",
    },
}


@hookimpl
def zoo_register_models(register: Any) -> None:
    register(
        "pocketnet",
        build_pocketnet,
        family="pocketnet",
        description="Two 3x3 convs (16, 32) with batch norm, global pooling, a linear classifier",
        input_size=(3, IMAGE_SIZE, IMAGE_SIZE),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        num_classes=4,
        pretrained=PRETRAINED,
        default_tag="stripes",
    )


@hookimpl
def zoo_register_datasets(register: Any) -> None:
    register(
        "stripes",
        build_stripes,
        description="Striped 16x16 images in four orientations, generated from a seed (options: train_size, "
        "test_size, seed)",
        num_classes=len(LABELS),
        input_size=[3, IMAGE_SIZE, IMAGE_SIZE],
        needs_data_dir=False,
    )


@hookimpl
def zoo_register_trainers(register: Any) -> None:
    register("pocket-sgd", train_pocket_sgd, description="SGD with momentum 0.9 and label smoothing 0.1")


@hookimpl
def zoo_register_commands(cli: Any) -> None:
    from zoo_example.cli import stripes_demo

    cli.add_command(stripes_demo)
