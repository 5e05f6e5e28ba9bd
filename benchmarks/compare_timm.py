"""Compare `zoo benchmark` with timm's own benchmark.py on the same models and settings.

    python benchmarks/compare_timm.py              # CPU: densenet121 batch 32, resnet18 batch 64, fp32
    python benchmarks/compare_timm.py --device cuda --precision fp16 --models densenet121:256 --rounds 1 \
        --warmup 10 --iters 40 --out /tmp/timm_gpu.json --markdown /tmp/timm_gpu.md

Both harnesses measure timm's implementation of each model (zoo runs it as ``timm:NAME``) with the
same batch, image size, precision, warm-up and timed steps, each run in a fresh process, alternating
which goes first from round to round so that drift on a shared machine hits both alike. timm's
figure is samples / elapsed time of its timed loop; zoo reports that (``samples_per_sec_mean``) and
its own median-step figure (``samples_per_sec``); both are compared with timm's (median over rounds).

timm's wheel does not ship benchmark.py; the copy in benchmarks/third_party/ is run through its own
runner classes (that version has no --device option, so the device is handed to them directly).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TIMM_SCRIPT = HERE / "third_party" / "timm_benchmark.py"
TOLERANCE = 0.05


def run_timm(model: str, batch: int, a: argparse.Namespace) -> dict[str, Any]:
    """One run of timm's InferenceBenchmarkRunner, with the arguments its benchmark() would pass."""
    spec = importlib.util.spec_from_file_location("timm_benchmark", TIMM_SCRIPT)
    assert spec is not None and spec.loader is not None
    timm_benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(timm_benchmark)
    argv = ["--model", model, "-b", str(batch), "--img-size", str(a.img_size), "--bench", "inference",
            "--num-warm-iter", str(a.warmup), "--num-bench-iter", str(a.iters)]  # fmt: skip
    if a.precision == "fp16":
        argv.append("--amp")  # timm's AMP is fp16 autocast, as zoo's fp16 is
    kwargs = vars(timm_benchmark.parser.parse_args(argv))
    kwargs.pop("model"), kwargs.pop("batch_size")
    if kwargs.pop("amp"):
        kwargs["precision"] = "amp"
    kwargs["device"] = a.device
    return timm_benchmark._try_run(model, timm_benchmark.InferenceBenchmarkRunner, batch, kwargs)


def _run(argv: list[str], a: argparse.Namespace) -> Any:
    from zoo_bench.idle import wait_until_idle

    wait_until_idle(a.wait_idle)  # a shared machine: start each run when others' work has stopped
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)} if a.threads else None
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


def _common(a: argparse.Namespace) -> list[str]:
    return ["--img-size", str(a.img_size), "--device", a.device, "--precision", a.precision,
            "--warmup", str(a.warmup), "--iters", str(a.iters)]  # fmt: skip


def timm_once(model: str, batch: int, a: argparse.Namespace) -> dict[str, Any]:
    r = _run([__file__, "--timm-child", model, "--batch", str(batch), *_common(a)], a)
    if "error" in r:
        raise SystemExit(f"timm's benchmark failed on {model}: {r['error']}")
    return {"samples_per_sec": r["samples_per_sec"], "step_time_ms_mean": r["step_time"], "batch_size": r["batch_size"]}


def zoo_once(model: str, batch: int, a: argparse.Namespace) -> dict[str, Any]:
    argv = ["-m", "zoo_core.cli", "benchmark", "--model", f"timm:{model}", "--batch-size", str(batch), *_common(a)]
    r = _run([*argv, "--no-isolate", "--json"], a)[0]
    if r.get("error"):
        raise SystemExit(f"zoo benchmark failed on {model}: {r['error']}")
    i = r["infer"]
    return {"samples_per_sec": i["samples_per_sec"], "samples_per_sec_mean": i["samples_per_sec_mean"],
            "step_time_ms": i["step_time_ms"], "step_time_ms_mean": i["step_time_ms_mean"],
            "batch_size": i["batch_size"], "environment": r["environment"]}  # fmt: skip


def compare(a: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": {k: getattr(a, k) for k in ("device", "precision", "img_size", "warmup",
                                                                      "iters", "rounds", "threads")},
                               "tolerance": TOLERANCE, "models": {}}  # fmt: skip
    for item in a.models:
        model, _, batch_text = item.partition(":")
        batch = int(batch_text or 32)
        runs: dict[str, list[dict[str, Any]]] = {"timm": [], "zoo": []}
        for i in range(a.rounds):
            for who in ("timm", "zoo") if i % 2 == 0 else ("zoo", "timm"):
                run = timm_once(model, batch, a) if who == "timm" else zoo_once(model, batch, a)
                runs[who].append(run)
                print(f"{model} b{batch} round {i + 1} {who}: {run['samples_per_sec']:.2f} samples/s", file=sys.stderr)
        for run in runs["zoo"]:
            results["environment"] = run.pop("environment")
        timm_sps = statistics.median(r["samples_per_sec"] for r in runs["timm"])
        zoo_mean = statistics.median(r["samples_per_sec_mean"] for r in runs["zoo"])
        zoo_median = statistics.median(r["samples_per_sec"] for r in runs["zoo"])
        ratios = (zoo_mean / timm_sps, zoo_median / timm_sps)
        results["models"][model] = {
            "batch_size": batch,
            "timm_samples_per_sec": round(timm_sps, 2),
            "zoo_samples_per_sec_mean": round(zoo_mean, 2),
            "zoo_samples_per_sec": round(zoo_median, 2),
            "ratio_mean": round(ratios[0], 4),
            "ratio_median": round(ratios[1], 4),
            "within_tolerance": all(abs(r - 1) <= TOLERANCE for r in ratios),
            "runs": runs,
        }
    return results


def markdown(results: dict[str, Any], command: str) -> str:
    s, env = results["settings"], results.get("environment", {})
    lines = [
        "# zoo benchmark vs timm's benchmark.py",
        "",
        f"Machine: {env.get('device_name')} ({s['device']}, {env.get('cpu_threads')} threads); torch "
        f"{env.get('torch')}, timm {env.get('timm')}; {env.get('date')}.",
        f"Settings: {s['img_size']}x{s['img_size']}, {s['precision']}, {s['warmup']} warm-up + {s['iters']} timed "
        f"steps; {s['rounds']} rounds, each run in a fresh process started once the CPUs were idle, alternating "
        "which harness goes first; median over rounds.",
        f"Command: `{command}`",
        "",
        "| model (timm's) | batch | timm samples/s | zoo, timm's definition | ratio | zoo, median step | ratio "
        "| within 5% |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]  # fmt: skip
    for model, m in results["models"].items():
        lines.append(
            f"| {model} | {m['batch_size']} | {m['timm_samples_per_sec']} | {m['zoo_samples_per_sec_mean']} | "
            f"{m['ratio_mean']:.3f} | {m['zoo_samples_per_sec']} | {m['ratio_median']:.3f} | "
            f"{'yes' if m['within_tolerance'] else 'NO'} |"
        )
    lines += [
        "",
        "timm's samples/s is the samples of its timed loop divided by that loop's elapsed time (\"timm's "
        "definition\", which zoo reports as `samples_per_sec_mean`); zoo's headline `samples_per_sec` is batch / "
        "median step time. The figures of every round are in the JSON file beside this one.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["densenet121:32", "resnet18:64"], metavar="NAME[:BATCH]",
                   help="timm model names with their batch sizes (default batch 32)")  # fmt: skip
    p.add_argument("--img-size", type=int, default=224)
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "fp16"])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=0, help="intra-op threads for both (default: torch's)")
    p.add_argument("--wait-idle", type=float, default=300, metavar="SECONDS",
                   help="before each run, wait up to this long for the CPUs to go quiet")  # fmt: skip
    p.add_argument("--out", default=str(HERE / "results" / "compare_timm.json"))
    p.add_argument("--markdown", default=str(HERE / "results" / "compare_timm.md"))
    p.add_argument("--timm-child", metavar="MODEL", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.timm_child:
        print(json.dumps(run_timm(a.timm_child, a.batch, a)))
        return
    if a.iters < 5:
        p.error("--iters must be at least 5 (timm's script logs every iters // 5 steps)")
    results = compare(a)
    from zoo_core.atomic_io import atomic_write_json, atomic_write_text

    results["command"] = shlex.join(["python", "benchmarks/compare_timm.py", *sys.argv[1:]])
    text = markdown(results, results["command"])
    atomic_write_json(a.out, results)
    atomic_write_text(a.markdown, text)
    print(text)
    sys.exit(0 if all(m["within_tolerance"] for m in results["models"].values()) else 1)


if __name__ == "__main__":
    main()
