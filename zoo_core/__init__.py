"""zoo: one catalogue of CNNs from every plugin, with training, evaluation, benchmarks and a registry.

Importing zoo_core is cheap: torch, torchvision and timm load only when a model is built.
"""

from __future__ import annotations

from zoo_core.errors import PluginError, UnknownNameError, UsageError, WeightsError, ZooError
from zoo_core.hookspecs import hookimpl
from zoo_core.models import create_model, list_models, model_info
from zoo_core.plugins import get_catalogue
from zoo_core.weights import WeightsInfo, weights_info

__version__ = "0.1.0"

__all__ = [
    "PluginError",
    "UnknownNameError",
    "UsageError",
    "WeightsError",
    "WeightsInfo",
    "ZooError",
    "__version__",
    "create_model",
    "get_catalogue",
    "hookimpl",
    "list_models",
    "model_info",
    "weights_info",
]
