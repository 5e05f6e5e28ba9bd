"""Suites: named lists of models with settings, kept as JSON files in ``zoo_bench/suites/`` (package data,
so an installed wheel has them).

A suite file holds ``description``, ``settings`` (any BenchSettings field, for every model) and
``models``: names, or objects ``{"model": NAME, ...settings for this model only}``. Options given on
the command line override both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zoo_bench.settings import BenchSettings
from zoo_core.plugin_api import UsageError

SUITES_DIR = Path(__file__).resolve().parent / "suites"


def available() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.json"))


def suite_path(name: str) -> Path:
    """A suite's file: a name from zoo_bench/suites/ or a path to a JSON file."""
    path = Path(name)
    if path.suffix == ".json" and path.is_file():
        return path
    path = SUITES_DIR / f"{name}.json"
    if not path.is_file():
        import difflib

        close = difflib.get_close_matches(name, available(), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else f"; suites: {', '.join(available())}"
        raise UsageError(f"unknown suite '{name}'{hint}")
    return path


def load_suite(name: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """(settings for every model, [(model, its own settings)]) of a suite."""
    path = suite_path(name)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"cannot read suite {path}: {e}") from None
    settings = dict(data.get("settings") or {})
    models: list[tuple[str, dict[str, Any]]] = []
    for item in data.get("models") or []:
        if isinstance(item, str):
            models.append((item, {}))
        elif isinstance(item, dict) and isinstance(item.get("model"), str):
            models.append((item["model"], {k: v for k, v in item.items() if k != "model"}))
        else:
            raise UsageError(f"suite {path}: each model is a name or an object with 'model', got {item!r}")
    if not models:
        raise UsageError(f"suite {path} lists no models")
    try:  # unknown or invalid settings fail here, naming the suite
        for _, own in models:
            BenchSettings.from_dict({**settings, **own})
    except (UsageError, TypeError) as e:
        raise UsageError(f"suite {path}: {e}") from None
    return settings, models
