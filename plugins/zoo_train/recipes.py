"""Training recipes: zoo's own (``zoo_train/recipes/*.json``, registered through ``zoo_register_recipes`` like
any plugin's), and how ``zoo train --recipe NAME`` turns one into the options of a run.

A recipe's ``train`` settings are ``zoo train`` options; options given on the command line win, and the run
records the recipe's name and every value it replaced (``TrainConfig.recipe``, ``recipe_overrides``).
``precision: auto`` means bf16 autocast where the device runs it natively (a CUDA GPU with bf16, else fp16; a
CPU with AVX512-BF16 or AMX), else fp32.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from zoo_core.plugin_api import UsageError

AUTO = "auto"
# What `zoo recipes` shows of a recipe's settings, in this order.
SHOWN = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "augment",
         "early_crop", "early_crop_epochs", "label_smoothing", "precision", "trainer", "tta", "val_fraction",
         "img_size", "freeze_backbone")  # fmt: skip


def builtin_recipes() -> dict[str, dict[str, Any]]:
    """zoo's own recipes, by name, as the package data holds them."""
    folder = resources.files("zoo_train") / "recipes"
    found = {}
    for item in sorted(folder.iterdir(), key=lambda f: f.name):
        if item.name.endswith(".json"):
            found[item.name.removesuffix(".json")] = json.loads(item.read_text(encoding="utf-8"))
    return found


def register_builtin(register: Any) -> None:
    for name, recipe in builtin_recipes().items():
        register(name, **recipe)


def get_recipe(name: str) -> Any:
    """The catalogue entry of recipe ``name`` (bare or ``plugin:name``); unknown names suggest close ones."""
    from zoo_core.plugin_api import get_catalogue

    return get_catalogue().get("recipe", name)


def list_recipes() -> list[dict[str, Any]]:
    """Every recipe, as ``zoo recipes --json`` prints them: name, plugin, the recipe, and whether the bare
    name means this one."""
    from zoo_core.plugin_api import get_catalogue

    catalogue = get_catalogue()
    return [{"name": catalogue.display_name("recipe", e), "qualified": e.qualified, "plugin": e.plugin,
             **e.metadata} for e in catalogue.all("recipe")]  # fmt: skip


def auto_precision(device: Any) -> str:
    """The fastest precision ``device`` runs natively: bf16 (fp16 on a GPU without bf16), else fp32."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
            getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()  # fmt: skip
        return "bf16" if native and torch.backends.mkldnn.is_available() else "fp32"
    return "fp32"


def apply_recipe(name: str, model: str | None, dataset: str | None,
                 options: dict[str, Any]) -> tuple[str, str, dict[str, Any], str]:  # fmt: skip
    """(model, dataset, options, a line saying what was chosen) of a run of recipe ``name``: the recipe's
    settings, with ``model``, ``dataset`` and the ``options`` given (those not None) in their place."""
    from dataclasses import fields

    from zoo_train.training import TrainConfig

    entry = get_recipe(name)
    recipe = entry.metadata
    known = {f.name for f in fields(TrainConfig)} - {"model", "dataset", "world_size", "recipe", "recipe_overrides"}
    unknown = sorted(set(recipe["train"]) - known)
    if unknown:
        raise UsageError(f"recipe {entry.qualified} sets {', '.join(unknown)}, which zoo train does not know; "
                         f"update the plugin {entry.plugin}")  # fmt: skip
    given = {k: v for k, v in options.items() if v is not None}
    merged = {**recipe["train"], **given}
    replaced = {k: recipe["train"][k] for k in given if k in recipe["train"] and recipe["train"][k] != given[k]}
    for key, value in (("model", model), ("dataset", dataset)):
        if value and value != recipe[key]:
            replaced[key] = recipe[key]
    notes = []
    if merged.get("precision") == AUTO:
        from zoo_core.plugin_api import resolve_device

        merged["precision"] = auto_precision(resolve_device(merged.get("device") or "auto"))
        notes.append(f"precision auto: {merged['precision']}")
    merged.update(recipe=entry.qualified, recipe_overrides=replaced)
    if replaced:
        notes.append("given on the command line: " + ", ".join(
            f"{k} {merged[k] if k in merged else (model if k == 'model' else dataset)} (recipe: {v})"
            for k, v in replaced.items()))  # fmt: skip
    line = f"recipe {entry.qualified}" + (f" ({'; '.join(notes)})" if notes else "")
    return model or recipe["model"], dataset or recipe["dataset"], merged, line


def train_recipe(name: str, *, model: str | None = None, dataset: str | None = None, resume: bool = False,
                 reporter: Any = None, command: str | None = None, **options: Any) -> Any:  # fmt: skip
    """``zoo train --recipe NAME`` from Python: ``options`` (TrainConfig fields) override the recipe's; returns
    ``zoo_train.training.train``'s outcome."""
    from zoo_train.training import train

    model, dataset, merged, line = apply_recipe(name, model, dataset, options)
    if reporter is not None:
        reporter.info(line)
    return train(model, dataset, resume=resume, reporter=reporter, command=command, **merged)


def describe(recipe: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, value) rows of a recipe for ``zoo recipes show``."""
    rows = [("model", recipe["model"]), ("dataset", recipe["dataset"])]
    train = recipe["train"]
    rows += [(k, _text(train[k])) for k in SHOWN if k in train]
    rows += [(k, _text(v)) for k, v in train.items() if k not in SHOWN]
    expected = recipe.get("expected") or {}
    if expected.get("top1") is not None:
        rows.append(("expected top-1", f"{expected['top1']}%"))
    if expected.get("time_s") is not None:
        rows.append(("time measured", f"{expected['time_s']:g} s"))
    rows += [(f"expected {k}", _text(v)) for k, v in expected.items() if k not in ("top1", "time_s")]
    return rows


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list, bool)) or value is None else str(value)
