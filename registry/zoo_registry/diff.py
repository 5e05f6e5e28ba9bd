"""``zoo registry diff A B``: how two published versions differ in metrics (per class too), in the settings and
data they came from, and in their weights, tensor by tensor (relative L2 change, ``||B - A|| / ||A||``)."""

from __future__ import annotations

import json
from typing import Any

# Settings whose change says nothing about the weights (where the run was, what printed it).
QUIET = {"command", "run_id", "run_nonce", "history", "environment", "resumed_with", "pipeline", "distributed",
         "device", "overwrite", "tag", "created"}  # fmt: skip
METRICS = ("top1", "top5", "num_samples", "dataset", "split", "best_val_top1", "epochs")


def _change(a: Any, b: Any) -> Any:
    numbers = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b))
    return round(b - a, 6) if numbers else None


def _settings(entry: Any) -> dict[str, Any]:
    """What a version was made from and how, flat: its recipe, data and parent."""
    from zoo_registry.lineage import of_entry

    lineage = of_entry(entry)
    flat = {k: v for k, v in (entry.config.get("training") or {}).items() if k not in QUIET}
    flat.update({k: v for k, v in (lineage.get("recipe") or {}).items() if k not in QUIET})
    dataset = lineage.get("dataset") or {}
    for key in ("name", "path", "options", "fingerprint"):
        if dataset.get(key) is not None:
            flat[f"dataset.{key}"] = dataset[key]
    flat.pop("dataset", None)
    flat.pop("data_dir", None)
    flat.pop("data_options", None)
    parent = lineage.get("parent") or {}
    if parent.get("name"):
        flat["parent"] = parent["name"]
    flat["model_kwargs"] = entry.config.get("model_kwargs")
    return flat


def weight_changes(a_path: Any, b_path: Any) -> dict[str, Any]:
    """Tensor by tensor: the relative L2 change of those both files hold at the same shape, and the rest."""
    import torch
    from safetensors.torch import load_file

    from zoo_core.plugin_api import WeightsError, first_line

    try:
        a, b = load_file(str(a_path)), load_file(str(b_path))
    except Exception as e:  # noqa: BLE001 - a damaged file is one line, and `zoo doctor` says more
        raise WeightsError(f"cannot read the weights to compare ({first_line(e)}); run `zoo doctor`") from None
    changes, unchanged, shape_changed = [], 0, []
    for key in sorted(set(a) & set(b)):
        x, y = a[key], b[key]
        if x.shape != y.shape:
            shape_changed.append({"tensor": key, "a": list(x.shape), "b": list(y.shape)})
            continue
        if not (x.is_floating_point() and y.is_floating_point()):
            unchanged += int(torch.equal(x, y))
            continue
        x64, y64 = x.double(), y.double()
        delta = torch.linalg.vector_norm(y64 - x64).item()
        if delta == 0:
            unchanged += 1
            continue
        base = torch.linalg.vector_norm(x64).item()
        changes.append({"tensor": key, "relative_l2": delta / base if base else float("inf"), "l2": delta})
    changes.sort(key=lambda c: c["relative_l2"], reverse=True)
    return {"tensors": len(set(a) | set(b)), "changed": len(changes), "unchanged": unchanged,
            "only_in_a": sorted(set(a) - set(b)), "only_in_b": sorted(set(b) - set(a)),
            "shape_changed": shape_changed, "most_changed": changes}  # fmt: skip


def diff(a: Any, b: Any, top: int = 10) -> dict[str, Any]:
    """How version ``b`` differs from version ``a`` (both ``store.PublishedEntry``)."""
    metrics = {k: {"a": a.metrics.get(k), "b": b.metrics.get(k), "change": _change(a.metrics.get(k), b.metrics.get(k))}
               for k in METRICS if a.metrics.get(k) is not None or b.metrics.get(k) is not None}  # fmt: skip
    per_a, per_b = a.metrics.get("per_class_top1") or {}, b.metrics.get("per_class_top1") or {}
    per_class = [{"class": c, "a": per_a.get(c), "b": per_b.get(c), "change": _change(per_a.get(c), per_b.get(c))}
                 for c in dict.fromkeys([*per_a, *per_b])]  # fmt: skip
    per_class.sort(key=lambda r: abs(r["change"]) if r["change"] is not None else -1, reverse=True)
    sa, sb = _settings(a), _settings(b)
    settings = [{"setting": k, "a": sa.get(k), "b": sb.get(k)} for k in sorted(set(sa) | set(sb))
                if json.dumps(sa.get(k), sort_keys=True) != json.dumps(sb.get(k), sort_keys=True)]  # fmt: skip
    out: dict[str, Any] = {"a": a.version_ref, "b": b.version_ref, "same_weights": a.sha256 == b.sha256,
                           "metrics": metrics, "per_class_top1": per_class, "settings": settings}  # fmt: skip
    if a.sha256 == b.sha256:
        out["weights"] = {"identical": True}
    else:
        weights = weight_changes(a.weights_path, b.weights_path)
        weights["most_changed"] = weights["most_changed"][:top]
        out["weights"] = weights
    return out


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "-" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else str(v)


def render(d: dict[str, Any], top: int = 10) -> list[str]:
    """The diff as lines of text."""
    lines = [f"{d['a']}  ->  {d['b']}"]
    if d["metrics"]:
        lines.append("metrics")
        for k, m in d["metrics"].items():
            change = f"  ({m['change']:+.4g})" if m["change"] not in (None, 0) else ""
            lines.append(f"  {k:<14}{_value(m['a'])}  ->  {_value(m['b'])}{change}")
    moved = [r for r in d["per_class_top1"] if r["change"] not in (None, 0)][:top]
    if moved:
        lines.append(f"per-class top-1, most changed ({len(moved)} of {len(d['per_class_top1'])})")
        lines += [f"  {r['class']:<14}{_value(r['a'])}  ->  {_value(r['b'])}  ({r['change']:+.4g})" for r in moved]
    lines.append("settings" if d["settings"] else "settings: the same")
    lines += [f"  {s['setting']:<20}{_value(s['a'])}  ->  {_value(s['b'])}" for s in d["settings"]]
    w = d["weights"]
    if w.get("identical"):
        lines.append("weights: identical (the same sha256)")
        return lines
    lines.append(f"weights: {w['changed']} of {w['tensors']} tensors changed, {w['unchanged']} unchanged"
                 + (f", {len(w['shape_changed'])} reshaped" if w["shape_changed"] else "")
                 + (f", {len(w['only_in_a']) + len(w['only_in_b'])} in one only" if w["only_in_a"] or w["only_in_b"]
                    else ""))  # fmt: skip
    if w["most_changed"]:
        lines.append("  most changed (relative L2 = ||B - A|| / ||A||)")
        lines += [f"  {c['tensor']:<40}{c['relative_l2']:.4f}" for c in w["most_changed"]]
    return lines
