"""The HTML pages: home and search, a model, the registry and an entry (with its try-it form), runs, benchmarks,
and the list of API endpoints. Each handler is a plain function, so FastAPI runs it in a worker thread: the
CLI's answers, model loading and predictions never block the event loop."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile

from zoo_core.plugin_api import UsageError, ZooError, first_line
from zoo_serve import answers, charts
from zoo_serve.errors import message_of

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 100
SORT_LABELS = {"name": "name", "params": "parameters (fewest first)", "gmacs": "GMACs (fewest first)",
               "top1": "top-1 (best first)"}  # fmt: skip


def _state(request: Request) -> Any:
    return request.app.state.zoo


@router.get("/")
def home(
    request: Request, q: str = "", plugin: str = "", family: str = "", pretrained: bool = False,
    sort: str = "name", page: int = 1, min_params: str = "", max_params: str = "", min_gmacs: str = "",
    max_gmacs: str = "", min_top1: str = "", max_top1: str = "",
) -> Any:  # fmt: skip
    """Search the whole catalogue."""
    bounds = {"min_params": min_params, "max_params": max_params, "min_gmacs": min_gmacs, "max_gmacs": max_gmacs,
              "min_top1": min_top1, "max_top1": max_top1}  # fmt: skip
    rows = answers.list_models(q, plugin or None, pretrained, sort, bounds, family or None)
    pages = max(1, math.ceil(len(rows) / PAGE_SIZE))
    page = min(max(page, 1), pages)
    shown = rows[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    given = {k: v for k, v in {"q": q, "plugin": plugin, "family": family, "pretrained": "1" if pretrained else "",
                               "sort": sort if sort != "name" else "", **bounds}.items() if v}  # fmt: skip

    def page_link(n: int) -> str:
        return "/?" + urlencode({**given, "page": n})

    return _state(request).render(
        "home.html", title="zoo: models", rows=shown, total=len(rows), page=page, pages=pages, page_link=page_link,
        q=q, plugin=plugin, family=family, pretrained=pretrained, sort=sort, bounds=bounds,
        facets=_state(request).facets, sort_labels=SORT_LABELS,
        stats=[f for f in ("num_params", "gmacs") if any(f in r for r in shown)],
        api_link="/api/models?" + urlencode({k: v for k, v in given.items() if k != "page"}),
    )  # fmt: skip


@router.get("/models/{name}")
def model_page(request: Request, name: str) -> Any:
    """One model: what it is, its size and cost, its pretrained tags, and how to use it."""
    found = answers.checked(name)
    info = answers.model_info(found)
    tags = answers.model_tags(found)
    shown = found.display
    example_tag = found.tag or info.get("default_tag")
    weights = f"{shown}.{example_tag}" if example_tag and not found.tag else shown
    usage = [f"zoo info {shown}", f"zoo benchmark {weights} --device cpu"]
    if example_tag:
        usage += [f"zoo predict {weights} picture.jpg --top-k 5", f"zoo gradcam {weights} picture.jpg"]
    usage.append(f"zoo train {shown} --dataset digits --epochs 1")
    python = ["from zoo_core import create_model", f'model = create_model("{weights}")']
    if example_tag:
        python += ["from zoo_vision import predict", f'predict("{weights}", "picture.jpg", top_k=5)']
    return _state(request).render("model.html", title=f"zoo: {shown}", info=info, tags=tags, shown=shown,
                                  focus=found.tag, usage=usage, python=python)  # fmt: skip


@router.get("/registry")
def registry_page(request: Request) -> Any:
    """Every published entry."""
    answers.refreshed_registry()
    entries = answers.registry_entries()
    return _state(request).render("registry.html", title="zoo: registry", entries=entries)


def _entry_context(request: Request, name: str) -> dict[str, Any]:
    entry = answers.registry_entry(name)
    config = entry.get("config") or {}
    metrics = entry.get("metrics") or {}
    training = config.get("training") or {}
    card = ""
    if "README.md" in (entry.get("files") or []):
        from zoo_serve.card import card_html

        try:  # the path is the registry's own answer, never a request's
            card = card_html((Path(entry["path"]) / "README.md").read_text(encoding="utf-8", errors="replace"))
        except OSError as e:
            card = f"<p>the model card cannot be read: {first_line(e)}</p>"
    per_class = metrics.get("per_class_top1") or {}
    return {
        "title": f"zoo: {entry['ref']}", "entry": entry, "config": config, "metrics": metrics, "training": training,
        "figures": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
        "per_class": charts.bars(list(per_class.items()), "top-1 per class (%)") if per_class else "",
        "curves": curves(training.get("history") or []),
        "lineage": config.get("lineage") or {},
        "benchmarks": metrics.get("benchmark") or {},
        "card": card, "name": name, "result": None, "cam": None,
        "labels": config.get("labels") or [],
        "max_mb": _state(request).settings.max_upload_bytes / (1024 * 1024),
    }  # fmt: skip


@router.get("/registry/{name}")
def entry_page(request: Request, name: str) -> Any:
    """One published entry: metrics, per-class accuracy, confusion matrix, curves, model card, lineage, and a
    form to try it on a picture."""
    return _state(request).render("entry.html", **_entry_context(request, name))


@router.post("/registry/{name}")
def try_entry(
    request: Request, name: str, image: Annotated[UploadFile, File()], top_k: Annotated[int, Form()] = 5,
    gradcam: Annotated[bool, Form()] = False,
) -> Any:  # fmt: skip
    """The entry page with the classes the weights see in an uploaded picture, and its Grad-CAM overlay."""
    from zoo_serve.predictions import gradcam_overlay, prediction
    from zoo_serve.uploads import decode

    state = _state(request)
    context = _entry_context(request, name)
    picture = decode(image.file.read(state.settings.max_upload_bytes + 1), state.settings.max_pixels,
                     state.settings.max_upload_bytes)  # fmt: skip
    loaded = state.models.get(context["entry"]["ref"])
    context["result"] = prediction(loaded, picture, top_k, image.filename)
    if gradcam:
        context["cam"] = gradcam_overlay(loaded, picture)
    return state.render("entry.html", **context)


@router.get("/registry/{name}/confusion.svg")
def confusion(request: Request, name: str) -> Any:
    """The entry's confusion matrix, evaluated once on its test split; a picture saying why when it cannot be."""
    from fastapi.responses import Response

    try:
        entry = answers.registry_entry(name)
        report = _state(request).evaluations.report(entry)
        where = f"{report.get('dataset')} {report.get('split')}"
        svg = charts.heatmap(report["confusion"], [str(x) for x in report["labels"]],
                             f"confusion matrix of {entry['ref']} on {where}: top-1 {report.get('top1')}%")
    except ZooError as e:
        svg = charts.message(f"no confusion matrix: {message_of(e)}", width=720)
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


def curves(history: list[dict[str, Any]]) -> dict[str, str]:
    """Loss and accuracy per epoch as two SVG charts (empty when the history holds nothing to draw)."""
    def line(key: str) -> list[tuple[float, float]]:
        return [(float(h["epoch"]), float(h[key])) for h in history
                if isinstance(h.get(key), (int, float)) and isinstance(h.get("epoch"), (int, float))]  # fmt: skip

    loss = charts.line_chart([("train loss", line("loss"))], "epoch", "loss", "training loss per epoch")
    accuracy = charts.line_chart([("train", line("train_top1")), ("validation", line("val_top1"))], "epoch",
                                 "top-1 %", "top-1 per epoch")  # fmt: skip
    return {k: v for k, v in {"loss": loss, "accuracy": accuracy}.items() if v}


def _history(run: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """A run's per-epoch history and where it was read: the published entry, else the run's checkpoint."""
    if run.get("published"):
        try:
            entry = answers.registry_entry(run["published"])
            return ((entry.get("config") or {}).get("training") or {}).get("history") or [], "published entry"
        except ZooError:
            pass
    from zoo_serve.checkpoints import checkpoint_history

    return checkpoint_history(run["run_id"]), "checkpoint"


@router.get("/runs")
def runs_page(request: Request) -> Any:
    """Every training run: settings, status and curves."""
    shown = []
    for run in answers.runs():
        history, source = _history(run)
        shown.append({"run": run, "curves": curves(history), "source": source, "epochs": len(history)})
    return _state(request).render("runs.html", title="zoo: runs", runs=shown)


@router.get("/benchmarks")
def benchmarks_page(request: Request, device: str = "", precision: str = "", sort: str = "samples_per_sec",
                    order: str = "desc") -> Any:  # fmt: skip
    """Every benchmark record in a sortable table, and accuracy against throughput with its Pareto front."""
    from zoo_serve.benchmarks import SORT_KEYS, choices, collect, select

    if order not in ("asc", "desc"):
        raise UsageError(f"order: asc or desc, not {order!r}")
    rows = collect(_state(request).benchmark_records)
    kept = select(rows, device, precision, sort, order == "desc")
    points = [charts.Point(r.top1, r.phase["samples_per_sec"], r.name, r.pareto, bool(r.phase.get("unstable")))
              for r in kept if r.measured and r.top1 is not None]  # fmt: skip
    where = ", ".join(x for x in (device, precision) if x) or "every device and precision"
    plot = charts.scatter(points, "top-1 accuracy (%)", "samples/s (log scale)",
                          f"accuracy against throughput: {where}")
    given = {k: v for k, v in {"device": device, "precision": precision}.items() if v}

    def sort_link(key: str) -> str:
        flip = "asc" if key == sort and order == "desc" else "desc"
        return "/benchmarks?" + urlencode({**given, "sort": key, "order": flip})

    return _state(request).render(
        "benchmarks.html", title="zoo: benchmarks", rows=kept, total=len(rows), plot=plot, device=device,
        precision=precision, sort=sort, order=order, sort_keys=SORT_KEYS, sort_link=sort_link, choices=choices(rows),
        files=_state(request).settings.benchmark_files, api_link="/api/benchmarks?" + urlencode(given),
    )  # fmt: skip


@router.get("/api")
def api_page(request: Request) -> Any:
    """The JSON endpoints, from the OpenAPI schema."""
    schema = request.app.openapi()
    endpoints = [{"method": method.upper(), "path": path, "summary": op.get("summary", ""),
                  "description": op.get("description", ""),
                  "parameters": [p["name"] for p in op.get("parameters", [])]}
                 for path, methods in schema.get("paths", {}).items() for method, op in methods.items()]  # fmt: skip
    return _state(request).render("api.html", title="zoo: API", endpoints=endpoints)


@router.get("/static/{name}")
def static(request: Request, name: str) -> Any:
    """The app's own style sheet and icon, by name (never a path)."""
    from fastapi.responses import Response

    asset = _state(request).assets.get(name)
    if asset is None:
        from zoo_serve.errors import NotFound

        raise NotFound(f"no file {name!r} in the app")
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers={"ETag": asset.etag})
    return Response(asset.body, media_type=asset.media_type,
                    headers={"ETag": asset.etag, "Cache-Control": "max-age=3600"})  # fmt: skip
