"""zoo's own CNNs: the classic CIFAR-10 tutorial's SimpleCNN, and ImprovedCNN (deeper, batch norm)."""

from __future__ import annotations

from typing import Any

from zoo_core import hookimpl

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


@hookimpl
def zoo_register_models(register: Any) -> None:
    # takes_input_size: the classifier is sized to the input, so the builder takes input_size=(H, W)
    common = dict(family="cnn", input_size=(3, 32, 32), mean=CIFAR10_MEAN, std=CIFAR10_STD, num_classes=10,
                  takes_input_size=True)  # fmt: skip
    register(
        "simplecnn",
        build_simplecnn,
        description="Three 3x3 conv blocks (32, 64, 128) with max-pool, fc 512, dropout 0.5",
        gradcam_layer="features.7",  # the ReLU of the last conv, before its pool: stride 4
        **common,
    )
    register(
        "improvedcnn",
        build_improvedcnn,
        description="Six 3x3 convs in four stages (32; 64x2; 128x2; 256), batch norm, fc 512, dropout 0.3",
        gradcam_layer="features.20",  # the ReLU of the last conv, before its pool: stride 8
        **common,
    )


def build_simplecnn(**kwargs: Any) -> Any:
    from zoo_cnn.models import SimpleCNN

    return SimpleCNN(**kwargs)


def build_improvedcnn(**kwargs: Any) -> Any:
    from zoo_cnn.models import ImprovedCNN

    return ImprovedCNN(**kwargs)
