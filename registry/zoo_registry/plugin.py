"""The registry plugin: published weights become pretrained tags of their models, ``zoo registry ...``
manages them, ``zoo push`` / ``zoo pull`` move them to and from the Hugging Face Hub, and
``hf-hub:OWNER/NAME[@REV]`` names resolve to pulled weights.

Each tag means its current version; every other version is the tag ``TAG--vN`` (``MODEL.TAG@N`` resolves to
it), and each alias is a tag of its own that means the version it names.

Its weights hook runs on every zoo command, so it reads only each version's small JSON files and imports no
torch; the weights are read by the loader, when a model is built with the tag.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from zoo_core import hookimpl
from zoo_core.plugin_api import registry_dir

HUB_SOURCES = ("hf-hub", "hf_hub")  # timm's spelling, and the one it still accepts


@hookimpl
def zoo_register_weights(register: Any) -> None:
    if not registry_dir().is_dir():
        return  # nothing published yet: not even the store's code is needed
    from zoo_registry.layout import read_aliases
    from zoo_registry.store import load_published, read_default, scan, warn_skipped, weights_metadata

    entries = scan(every_version=True)  # a version whose files are broken is skipped there, with one warning
    by_version = {(e.tag_path.parent, e.tag, e.version): e for e in entries}
    model_dirs: dict[Path, str] = {}
    for e in entries:
        model_dirs.setdefault(e.tag_path.parent, e.model_name)
    defaults = {model_dir: read_default(model_dir) for model_dir in model_dirs}

    def add(e: Any, name: str, description: str | None) -> None:
        model_dir = e.tag_path.parent
        try:
            register(e.model_name, name, functools.partial(load_published, str(e.path)),
                     default=defaults[model_dir] == name, **weights_metadata(e, description))  # fmt: skip
        except Exception as error:  # noqa: BLE001 - one entry (say, of an uninstalled plugin) must not hide the rest
            warn_skipped(e.path if e.current else e.tag_path, error)

    for e in entries:
        if e.current:
            add(e, e.tag, None)
        else:
            add(e, e.catalogue_tag, f"version {e.version} of {e.model_name}.{e.tag} (not current)")
    for model_dir in model_dirs:
        for alias, (tag, version) in read_aliases(model_dir).items():
            e = by_version.get((model_dir, tag, version))
            if e is not None:
                add(e, alias, f"alias of {e.version_ref}")


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
    """``hf-hub:OWNER/NAME[@REV]`` (timm's spelling): pull the repository into the registry, or find it there;
    ``MODEL.TAG@N``: the catalogue name of that version of a registry tag."""
    if ref.version is not None and not ref.is_source:
        from zoo_registry.versions import resolve_version

        return resolve_version(ref)
    if ref.source not in HUB_SOURCES:
        return None
    from zoo_registry.hub import resolve_hub_name

    return resolve_hub_name(ref.location)
