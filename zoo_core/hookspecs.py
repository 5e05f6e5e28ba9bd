"""The plugin contract: every hook zoo calls, with what it receives.

Plugins mark their implementations with ``zoo_core.hookimpl`` and never import pluggy. Registration hooks
get a host-owned ``register`` callback, so zoo validates every entry, records which plugin it came from and
resolves clashes (built-in plugins win) instead of trusting what a hook returns.
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
    ``min_input_size``, ``takes_input_size`` (the builder takes ``input_size=(H, W)`` and sizes its
    classifier to it), ``takes_features_only`` (the builder handles ``features_only=True`` and
    ``num_classes=0`` itself; zoo does it for the others), ``gradcam_layer`` (the module whose feature maps
    Grad-CAM explains, e.g. ``"features.7"``; found automatically when left out), ``pretrained`` ({tag:
    weights metadata in the weights schema, ``WeightsInfo``}) and ``default_tag``. The result is cached per
    plugin version, so it must not depend on user data. A builder given ``pretrained=TAG`` may set
    ``model.pretrained_cfg["label_names"]``.
    """


@hookspec
def zoo_register_datasets(register: Any) -> None:
    """Register datasets: ``register(name, builder, **metadata)``.

    ``builder(data_dir=None, **options)`` returns a ``zoo_core.plugin_api.Dataset`` (``from_arrays`` makes
    one). Metadata keys: ``description``, ``num_classes``, ``input_size``, ``needs_data_dir``.
    """


@hookspec
def zoo_register_trainers(register: Any) -> None:
    """Register trainers: ``register(name, factory, description=...)``.

    ``factory(job)`` trains ``job.model`` (a ``zoo_core.plugin_api.TrainJob``: model, data, pipelines,
    device, settings, reporter) in place and returns a dict of metrics. ``distributed=True`` declares that
    it follows the contract for runs under torchrun (see ``TrainJob``); others run in one process.
    """


@hookspec
def zoo_register_recipes(register: Any) -> None:
    """Register training recipes, as data: ``register(name, **recipe)``.

    A recipe names the ``model`` and ``dataset`` it trains, the ``train`` settings (``zoo train`` options:
    ``epochs``, ``batch_size``, ``optimizer``, ``lr``, ``schedule``, ``augment``, ``precision``, ``trainer``,
    ...) and what it reaches: ``expected`` (``top1``, ``time_s`` and the ``hardware`` they were measured on).
    Everything must be JSON; the result is cached per plugin version like the models. ``zoo train --recipe
    NAME`` runs it, and options given on the command line override it.
    """


@hookspec
def zoo_register_weights(register: Any) -> None:
    """Register weights kept outside a plugin's code: ``register(model, tag, loader, default=False, **metadata)``.

    Called on every run (never cached), after every plugin's models are known, so it must be cheap: read
    an index, import no torch. ``metadata`` follows the weights schema (``WeightsInfo``);
    ``loader(model)`` loads the weights into a model built with ``metadata["model_kwargs"]``; ``default=True``
    makes the tag the model's default (what ``pretrained=True`` and a bare name in ``zoo eval`` mean).
    """


@hookspec
def zoo_register_commands(cli: Any) -> None:
    """Add commands to the ``zoo`` command line: ``cli`` is a click group (``@cli.command()``,
    ``cli.add_command(cmd)``).

    Command names and their one-line help are cached per plugin version like the catalogue, so ``zoo
    --help`` imports no plugin; the plugin is imported when one of its commands runs. Keep torch imports
    inside the command functions.
    """


@hookspec
def zoo_resolve_model(name: str, ref: Any) -> str | None:
    """Resolve a name the catalogue cannot: a source name (``hf-hub:OWNER/NAME``: a prefix that is no plugin's)
    or a numbered version (``MODEL.TAG@N``), to a catalogue name.

    ``name`` is the name as text, ``ref`` the same parsed (a ``zoo_core.plugin_api.ModelRef``); take either or
    both. Called live, in plugin precedence order; the first answer that is not None wins. Return
    ``plugin:model.tag`` (fetching the weights and registering the tag first, say into the local registry),
    or None for names the plugin does not handle.
    """
