"""The README.md model card of a published entry: Hugging Face YAML front matter, then a readable body."""

from __future__ import annotations

import json
from typing import Any

SHOWN_LABELS = 20
# metrics.json keys that are accuracies, as Hugging Face's model-index names them
ACCURACY_KEYS = {
    "top1": ("accuracy", "Top-1 accuracy"),
    "accuracy": ("accuracy", "Accuracy"),
    "acc": ("accuracy", "Accuracy"),
    "top5": ("top_5_accuracy", "Top-5 accuracy"),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _dataset(config: dict[str, Any], metrics: dict[str, Any]) -> str | None:
    training = config.get("training") or {}
    name = metrics.get("dataset") or training.get("dataset")
    return str(name) if name else None


def front_matter(config: dict[str, Any], metrics: dict[str, Any], model_ref: str) -> str:
    """The YAML header the Hub reads: library, tags, datasets and a model-index with the accuracies."""
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
    plugin, _, arch = config["architecture"].partition(":")
    data = ModelCardData(
        library_name="zoo",
        pipeline_tag="image-classification",
        tags=["image-classification", "zoo", "safetensors", arch, f"zoo-plugin-{plugin}"],
        datasets=[dataset] if dataset else None,
        metrics=sorted({r.metric_type for r in results}) or None,
        model_name=f"{model_ref}.{config['tag']}" if results else None,
        eval_results=results or None,
    )
    return f"---\n{data.to_yaml()}\n---\n"


def _table(rows: list[tuple[str, Any]], headers: tuple[str, str]) -> str:
    lines = [f"| {headers[0]} | {headers[1]} |", "| --- | --- |"]
    lines += [f"| {k} | {json.dumps(v) if isinstance(v, (list, dict)) else v} |" for k, v in rows]
    return "\n".join(lines)


def render(config: dict[str, Any], metrics: dict[str, Any], model_ref: str) -> str:
    """The whole README.md; ``model_ref`` is the name ``create_model`` takes (bare when unambiguous)."""
    tag = config["tag"]
    labels = list(config.get("labels") or [])
    shown = ", ".join(f"`{label}`" for label in labels[:SHOWN_LABELS])
    if len(labels) > SHOWN_LABELS:
        shown += f", ... ({len(labels) - SHOWN_LABELS} more in config.json)"
    dataset = _dataset(config, metrics)
    trained = f" trained on `{dataset}`" if dataset else ""
    size_mb = config.get("size_bytes", 0) / 1e6
    out = [
        front_matter(config, metrics, model_ref),
        f"# {model_ref}.{tag}\n",
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
    if config.get("training"):
        recipe = json.dumps(config["training"], indent=2, sort_keys=True)
        out += ["\n## Training\n", f"```json\n{recipe}\n```"]
    data_arg = f" --dataset {dataset}" if dataset else ""
    training = config.get("training") or {}
    import shlex

    if dataset and training.get("data_dir"):  # the folder it was trained from: the line runs as it is
        data_arg += f" --data-dir {shlex.quote(str(training['data_dir']))}"
    for key, value in (training.get("data_options") or {}).items() if dataset else ():
        data_arg += f" --data-opt {shlex.quote(f'{key}={json.dumps(value)}')}"
    out += [
        "\n## Usage\n",
        "```python\nfrom zoo_core import create_model\n\n"
        f'model = create_model("{model_ref}", pretrained="{tag}")\nmodel.eval()\n```\n',
        f"```bash\nzoo eval {model_ref}.{tag}{data_arg}\n```\n",
        "`model.safetensors` can also be read without zoo: `safetensors.torch.load_file`, then "
        "`load_state_dict` into the architecture built with the constructor arguments above.\n",
    ]
    return "\n".join(out)
