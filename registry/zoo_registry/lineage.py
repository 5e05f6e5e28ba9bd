"""What a version came from, recorded when it is published and read back as a chain.

A version's ``config.json`` holds ``lineage``: ``made_by`` (train, pull, import, publish), the ``parent``
weights (a plugin's pretrained tag with its url and sha256, a registry version ``plugin:model.tag@N``, or a Hub
repository at its commit, with the lineage it was pushed with), the ``dataset`` (name, the path given, options,
images per split and a fingerprint of what was trained on), the ``recipe`` (the training settings), the
``run`` (id, when it started, the command) and the zoo and torch versions; exports made from it are added
later (``store.record_export``) or found in the export store by the weights' sha256. ``render`` draws a chain
as a tree. This module reads no registry (the store records through it): what looks a version's parents up
there, for a run's record and for the chain, is ``zoo_registry.ancestry``.

The dataset's fingerprint is the sha256 of what training saw: its classes and every split's decoded pixels and
labels, so the same images give the same fingerprint wherever they lie and whatever their files' dates, and
one changed pixel gives another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Training settings that say who or where rather than how: kept in the training record, not in the recipe.
NOT_RECIPE = {"model", "dataset", "data_dir", "data_options", "tag", "overwrite", "device", "pretrained"}
# Recipe settings the tree shows (the JSON has them all).
SHOWN_RECIPE = ("recipe", "epochs", "batch_size", "lr", "optimizer", "schedule", "augment", "weight_decay",
                "precision", "img_size", "freeze_backbone", "seed", "world_size", "trainer")  # fmt: skip


# -- recording ----------------------------------------------------------------------------------------------


def fingerprint(dataset: Any) -> str:
    """``sha256:<hex>`` of a dataset's classes and every split's pixels and labels (file paths and sizes for a
    split held as files only)."""
    import os

    digest = hashlib.sha256(json.dumps(list(dataset.classes)).encode())
    for name in sorted(dataset.splits):
        split = dataset.splits[name]
        digest.update(f"\0{name}".encode())
        for tensor in (split.pixels, split.labels):
            if tensor is None:
                continue
            array = tensor.detach().contiguous().cpu().numpy()
            digest.update(f"{array.dtype}{list(array.shape)}".encode())
            digest.update(memoryview(array).cast("B"))
        if split.pixels is None:
            for path in split.paths or []:
                digest.update(f"{os.path.basename(path)}:{os.path.getsize(path)}".encode())
    return f"sha256:{digest.hexdigest()}"


def dataset_record(dataset: Any, data_dir: str | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dataset a version was trained on: its name, the folder given, options, size and fingerprint."""
    files = sum(len(s.paths) for s in dataset.splits.values() if s.paths is not None)
    record = {"name": dataset.name, "path": data_dir, "options": options or None,
              "images": {k: len(v) for k, v in dataset.splits.items()}, "classes": len(dataset.classes),
              "files": files or None, "fingerprint": fingerprint(dataset)}  # fmt: skip
    return {k: v for k, v in record.items() if v is not None}


def from_training(model: str, training: dict[str, Any] | None, provenance: dict[str, Any]) -> dict[str, Any]:
    """The lineage of weights published without one: what their training record and provenance say."""
    training = training or {}
    lineage: dict[str, Any] = {}
    if provenance.get("origin"):
        lineage["parent"] = {"kind": "hub", "name": provenance["origin"], "commit": provenance.get("revision")}
    elif training.get("pretrained"):
        lineage["parent"] = {"kind": "named", "name": f"{model}.{training['pretrained']}"}
    if training.get("dataset"):
        lineage["dataset"] = {k: v for k, v in {"name": training["dataset"], "path": training.get("data_dir"),
                                                "options": training.get("data_options") or None}.items() if v}
    recipe = {k: v for k, v in training.items() if k in SHOWN_RECIPE}
    if recipe:
        lineage["recipe"] = recipe
    if training.get("run_id"):
        lineage["run"] = {"id": training["run_id"], "command": training.get("command")}
    return lineage


def of_entry(entry: Any) -> dict[str, Any]:
    """A version's lineage: what it recorded, else (published before lineage existed) what its training record
    and provenance say, marked ``recorded: false``."""
    recorded = entry.config.get("lineage")
    if isinstance(recorded, dict):
        return recorded
    derived = from_training(entry.model_name, entry.config.get("training"), entry.config)
    derived.update(made_by="pull" if entry.config.get("origin") else "publish", recorded=False,
                   zoo_version=entry.config.get("zoo_version"), torch_version=entry.config.get("torch_version"))
    return derived


def source_of(entry: Any) -> str:
    """Where a version came from, in a few words: ``run ID``, ``hf-hub:OWNER/NAME@COMMIT``, ``import``."""
    lineage = of_entry(entry)
    parent = lineage.get("parent") or {}
    if lineage.get("made_by") == "pull" or parent.get("kind") == "hub":
        commit = str(parent.get("commit") or entry.config.get("revision") or "")[:12]
        return f"{parent.get('name') or entry.config.get('origin')}@{commit}"
    run = (lineage.get("run") or {}).get("id")
    if run:
        return f"run {run}"
    return str(lineage.get("made_by") or "publish")


# -- reading the chain -------------------------------------------------------------------------------------


def exports_of(entry: Any) -> list[dict[str, Any]]:
    """The exports made from a version: those recorded in its lineage and those the export store holds for its
    weights."""
    found = {str(e.get("variant")): e for e in of_entry(entry).get("exports") or [] if isinstance(e, dict)}
    try:
        from zoo_registry.exports import list_for

        for stored in list_for(entry.sha256):
            r = stored.record
            found.setdefault(str(r.get("variant")), {"variant": r.get("variant"), "format": r.get("format"),
                                                     "sha256": r.get("sha256"), "size_bytes": r.get("size_bytes"),
                                                     "path": str(stored.file)})  # fmt: skip
    except (ImportError, OSError, ValueError):
        pass
    return list(found.values())


def node(entry: Any) -> dict[str, Any]:
    """One version as a node of the chain (without following its parent)."""
    lineage = of_entry(entry)
    metrics = {k: entry.metrics[k] for k in ("top1", "top5", "dataset", "split") if entry.metrics.get(k) is not None}
    out = {"name": entry.version_ref, "sha256": entry.sha256, "created": entry.config.get("created"),
           "metrics": metrics, **{k: v for k, v in lineage.items() if k != "exports"},
           "exports": exports_of(entry)}  # fmt: skip
    return {k: v for k, v in out.items() if v not in (None, [], {})}


# -- drawing it ---------------------------------------------------------------------------------------------


def _dataset_text(d: dict[str, Any]) -> str:
    parts = [str(d.get("name", "?"))]
    if d.get("path"):
        parts.append(str(d["path"]))
    if d.get("options"):
        parts.append(" ".join(f"{k}={v}" for k, v in d["options"].items()))
    if d.get("images"):
        parts.append("(" + ", ".join(f"{k} {v:,}" for k, v in d["images"].items()) + " images)")
    if d.get("fingerprint"):
        parts.append(f"fingerprint {str(d['fingerprint']).removeprefix('sha256:')[:16]}")
    return "  ".join(parts)


def _recipe_text(recipe: dict[str, Any]) -> str:
    shown = [f"{k} {json.dumps(recipe[k]) if isinstance(recipe[k], (dict, list)) else recipe[k]}"
             for k in SHOWN_RECIPE if recipe.get(k) not in (None, False, "", {}, [])]  # fmt: skip
    return ", ".join(shown)


def _headline(n: dict[str, Any]) -> str:
    text = str(n.get("name"))
    if n.get("kind") and n.get("kind") != "registry":
        text += f"  ({n['kind']})"
    if n.get("sha256"):
        text += f"  sha256 {str(n['sha256'])[:12]}"
    metrics = n.get("metrics") or {}
    if isinstance(metrics.get("top1"), (int, float)):
        text += f"  top-1 {metrics['top1']:.2f}%" + (f" on {metrics['dataset']}" if metrics.get("dataset") else "")
    if n.get("created"):
        text += f"  {str(n['created'])[:10]}"
    return text


def _children(n: dict[str, Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    made = n.get("made_by")
    run = n.get("run") or {}
    if made == "train" or run:
        out.append(("made by", f"run {run.get('id', '?')}" + (f" started {run['created']}" if run.get("created")
                                                                else "")))  # fmt: skip
    elif made:
        out.append(("made by", str(made) + ("" if n.get("recorded", True) else " (before lineage was recorded: "
                                                                                "from its training record)")))
    if n.get("dataset"):
        out.append(("dataset", _dataset_text(n["dataset"])))
    if n.get("recipe") and _recipe_text(n["recipe"]):
        out.append(("recipe", _recipe_text(n["recipe"])))
    if n.get("zoo_version") or n.get("torch_version"):
        out.append(("software", f"zoo {n.get('zoo_version', '?')}, torch {n.get('torch_version', '?')}"))
    for e in n.get("exports") or []:
        size = f", {e['size_bytes'] / 1e6:.1f} MB" if isinstance(e.get("size_bytes"), int) else ""
        out.append(("export", f"{e.get('variant')}{size}" + (f"  {e['path']}" if e.get("path") else "")))
    if n.get("kind") == "hub" and n.get("commit"):
        out.append(("commit", str(n["commit"])))
    parent = n.get("parent")
    if isinstance(parent, dict):
        if parent.get("kind") == "hub" and isinstance(parent.get("lineage"), dict):
            pushed = {"name": parent.get("pushed_as") or "the pushed version", **parent["lineage"]}
            parent = {**parent, "parent": pushed}
        out.append(("parent", parent))
    elif made == "train":
        out.append(("parent", "none: trained from scratch"))
    return out


def render(tree: dict[str, Any], plain: bool = False) -> list[str]:
    """The chain as lines of a tree, the version first and each parent under it; ``plain`` draws it in ASCII
    (for a terminal that cannot show box-drawing characters). What came from a file or the Hub is shown as
    printable text only."""
    from zoo_core.plugin_api import records

    lines = [_headline(tree)]

    def walk(n: dict[str, Any], indent: str) -> None:
        items = _children(n)
        for i, (label, value) in enumerate(items):
            last = i == len(items) - 1
            branch, more = ("└── ", "    ") if last else ("├── ", "│   ")
            if isinstance(value, dict):
                extra = "  (removed since, or not in this registry)" if value.get("missing") else ""
                extra += "  (loops back: cut here)" if value.get("loop") else ""
                lines.append(f"{indent}{branch}{label:<9}{_headline(value)}{extra}")
                walk(value, indent + more)
            else:
                lines.append(f"{indent}{branch}{label:<9}{value}")

    walk(tree, "")
    lines = [records.printable(line, 4000) for line in lines]
    if plain:
        lines = [line.translate(str.maketrans({"├": "|", "└": "`", "│": "|", "─": "-"})) for line in lines]
    return lines
