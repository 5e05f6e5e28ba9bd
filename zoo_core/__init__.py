"""zoo: one catalogue of CNNs from every plugin, with training, evaluation, benchmarks and a registry.

Importing zoo_core is cheap: torch, torchvision and timm load only when a model is built.
"""

from __future__ import annotations

from zoo_core.errors import PluginError, UnknownNameError, UsageError, WeightsError, ZooError
from zoo_core.hookspecs import hookimpl
from zoo_core.models import create_model, list_models, model_info
from zoo_core.names import ModelRef, parse
from zoo_core.plugins import get_catalogue
from zoo_core.resolve import Resolved, resolve, resolve_weights, weights_info
from zoo_core.version import __version__
from zoo_core.weights import Preprocessing, WeightsInfo

__all__ = [
    "ModelRef",
    "PluginError",
    "Preprocessing",
    "Resolved",
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
    "parse",
    "resolve",
    "resolve_weights",
    "weights_info",
]
