"""``zoo serve``: the catalogue, the local registry, runs and benchmark records as a local web app with a JSON API.

Server-rendered pages (FastAPI, Jinja2, uvicorn; the ``serve`` extra) that work without JavaScript and load
nothing from elsewhere. The app reads only: its JSON is what the CLI's ``--json`` prints (``answers``), its
predictions are ``zoo_vision.predict`` on a cached model (``predictions``), and no path in a request reaches the
file system (``assets``). Nothing here imports fastapi or torch until ``zoo serve`` runs.
"""

from __future__ import annotations

from typing import Any

from zoo_core import hookimpl


@hookimpl
def zoo_register_commands(cli: Any) -> None:
    from zoo_serve.cli import serve_cmd

    cli.add_command(serve_cmd)
