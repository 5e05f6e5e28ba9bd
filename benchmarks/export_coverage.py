"""Which catalogue CNNs export to ONNX correctly: every torchvision classification family and timm's ResNet,
EfficientNet, DenseNet, Inception, MobileNet, RegNet and ConvNeXt families, with seeded random weights (nothing
is downloaded), through zoo's own path: ``zoo_export.verified.verify_module`` (the dynamo exporter, else the
TorchScript one) and its parity gate on the fixed generated picture set, then batch-1 CPU latency in onnxruntime
against eager torch.

Small inputs keep the run within ~20 minutes on 2 CPU cores (96 px where a model allows it; the few that need
more get what they need). Results: a CSV row per model in benchmarks/results/export_coverage.csv (written as it
goes: a rerun skips the models already there) and a summary with the environment in export_coverage.json.

    python3 benchmarks/export_coverage.py                 # the whole sample
    python3 benchmarks/export_coverage.py --only resnet18 # some models (substring match)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
CSV_PATH = RESULTS / "export_coverage.csv"
JSON_PATH = RESULTS / "export_coverage.json"
SEED = 0
DEFAULT_SIDE = 96

# (catalogue name, input side, builder arguments): torchvision's every classification family, then timm's
MODELS: list[tuple[str, int, dict[str, Any]]] = [
    ("torchvision:alexnet", 96, {}),
    ("torchvision:vgg11_bn", 96, {}),
    ("torchvision:vgg16", 96, {}),
    ("torchvision:resnet18", 96, {}),
    ("torchvision:resnet50", 96, {}),
    ("torchvision:resnet101", 96, {}),
    ("torchvision:resnext50_32x4d", 96, {}),
    ("torchvision:wide_resnet50_2", 96, {}),
    ("torchvision:squeezenet1_0", 96, {}),
    ("torchvision:squeezenet1_1", 96, {}),
    ("torchvision:densenet121", 96, {}),
    ("torchvision:densenet169", 96, {}),
    ("torchvision:inception_v3", 128, {"aux_logits": False, "init_weights": True}),
    ("torchvision:googlenet", 96, {"aux_logits": False, "init_weights": True}),
    ("torchvision:mobilenet_v2", 96, {}),
    ("torchvision:mobilenet_v3_small", 96, {}),
    ("torchvision:mobilenet_v3_large", 96, {}),
    ("torchvision:mnasnet0_5", 96, {}),
    ("torchvision:mnasnet1_0", 96, {}),
    ("torchvision:shufflenet_v2_x0_5", 96, {}),
    ("torchvision:shufflenet_v2_x1_0", 96, {}),
    ("torchvision:efficientnet_b0", 96, {}),
    ("torchvision:efficientnet_b2", 96, {}),
    ("torchvision:efficientnet_v2_s", 96, {}),
    ("torchvision:regnet_x_400mf", 96, {}),
    ("torchvision:regnet_y_400mf", 96, {}),
    ("torchvision:regnet_y_1_6gf", 96, {}),
    ("torchvision:convnext_tiny", 96, {}),
    ("torchvision:swin_t", 96, {}),
    ("torchvision:swin_v2_t", 96, {}),
    ("torchvision:vit_b_16", 96, {"image_size": 96}),
    ("torchvision:maxvit_t", 224, {}),
    ("timm:resnet18", 96, {}),
    ("timm:resnet26d", 96, {}),
    ("timm:resnet50d", 96, {}),
    ("timm:resnetv2_50", 96, {}),
    ("timm:seresnext26d_32x4d", 96, {}),
    ("timm:efficientnet_b0", 96, {}),
    ("timm:efficientnet_lite0", 96, {}),
    ("timm:tf_efficientnet_b0", 96, {}),
    ("timm:tf_efficientnetv2_b0", 96, {}),
    ("timm:efficientnetv2_rw_t", 96, {}),
    ("timm:mixnet_s", 96, {}),
    ("timm:densenet121", 96, {}),
    ("timm:densenetblur121d", 96, {}),
    ("timm:inception_v3", 128, {}),
    ("timm:inception_v4", 128, {}),
    ("timm:inception_resnet_v2", 128, {}),
    ("timm:mobilenetv2_100", 96, {}),
    ("timm:mobilenetv3_large_100", 96, {}),
    ("timm:mobilenetv3_small_100", 96, {}),
    ("timm:mobilenetv4_conv_small", 96, {}),
    ("timm:lcnet_050", 96, {}),
    ("timm:regnetx_002", 96, {}),
    ("timm:regnety_002", 96, {}),
    ("timm:regnety_008", 96, {}),
    ("timm:regnetz_b16", 96, {}),
    ("timm:convnext_atto", 96, {}),
    ("timm:convnext_femto", 96, {}),
    ("timm:convnext_pico", 96, {}),
    ("timm:convnextv2_atto", 96, {}),
    ("timm:ghostnet_100", 96, {}),
    ("timm:dla34", 96, {}),
    ("timm:rexnet_100", 96, {}),
]

COLUMNS = ["model", "library", "family", "img_size", "params_m", "status", "exporter", "fallback", "cause",
           "images", "top1_differs", "ties", "max_abs_diff", "worst_share", "ort_ms", "eager_ms", "ratio",
           "export_s", "detail"]  # fmt: skip


def family(name: str) -> str:
    """The family a model belongs to, as the library groups them (resnet50d -> resnet, vgg16 -> vgg)."""
    base = name.split(":")[-1]
    for prefix in ("tf_efficientnetv2", "efficientnetv2", "efficientnet_v2", "tf_efficientnet", "efficientnet",
                   "inception_resnet_v2", "inception", "mobilenetv2", "mobilenetv3", "mobilenetv4", "mobilenet_v2",
                   "mobilenet_v3", "wide_resnet", "resnext", "seresnext", "resnetv2", "resnet", "regnet",
                   "convnextv2", "convnext", "densenet", "shufflenet", "squeezenet", "mnasnet", "swin_v2", "swin",
                   "vit", "maxvit", "vgg", "alexnet", "googlenet", "mixnet", "lcnet", "ghostnet", "dla", "rexnet"):
        if base.startswith(prefix):
            return prefix
    return base


def cause_of(text: str) -> str:
    """A failure's cause in a few words, for the by-cause summary."""
    if "branches on its input" in text:
        return "data-dependent control flow"
    if "top-1 differs" in text:
        return "parity: top-1 differs"
    if "beyond tolerance" in text:
        return "parity: logits beyond tolerance"
    if "non-finite" in text:
        return "non-finite logits"
    if "cannot run the export" in text:
        return "onnxruntime cannot run the file"
    if "failed" in text:
        return "exporter error"
    return "other"


def _like_trained(model: Any, pictures: Any) -> None:
    """Make seeded random weights behave as trained ones do in scale: batch-norm statistics measured on the
    pictures (a fresh network's are mean 0, variance 1, so activations shrink stage by stage: timm's
    EfficientNet-B0 ends with logits of 1e-5), and a last linear layer of unit gain. Otherwise every logit is
    near zero, every picture a tie, and the gate toothless."""
    import math

    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if norms:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a plain average over the batches below
        model.train()
        with torch.no_grad():
            for start in range(0, 32, 16):
                model(pictures[start:start + 16])
        model.eval()

    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if last:
        with torch.no_grad():
            last[-1].weight.normal_(0, 1 / math.sqrt(last[-1].in_features))
            if last[-1].bias is not None:
                last[-1].bias.zero_()


def run_one(name: str, side: int, kwargs: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Export one model through zoo's verified path and time it; a failure is a row, never an exception."""
    import torch
    from zoo_export.images import generated
    from zoo_export.latency import batch1
    from zoo_export.runtime import session
    from zoo_export.verified import ExportRefused, verify_module

    import zoo_core
    from zoo_core.plugin_api import Preprocessing

    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(model=name, library=name.split(":")[0], family=family(name), img_size=side)
    torch.manual_seed(SEED)
    model = zoo_core.create_model(name, **kwargs).eval()
    row["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    pre = Preprocessing((3, side, side), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear", 0.875)
    images = generated(pre)
    _like_trained(model, images.tensors)
    start = time.perf_counter()
    try:
        verified = verify_module(model, images, workdir, fmt="onnx", what=name)
    except ExportRefused as e:
        row.update(status="fail", cause=cause_of(str(e)), detail=str(e)[:400], export_s=round(time.perf_counter()
                                                                                          - start, 1))  # fmt: skip
        return row
    row["export_s"] = round(time.perf_counter() - start, 1)
    p = verified.parity
    row.update(status="pass", exporter=verified.exporter, fallback=(verified.fallback or "")[:200], images=p.images,
               top1_differs=p.top1_differs, ties=p.ties, max_abs_diff=f"{p.max_abs_diff:.3g}",
               worst_share=f"{p.worst_share:.3g}")  # fmt: skip
    s = session(verified.path)
    latency = batch1(model, lambda x: s.run(None, {"input": x})[0], images.tensors, budget_s=1.0)
    row.update(ort_ms=latency["export_ms"], eager_ms=latency["eager_ms"], ratio=latency["ratio"])
    verified.path.unlink(missing_ok=True)
    return row


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    passed = [r for r in rows if r["status"] == "pass"]
    ratios = [float(r["ratio"]) for r in passed if r["ratio"] not in ("", None)]
    causes: dict[str, list[str]] = {}
    for r in rows:
        if r["status"] != "pass":
            causes.setdefault(r["cause"] or "other", []).append(r["model"])
    return {
        "models": len(rows), "passed": len(passed), "pass_rate": round(len(passed) / len(rows), 4) if rows else None,
        "exporters": {e: sum(r["exporter"] == e for r in passed) for e in sorted({r["exporter"] for r in passed})},
        "median_latency_ratio": round(statistics.median(ratios), 4) if ratios else None,
        "latency_ratio_quartiles": [round(q, 4) for q in statistics.quantiles(ratios, n=4)] if len(ratios) > 1
        else None,
        "failures_by_cause": causes,
        "families": sorted({r["family"] for r in rows}),
    }  # fmt: skip


def broad_family(fam: str) -> str:
    """Families as the docs' table groups them (resnext and wide_resnet with resnet, every EfficientNet ...)."""
    for broad, members in (("resnet", ("resnet", "resnext", "wide_resnet", "resnetv2", "seresnext")),
                           ("efficientnet", ("efficientnet", "efficientnet_v2", "tf_efficientnet", "efficientnetv2",
                                             "tf_efficientnetv2")),
                           ("mobilenet", ("mobilenet_v2", "mobilenet_v3", "mobilenetv2", "mobilenetv3", "mobilenetv4")),
                           ("convnext", ("convnext", "convnextv2")), ("swin", ("swin", "swin_v2")),
                           ("inception", ("inception", "inception_resnet_v2"))):  # fmt: skip
        if fam in members:
            return broad
    return fam


def markdown(rows: list[dict[str, Any]]) -> str:
    """The docs' short table: per library and family, models passed and the median batch-1 latency ratio."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["library"], broad_family(r["family"])), []).append(r)
    lines = ["| library | family | models | pass parity | exporter | onnxruntime / eager, batch 1 (median) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for (library, fam), group in groups.items():
        passed = [r for r in group if r["status"] == "pass"]
        ratios = [float(r["ratio"]) for r in passed if r["ratio"] not in ("", None)]
        exporters = ", ".join(sorted({r["exporter"] for r in passed})) or "-"
        shown = f"{statistics.median(ratios):.2f}x" if ratios else "-"
        lines.append(f"| {library} | {fam} | {len(group)} | {len(passed)} | {exporters} | {shown} |")
    return "\n".join(lines)


def read_rows() -> list[dict[str, Any]]:
    if not CSV_PATH.is_file():
        return []
    with open(CSV_PATH, newline="") as f:
        return list(csv.DictReader(f))


def write_rows(rows: list[dict[str, Any]]) -> None:
    import io

    from zoo_core.plugin_api import atomic_write_text

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(CSV_PATH, out.getvalue())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="Only models whose name contains one of these.")
    parser.add_argument("--fresh", action="store_true", help="Start again (ignore the rows already written).")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and onnxruntime alike.")
    parser.add_argument("--table", action="store_true", help="Print the docs' table of the rows written, and stop.")
    args = parser.parse_args()
    if args.table:
        print(markdown(read_rows()))
        return 0
    import onnxruntime
    import torch

    from zoo_core.plugin_api import atomic_write_json, environment

    # Seeded random weights hold denormal numbers that real weights rarely do; on a CPU they make eager torch
    # many times slower (onnxruntime flushes them), which would flatter the export's latency.
    torch.set_flush_denormal(True)
    # One thread each: on a machine that other work shares, a multi-threaded step waits on its slowest thread,
    # which punishes whichever runtime synchronises more; one thread compares the two computations.
    torch.set_num_threads(args.threads)
    chosen = [m for m in MODELS if not args.only or any(o in m[0] for o in args.only)]
    rows = [] if args.fresh else read_rows()
    done = {r["model"] for r in rows}
    started = time.time()
    load_before = [round(v, 2) for v in os.getloadavg()]
    for name, side, kwargs in chosen:
        if name in done:
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as work:
            try:
                row = run_one(name, side, kwargs, Path(work))
            except Exception as e:  # noqa: BLE001 - a model that cannot even be built is a row too
                row = dict.fromkeys(COLUMNS, "")
                row.update(model=name, library=name.split(":")[0], family=family(name), img_size=side, status="fail",
                           cause="build error", detail=" ".join(traceback.format_exception_only(e)).strip()[:400])
        rows.append(row)
        write_rows(rows)
        print(f"{name:40s} {row['status']:5s} {row['exporter'] or row['cause']:14s} ratio {row['ratio'] or '-':>8} "
              f"{time.perf_counter() - t0:6.1f} s", file=sys.stderr, flush=True)  # fmt: skip
    env = environment("cpu")
    env.update(onnxruntime=onnxruntime.__version__, torch_threads=torch.get_num_threads(),
               command=" ".join(["python3", "benchmarks/export_coverage.py", *sys.argv[1:]]), precision="fp32",
               batch_size=1,
               seed=SEED, parity_images="64 generated (zoo_export.images.generated)", flush_denormal=True,
               weights="seeded random (torch.manual_seed(0)); batch-norm statistics of 32 generated pictures; last "
                       "linear layer normal(0, 1/sqrt(fan_in))",
               wall_s_this_run=round(time.time() - started, 1),
               load_average={"start": load_before, "end": [round(v, 2) for v in os.getloadavg()]})  # fmt: skip
    atomic_write_json(JSON_PATH, {"summary": summarise(rows), "environment": env})
    print(json.dumps(summarise(rows), indent=2))
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
