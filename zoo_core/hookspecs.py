"""The plugin contract: every hook zoo calls, with the host-owned ``register`` callback it receives.

Plugins mark their implementations with ``zoo_core.hookimpl`` and never import pluggy.
"""

from __future__ import annotations

from typing import Any

import pluggy

PROJECT = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def zoo_register_models(register: Any) -> None:
    """Register model architectures: ``register(name, builder, **metadata)``.

    ``builder(**kwargs)`` returns a ``torch.nn.Module`` and accepts at least ``num_classes``; if the
    model declares pretrained tags it also accepts ``pretrained=TAG``. Metadata keys: ``family``,
    ``description``, ``input_size`` (C, H, W), ``mean``, ``std``, ``num_classes`` (default classes),
    ``min_input_size``, ``pretrained`` ({tag: {source, url, sha256, metrics, preprocessing, ...}}) and
    ``default_tag``. The result is cached per plugin version, so it must not depend on user data.
    """


@hookspec
def zoo_register_datasets(register: Any) -> None:
    """Register datasets: ``register(name, builder, **metadata)``.

    ``builder(data_dir=None, **options)`` returns a ``zoo_core.datasets.Dataset`` (``from_arrays`` makes one).
    Metadata keys: ``description``, ``num_classes``, ``input_size``, ``needs_data_dir``.
    """


@hookspec
def zoo_register_trainers(register: Any) -> None:
    """Register trainers: ``register(name, factory, description=...)``.

    ``factory(job)`` trains ``job.model`` (a ``zoo_core.training.TrainJob``: model, data, pipelines,
    device, config, reporter) and returns a dict of metrics.
    """


@hookspec
def zoo_register_weights(register: Any) -> None:
    """Register weights published outside the plugins' code: ``register(model, tag, loader, **metadata)``.

    Called on every run (never cached), so it must be cheap: read an index, import no torch.
    ``loader(model)`` loads the weights into a model built with ``metadata["model_kwargs"]``.
    """
