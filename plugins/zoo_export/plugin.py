"""The export plugin's hooks: the ``zoo export`` command (torch and onnx are imported only when it runs)."""

from __future__ import annotations

from typing import Any

from zoo_core import hookimpl


@hookimpl
def zoo_register_commands(cli: Any) -> None:
    from zoo_export.cli import export_cmd

    cli.add_command(export_cmd)
