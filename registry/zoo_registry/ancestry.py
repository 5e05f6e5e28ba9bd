"""A version's parents, looked up in the local registry: the weights a fine-tune starts from (for the lineage
``zoo train`` records) and the chain of parents that ``zoo registry lineage`` draws (``lineage.render``).

The records themselves, and how a version's lineage is read, are ``zoo_registry.lineage``'s.
"""

from __future__ import annotations

from typing import Any

from zoo_registry.lineage import NOT_RECIPE, dataset_record, node

MAX_DEPTH = 32  # parents followed before the chain is cut (a chain that loops is cut at the loop)


def parent_record(model: str, tag: str | None) -> dict[str, Any] | None:
    """The weights a fine-tune of ``model`` started from: the registry version ``tag`` meant (a tag means its
    current version, so the record names the number), else the plugin's pretrained tag; None from scratch."""
    if not tag:
        return None
    from zoo_core.plugin_api import UnknownNameError, WeightsError, ZooError
    from zoo_registry import store
    from zoo_registry.layout import version_tag

    try:
        entry = store.get(model, tag)
        record = {"kind": "registry", "name": entry.version_ref, "sha256": entry.sha256}
        if tag not in (entry.tag, entry.catalogue_tag, version_tag(entry.tag, entry.version)):
            record["as"] = f"{entry.model_name}.{tag}"  # the alias the run was given
        return record
    except (UnknownNameError, WeightsError):
        pass
    try:
        from zoo_core import resolve_weights

        w = resolve_weights(f"{model}.{tag}").weights
    except ZooError:
        return {"kind": "pretrained", "name": f"{model}.{tag}"}
    assert w is not None
    record = {"kind": "pretrained", "name": w.ref, "source": w.source, "url": w.url, "hf_hub_id": w.hf_hub_id,
              "sha256": w.sha256}  # fmt: skip
    return {k: v for k, v in record.items() if v is not None}


def training_lineage(model: str, settings: dict[str, Any], dataset: Any, run: dict[str, Any]) -> dict[str, Any]:
    """The lineage ``zoo train`` records: ``settings`` are its TrainConfig fields, ``run`` its id, start and
    command."""
    return {
        "made_by": "train",
        "parent": parent_record(model, settings.get("pretrained")),
        "dataset": dataset_record(dataset, settings.get("data_dir"), settings.get("data_options")),
        "recipe": {k: v for k, v in settings.items() if k not in NOT_RECIPE},
        "run": {k: v for k, v in run.items() if v is not None},
    }


def chain(entry: Any) -> dict[str, Any]:
    """The version's node with its parents nested under ``parent``, followed through the local registry (a Hub
    parent's pushed lineage is nested as it was recorded)."""
    from zoo_core.plugin_api import ZooError, parse
    from zoo_registry import store

    root = node(entry)
    current, seen = root, {entry.version_ref}
    for _ in range(MAX_DEPTH):
        parent = current.get("parent")
        if not isinstance(parent, dict) or parent.get("kind") != "registry":
            break
        name = str(parent.get("name"))
        if name in seen:
            parent["loop"] = True
            break
        seen.add(name)
        try:
            ref = parse(name)
            found = store.get_version(ref.model, str(ref.tag), ref.version)
        except (ZooError, ValueError):
            parent["missing"] = True  # removed since, or from another machine: what was recorded is all
            break
        current["parent"] = {**parent, **node(found)}
        current = current["parent"]
    return root
