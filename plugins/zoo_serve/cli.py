"""``zoo serve``: parse, check, start the server (``zoo_serve.server``)."""

from __future__ import annotations

import click

from zoo_core.plugin_api import UsageError

INSTALL_HINT = 'pip install "zoo[serve]"'


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but a loopback address lets other machines in (a warning says so).")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to listen on (0: any free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the home page in a web browser.")
@click.option("--benchmarks", "benchmark_files", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="A file of `zoo benchmark --json` records to show (repeatable); registry entries' benchmark "
              "results are always shown.")
@click.option("--max-upload-mb", type=float, default=8.0, show_default=True, help="Largest picture to accept.")
@click.option("--max-pixels", type=int, default=40_000_000, show_default=True,
              help="Most pixels (width x height) of a picture to decode.")
def serve_cmd(host: str, port: int, open_browser: bool, benchmark_files: tuple[str, ...], max_upload_mb: float,
              max_pixels: int) -> None:  # fmt: skip
    """Browse, compare and try every model in a web browser: the catalogue, the local registry, runs and
    benchmarks, with a JSON API under /api/ (read-only; Ctrl-C stops it).

    \b
    zoo serve                      # http://127.0.0.1:8000/
    zoo serve --port 8080 --open
    zoo serve --benchmarks cpu_core_fp32.json
    """
    try:
        import fastapi  # noqa: F401
        import jinja2  # noqa: F401
        import multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise UsageError(f"zoo serve needs the {e.name} package: {INSTALL_HINT}") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0 to 65535, got {port}")
    if max_upload_mb <= 0 or max_pixels < 1:
        raise UsageError("--max-upload-mb and --max-pixels must be positive")
    from zoo_serve.app import Settings
    from zoo_serve.server import run

    settings = Settings(benchmark_files=list(benchmark_files), max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                        max_pixels=max_pixels)  # fmt: skip
    run(host, port, settings, open_browser=open_browser)
