"""The FastAPI app: pages (``pages``) and the JSON API (``api``) over one state, its own files served from memory
(``assets``), a cap on request bodies (``uploads.BodyLimit``) and every error as one line: a page for a browser,
``{"error": ...}`` under /api/. FastAPI's documentation pages are off (they load scripts from a CDN); the OpenAPI
schema is at /openapi.json and listed at /api."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from zoo_serve.errors import message_of, status_of
from zoo_serve.uploads import FORM_OVERHEAD, MAX_PIXELS, MAX_UPLOAD_BYTES

TITLE = "zoo"


@dataclass
class Settings:
    """What ``zoo serve`` was started with."""

    benchmark_files: list[str] = field(default_factory=list)
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    max_pixels: int = MAX_PIXELS


class State:
    """What the app keeps between requests: templates, files, loaded models, evaluations, benchmark files."""

    def __init__(self, settings: Settings) -> None:
        from jinja2 import Environment, PackageLoader, select_autoescape

        from zoo_serve import answers, benchmarks
        from zoo_serve.assets import load_assets
        from zoo_serve.evaluations import Evaluations
        from zoo_serve.predictions import ModelCache

        self.settings = settings
        self.templates = Environment(loader=PackageLoader("zoo_serve", "templates"), autoescape=select_autoescape(),
                                     trim_blocks=True, lstrip_blocks=True)  # fmt: skip
        self.templates.filters.update(commas=commas, pct=pct, amount=amount, size=size)
        self.assets = load_assets()
        self.models = ModelCache()
        self.evaluations = Evaluations()
        self.benchmark_records = benchmarks.read_files(settings.benchmark_files)
        self.facets = answers.facets()  # loads the catalogue: the first page is then as fast as the rest

    def render(self, template: str, status: int = 200, **context: Any) -> Any:
        from fastapi.responses import HTMLResponse

        return HTMLResponse(self.templates.get_template(template).render(**context), status_code=status)


def commas(value: Any) -> str:
    """7978856 -> 7,978,856; nothing for None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def pct(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def amount(value: Any) -> str:
    """A measured figure with three significant digits, thousands separated (1,613 or 0.0114)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def size(value: Any) -> str:
    """(3, 224, 224) -> 224x224; other channel counts are said: 1x8x8."""
    if not isinstance(value, (list, tuple)) or not value:
        return ""
    return "x".join(str(v) for v in (value[1:] if value[0] == 3 else value))


def error_response(request_path: str, status: int, text: str, state: State | None) -> Any:
    """One line, as JSON under /api/ and as a page elsewhere."""
    from fastapi.responses import HTMLResponse, JSONResponse

    if request_path.startswith("/api/") or state is None:
        return JSONResponse({"error": text}, status_code=status)
    try:
        return state.render("error.html", status=status, status_code=status, message=text,
                            title=f"zoo: error {status}")
    except Exception:  # noqa: BLE001 - the error page itself failing must still answer with the line
        return HTMLResponse(f"<!doctype html><title>zoo: error</title><p>{_escape(text)}</p>", status_code=status)


def _escape(text: str) -> str:
    from html import escape

    return escape(text)


class OneLineErrors:
    """ASGI middleware: an exception no handler took becomes a one-line 500 answer and one line on stderr,
    never a traceback."""

    def __init__(self, app: Any, state: State) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = False

        async def tracked(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as e:  # noqa: BLE001 - the one place where anything else is turned into one line
            text = message_of(e)
            print(f"zoo serve: error: {scope.get('path', '')}: {text}", file=sys.stderr)
            if scope["type"] == "http" and not started:
                await error_response(scope.get("path", ""), status_of(e), text, self.state)(scope, receive, send)


def create_app(settings: Settings | None = None) -> Any:
    """The app, its catalogue loaded."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from zoo_core import __version__ as version
    from zoo_core.plugin_api import ZooError
    from zoo_serve import api, pages
    from zoo_serve.uploads import BodyLimit

    state = State(settings or Settings())
    app = FastAPI(title=TITLE, version=version, docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  description="The zoo catalogue, local registry, runs and benchmark records; JSON in the shapes "
                  "of the CLI's --json.")  # fmt: skip
    app.state.zoo = state

    @app.exception_handler(ZooError)
    async def zoo_error(request: Request, error: ZooError) -> Any:
        return error_response(request.url.path, status_of(error), message_of(error), state)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Any:
        text = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404 and text == "Not Found":
            text = f"no page {request.url.path}; the pages are /, /registry, /runs, /benchmarks and /api"
        return error_response(request.url.path, error.status_code, text, state)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Any:
        first = (error.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        text = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        return error_response(request.url.path, 400, text.replace("Field required", "missing"), state)

    app.include_router(pages.router)
    app.include_router(api.router)

    def too_large(scope: dict[str, Any], text: str) -> Any:
        return error_response(scope.get("path", ""), 413, text, state)

    app.add_middleware(BodyLimit, limit=state.settings.max_upload_bytes + FORM_OVERHEAD, answer=too_large)
    app.add_middleware(OneLineErrors, state=state)
    return app
