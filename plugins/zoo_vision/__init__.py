"""Use a model on pictures and see what it sees: ``zoo predict``, ``zoo activations``, ``zoo gradcam``.

The Python API (the commands are thin over it)::

    from zoo_vision import predict, activations, gradcam
    predict("simplecnn.run1", ["cat.jpg", "photos/"], top_k=3)     # [Prediction(image, probabilities, top)]
    activations("resnet18.tv_in1k", "cat.jpg").figure()           # a layer's feature maps, a matplotlib Figure
    cam = gradcam("resnet18.tv_in1k", "cat.jpg", target="tabby")  # cam.map: H x W over the picture; cam.peak
    cam.figure()                                                  # the heat map over the picture, at its size

Nothing here imports torch until a function runs.
"""

from __future__ import annotations

from typing import Any

from zoo_core import hookimpl
from zoo_vision.activations import Activations, activations, list_layers
from zoo_vision.gradcam import GradCAM, gradcam, gradcam_maps
from zoo_vision.image_model import ImageModel, load_model
from zoo_vision.predict import Prediction, image_files, predict

__all__ = [
    "Activations", "GradCAM", "ImageModel", "Prediction", "activations", "gradcam", "gradcam_maps", "image_files",
    "list_layers", "load_model", "predict",
]  # fmt: skip


@hookimpl
def zoo_register_commands(cli: Any) -> None:
    from zoo_vision.cli import activations_cmd, gradcam_cmd, predict_cmd

    for command in (predict_cmd, activations_cmd, gradcam_cmd):
        cli.add_command(command)
