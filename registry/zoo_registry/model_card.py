"""The README.md model card of a published entry: Hugging Face YAML front matter, then a readable body.

The same card serves the local registry and the Hub; pushed to a repository (``HubCard``), it also carries
the licence and base model, names the repository in its usage snippets and, for timm models, says how timm
loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from zoo_core import parse

SHOWN_LABELS = 20
# metrics.json keys that are accuracies, as Hugging Face's model-index names them
ACCURACY_KEYS = {
    "top1": ("accuracy", "Top-1 accuracy"),
    "accuracy": ("accuracy", "Accuracy"),
    "acc": ("accuracy", "Accuracy"),
    "top5": ("top_5_accuracy", "Top-5 accuracy"),
}


# Training settings worth a line in the card's recipe table, in the order shown.
RECIPE_KEYS = ("dataset", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "schedule", "augment",
               "pretrained", "freeze_backbone", "img_size", "precision", "seed", "trainer")  # fmt: skip


@dataclass(frozen=True)
class HubCard:
    """What a card pushed to a Hub repository adds: the repository, a licence and base model when known,
    and, for timm models, the timm architecture (timm can load the repository itself)."""

    repo_id: str
    license: str | None = None
    base_model: str | None = None
    timm_architecture: str | None = None
    sharded: bool = False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dataset(config: dict[str, Any], metrics: dict[str, Any]) -> str | None:
    training = config.get("training") or {}
    name = metrics.get("dataset") or training.get("dataset")
    return str(name) if name else None


def front_matter(config: dict[str, Any], metrics: dict[str, Any], model_ref: str, hub: HubCard | None = None) -> str:
    """The YAML header the Hub reads: library, tags, datasets, licence and base model when known, and a
    model-index with the accuracies."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset = _dataset(config, metrics)
    results = [
        EvalResult(
            task_type="image-classification", dataset_type=dataset, dataset_name=dataset,
            metric_type=ACCURACY_KEYS[key][0], metric_name=ACCURACY_KEYS[key][1], metric_value=value,
        )
        for key, value in metrics.items()
        if dataset and key in ACCURACY_KEYS and _is_number(value)
    ]  # fmt: skip
    architecture = parse(config["architecture"])
    plugin, arch = architecture.plugin, architecture.name
    timm = hub is not None and hub.timm_architecture is not None
    data = ModelCardData(
        library_name="timm" if timm else "zoo",
        pipeline_tag="image-classification",
        tags=["image-classification", "zoo", "safetensors", arch, f"zoo-plugin-{plugin}", *(["timm"] if timm else [])],
        datasets=[dataset] if dataset else None,
        license=hub.license if hub is not None else None,
        base_model=hub.base_model if hub is not None else None,
        metrics=sorted({r.metric_type for r in results}) or None,
        model_name=(hub.repo_id if hub is not None else f"{model_ref}.{config['tag']}") if results else None,
        eval_results=results or None,
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _table(rows: list[tuple[str, Any]], headers: tuple[str, str]) -> str:
    lines = [f"| {headers[0]} | {headers[1]} |", "| --- | --- |"]
    lines += [f"| {k} | {json.dumps(v) if isinstance(v, (list, dict)) else v} |" for k, v in rows]
    return "\n".join(lines)


def _recipe(training: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(k, training[k]) for k in RECIPE_KEYS if training.get(k) not in (None, "", {}, [])]


def _usage(config: dict[str, Any], model_ref: str, dataset: str | None, hub: HubCard | None) -> list[str]:
    import shlex

    tag = config["tag"]
    data_arg = f" --dataset {dataset}" if dataset else ""
    training = config.get("training") or {}
    if dataset and training.get("data_dir") and hub is None:  # the folder it was trained from: the line runs
        data_arg += f" --data-dir {shlex.quote(str(training['data_dir']))}"
    for key, value in (training.get("data_options") or {}).items() if dataset else ():
        data_arg += f" --data-opt {shlex.quote(f'{key}={json.dumps(value)}')}"
    if hub is None:
        return [
            "```python\nfrom zoo_core import create_model\n\n"
            f'model = create_model("{model_ref}", pretrained="{tag}")\nmodel.eval()\n```\n',
            f"```bash\nzoo eval {model_ref}.{tag}{data_arg}\n```\n",
            "`model.safetensors` can also be read without zoo: `safetensors.torch.load_file`, then "
            "`load_state_dict` into the architecture built with the constructor arguments above.\n",
        ]
    out = [
        "```python\nimport zoo_core as zoo\n\n"
        f'model = zoo.create_model("hf-hub:{hub.repo_id}")  # pulled into the local registry on first use\n'
        "model.eval()\n```\n",
        f"```bash\nzoo pull {hub.repo_id}\nzoo eval hf-hub:{hub.repo_id}{data_arg}\n```\n",
    ]
    if hub.timm_architecture is not None:
        out.append(f'timm loads it too:\n\n```python\nimport timm\n\nmodel = timm.create_model("hf-hub:{hub.repo_id}", '
                   "pretrained=True)\n```\n")
    weights = ("the shards listed in `model.safetensors.index.json`" if hub.sharded else "`model.safetensors`")
    out.append(f"Without zoo: load {weights} with `safetensors.torch.load_file` and `load_state_dict` them into "
               f"`{config['architecture']}` built with the constructor arguments above (also in `config.json`, "
               "under `zoo`).\n")
    return out


def render(config: dict[str, Any], metrics: dict[str, Any], model_ref: str, hub: HubCard | None = None) -> str:
    """The whole README.md; ``model_ref`` is the name ``create_model`` takes (bare when unambiguous);
    ``hub`` makes it the card of that Hub repository."""
    tag = config["tag"]
    labels = list(config.get("labels") or [])
    shown = ", ".join(f"`{label}`" for label in labels[:SHOWN_LABELS])
    if len(labels) > SHOWN_LABELS:
        shown += f", ... ({len(labels) - SHOWN_LABELS} more in config.json)"
    dataset = _dataset(config, metrics)
    trained = f" trained on `{dataset}`" if dataset else ""
    size_mb = config.get("size_bytes", 0) / 1e6
    out = [
        front_matter(config, metrics, model_ref, hub),
        f"# {hub.repo_id if hub is not None else f'{model_ref}.{tag}'}\n",
        f"`{config['architecture']}` weights{trained}, published by zoo {config.get('zoo_version', '')} "
        f"on {config.get('created', '')}.\n",
        "## Model\n",
        _table(
            [
                ("architecture", f"`{config['architecture']}`"),
                ("constructor arguments", f"`{json.dumps(config.get('model_kwargs', {}), sort_keys=True)}`"),
                ("classes", config.get("num_classes")),
                ("parameters", f"{config.get('num_params', 0):,}"),
                ("weights", f"`{config.get('weights_file', 'model.safetensors')}`, {size_mb:.2f} MB"),
                ("sha256", f"`{config.get('sha256', '')}`"),
            ],
            ("property", "value"),
        ),
        f"\n**Labels** ({len(labels)}): {shown}\n" if labels else "",
        "## Preprocessing\n",
        _table(sorted((config.get("preprocessing") or {}).items()), ("step", "value"))
        if config.get("preprocessing") else "Not recorded.",
        "\n## Metrics\n",
    ]
    flat = [(k, v) for k, v in sorted(metrics.items()) if not isinstance(v, dict)]
    nested = {k: v for k, v in sorted(metrics.items()) if isinstance(v, dict)}
    if flat:
        out.append(_table(flat, ("metric", "value")))
    for name, values in nested.items():
        out.append(f"\n**{name}**\n\n```json\n{json.dumps(values, indent=2, sort_keys=True)}\n```")
    if not metrics:
        out.append("Not measured yet.")
    training = config.get("training") or {}
    if training:
        out.append("\n## Training\n")
        if _recipe(training):
            out.append(_table(_recipe(training), ("setting", "value")) + "\n")
        if training.get("command"):
            out.append(f"```bash\n{training['command']}\n```\n")
        recipe = json.dumps(training, indent=2, sort_keys=True)
        out.append(f"<details><summary>Full training record</summary>\n\n```json\n{recipe}\n```\n</details>")
    source = [(k, config[k]) for k in ("origin", "revision", "license", "base_model") if config.get(k)]
    if source and hub is None:
        out += ["\n## Source\n", _table(source, ("field", "value"))]
    pushed = [p for p in config.get("pushed") or [] if isinstance(p, dict)]
    if pushed and hub is None:
        out.append("\n## On the Hub\n")
        out.append(_table([(f"`{p.get('repo')}` ({p.get('revision')})", f"commit `{p.get('commit')}`, {p.get('date')}")
                           for p in pushed], ("repository", "pushed")))  # fmt: skip
    rows = _lineage(config, model_ref, pushed=hub is not None)
    if rows:
        out += ["\n## Lineage\n", _table(rows, ("", "")) + "\n"]
    out += ["\n## Usage\n", *_usage(config, model_ref, dataset, hub)]
    return "\n".join(out)


def _lineage(config: dict[str, Any], model_ref: str, pushed: bool) -> list[tuple[str, Any]]:
    """What the weights came from (``zoo_registry.lineage``): version (the one pushed), parent, data, run."""
    lineage = config.get("lineage") or {}
    rows: list[tuple[str, Any]] = []
    if config.get("version"):
        rows.append(("pushed from" if pushed else "version", f"`{model_ref}.{config['tag']}@{config['version']}`"))
    parent = lineage.get("parent") or {}
    if parent.get("name"):
        pinned = f" at `{parent['commit']}`" if parent.get("commit") else ""
        rows.append(("parent", f"`{parent['name']}`{pinned} ({parent.get('kind', 'weights')})"))
        if parent.get("pushed_as"):
            rows.append(("pushed as", f"`{parent['pushed_as']}`"))
    data = lineage.get("dataset") or {}
    if data.get("name"):
        rows.append(("dataset", f"`{data['name']}`" + (f" from `{data['path']}`" if data.get("path") else "")))
    if data.get("fingerprint"):
        rows.append(("dataset fingerprint", f"`{data['fingerprint']}`"))
    run = lineage.get("run") or {}
    if run.get("id"):
        rows.append(("run", f"`{run['id']}`" + (f", started {run['created']}" if run.get("created") else "")))
    return rows
