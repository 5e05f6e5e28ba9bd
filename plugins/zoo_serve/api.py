"""The JSON API under /api/: the pages' data in the shapes of the CLI's ``--json`` (they are the CLI's answers,
``zoo_serve.answers``), described by FastAPI's OpenAPI schema at /openapi.json. Read-only, like the pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile

from zoo_serve import answers

router = APIRouter(prefix="/api")


@router.get("/models", summary="Search the catalogue: `zoo list --json`")
def models(
    q: str = Query("", description="Words; a model whose name holds any of them (or matches it as a wildcard)"),
    plugin: str = "", family: str = "", pretrained: bool = False,
    sort: str = Query("name", description="name, params, gmacs or top1"),
    min_params: str = "", max_params: str = "", min_gmacs: str = "", max_gmacs: str = "", min_top1: str = "",
    max_top1: str = "",
) -> list[dict[str, Any]]:  # fmt: skip
    bounds = {"min_params": min_params, "max_params": max_params, "min_gmacs": min_gmacs, "max_gmacs": max_gmacs,
              "min_top1": min_top1, "max_top1": max_top1}  # fmt: skip
    return answers.list_models(q, plugin or None, pretrained, sort, bounds, family or None)


@router.get("/models/{name}", summary="One model: `zoo info NAME --json`")
def model(name: str) -> dict[str, Any]:
    return answers.model_info(answers.checked(name))


@router.get("/models/{name}/tags", summary="A model's pretrained tags: `zoo list MODEL --tags --json`")
def model_tags(name: str) -> list[dict[str, Any]]:
    return answers.model_tags(answers.checked(name))


@router.get("/registry", summary="Every published entry: `zoo registry list --json`")
def registry() -> list[dict[str, Any]]:
    answers.refreshed_registry()
    return answers.registry_entries()


@router.get("/registry/{name}", summary="One published entry: `zoo registry show MODEL.TAG --json`")
def registry_entry(name: str) -> dict[str, Any]:
    return answers.registry_entry(name)


@router.get("/runs", summary="Training runs: `zoo runs --json`")
def runs() -> list[dict[str, Any]]:
    return answers.runs()


@router.get("/benchmarks", summary="Benchmark records: `zoo benchmark --json` records, with the page's top-1")
def benchmarks(request: Request, device: str = "", precision: str = "") -> list[dict[str, Any]]:
    """Each record as ``zoo benchmark --json`` wrote it, plus ``serve``: where it came from, the top-1 the page
    plots (measured, else published for the weights) and whether it is on the Pareto front."""
    from zoo_serve.benchmarks import collect, select

    rows = select(collect(request.app.state.zoo.benchmark_records), device, precision)
    return [{**r.record, "serve": {"source": r.source, "top1": r.top1, "top1_from": r.top1_from or None,
                                   "pareto": r.pareto}} for r in rows]  # fmt: skip


@router.post("/predict", summary="Classify a picture: `zoo predict MODEL IMAGE --json`")
def predict(
    request: Request,
    image: Annotated[UploadFile, File(description="A PNG, JPEG, GIF, BMP, WebP or TIFF picture")],
    model: Annotated[str, Form(description="MODEL.TAG (or a model with default weights)")],
    top_k: Annotated[int, Form()] = 5,
) -> dict[str, Any]:  # fmt: skip
    from zoo_serve.predictions import prediction
    from zoo_serve.uploads import decode

    settings = request.app.state.zoo.settings
    picture = decode(image.file.read(settings.max_upload_bytes + 1), settings.max_pixels, settings.max_upload_bytes)
    loaded = request.app.state.zoo.models.get(model)
    return prediction(loaded, picture, top_k, image.filename)
