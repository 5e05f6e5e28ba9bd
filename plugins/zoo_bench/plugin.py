"""The benchmark plugin: ``zoo benchmark``."""

from __future__ import annotations

from typing import Any

from zoo_core import hookimpl


@hookimpl
def zoo_register_commands(cli: Any) -> None:
    from zoo_bench.cli import benchmark

    cli.add_command(benchmark)
