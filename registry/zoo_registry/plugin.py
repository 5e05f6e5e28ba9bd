"""The registry plugin: published weights become pretrained tags of their models.

Its hook runs on every zoo command, so it reads only each entry's small JSON files and imports no torch;
the weights are read by the loader, when a model is built with the tag.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

from zoo_core import hookimpl
from zoo_registry.store import load_published, scan


@hookimpl
def zoo_register_weights(register: Any) -> None:
    wanted = os.environ.get("ZOO_PLUGINS")
    enabled = {n.strip() for n in wanted.split(",")} if wanted else None
    for entry in scan():
        plugin = entry.model_name.partition(":")[0]
        if enabled is not None and plugin not in enabled:
            continue  # its model's plugin was switched off on purpose: nothing to warn about
        config = entry.config
        try:
            register(
                entry.model_name,
                entry.tag,
                functools.partial(load_published, str(entry.path)),
                source="local",
                path=str(entry.path),
                sha256=entry.sha256,
                size_bytes=config.get("size_bytes"),
                model_kwargs=config["model_kwargs"],
                num_classes=config.get("num_classes"),
                labels=config.get("labels", []),
                metrics=entry.metrics,
                preprocessing=config.get("preprocessing", {}),
                created=config.get("created"),
            )
        except Exception as e:  # noqa: BLE001 - one entry (say, of an uninstalled plugin) must not hide the rest
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"zoo: warning: registry entry {entry.path} skipped: {msg}", file=sys.stderr)
