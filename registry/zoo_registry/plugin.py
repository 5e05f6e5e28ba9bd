"""The registry plugin: published weights become pretrained tags of their models, ``zoo registry ...``
manages them, ``zoo push`` / ``zoo pull`` move them to and from the Hugging Face Hub, and
``hf-hub:OWNER/NAME[@REV]`` names resolve to pulled weights.

Its weights hook runs on every zoo command, so it reads only each entry's small JSON files and imports no
torch; the weights are read by the loader, when a model is built with the tag.
"""

from __future__ import annotations

import functools
from typing import Any

from zoo_core import hookimpl
from zoo_registry.store import load_published, read_default, scan, warn_skipped, weights_metadata

HUB_SOURCES = ("hf-hub", "hf_hub")  # timm's spelling, and the one it still accepts


@hookimpl
def zoo_register_weights(register: Any) -> None:
    defaults: dict[Any, str | None] = {}
    for entry in scan():  # an entry whose files are broken is skipped there, with one warning
        model_dir = entry.path.parent
        if model_dir not in defaults:
            defaults[model_dir] = read_default(model_dir)
        try:
            register(entry.model_name, entry.tag, functools.partial(load_published, str(entry.path)),
                     default=defaults[model_dir] == entry.tag, **weights_metadata(entry))  # fmt: skip
        except Exception as e:  # noqa: BLE001 - one entry (say, of an uninstalled plugin) must not hide the rest
            warn_skipped(entry.path, e)


@hookimpl
def zoo_register_commands(cli: Any) -> None:
    from zoo_registry.cli import doctor_cmd, registry
    from zoo_registry.hub_cli import pull_cmd, push_cmd

    cli.add_command(registry)
    cli.add_command(doctor_cmd)
    cli.add_command(push_cmd)
    cli.add_command(pull_cmd)


@hookimpl
def zoo_resolve_model(ref: Any) -> str | None:
    """``hf-hub:OWNER/NAME[@REV]`` (timm's spelling): pull the repository into the registry, or find it there."""
    if ref.source not in HUB_SOURCES:
        return None
    from zoo_registry.hub import resolve_hub_name

    return resolve_hub_name(ref.location)
