"""Compare `zoo benchmark` with timm's own benchmark.py on the same models and settings.

timm's wheel does not ship benchmark.py and zoo keeps no copy of it: give this script the one in your
own checkout of timm, with ``--timm-benchmark PATH`` or the environment variable ``TIMM_BENCHMARK``
(the option wins over the variable):

    git clone https://github.com/huggingface/pytorch-image-models
    python benchmarks/compare_timm.py --timm-benchmark pytorch-image-models/benchmark.py
        # CPU: densenet121 batch 32, resnet18 batch 64, fp32
    TIMM_BENCHMARK=pytorch-image-models/benchmark.py python benchmarks/compare_timm.py --device cuda \
        --precision fp16 --models densenet121:256 --rounds 1 --warmup 10 --iters 40 \
        --out timm_gpu.json --markdown timm_gpu.md

Both harnesses measure timm's implementation of each model (zoo runs it as ``timm:NAME``) with the
same batch, image size, precision, warm-up and timed steps, each run in a fresh process, alternating
which goes first from round to round so that drift on a shared machine hits both alike. timm's
figure is samples / elapsed time of its timed loop; zoo reports that (``samples_per_sec_mean``) and
its own median-step figure (``samples_per_sec``); both are compared with timm's (median over rounds).

timm's side is its script run as a user runs it, ``python benchmark.py --model NAME -b BATCH --img-size N
--bench inference --num-warm-iter W --num-bench-iter I [--amp] [--device DEVICE]``, with the installed
timm (``PYTHONSAFEPATH=1`` keeps the checkout's own ``timm/`` folder off the path on Python 3.11+, so
both sides run the same timm). For one model the script writes no results file (its ``--results-file``
is a CSV for lists of models); it prints its results as JSON after a ``--result`` line, and
``infer_samples_per_sec``, ``infer_step_time`` and ``infer_batch_size`` are read from there. Versions of
benchmark.py without a ``--device`` option always run on cuda; for another device this script loads
such a file as a module, adds that one option to its argument parser and calls its ``main()``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TOLERANCE = 0.05
TIMM_ENV = "TIMM_BENCHMARK"
LAUNCH = "--launch-timm-script"  # internal: run an older benchmark.py (no --device option) on a chosen device
HOW_TO_GET_TIMM = (
    "get it with `git clone https://github.com/huggingface/pytorch-image-models` and pass "
    f"--timm-benchmark pytorch-image-models/benchmark.py (or set {TIMM_ENV})"
)


def find_timm_script(option: str | None) -> Path:
    """timm's benchmark.py from ``--timm-benchmark``, else ``$TIMM_BENCHMARK``; one line and exit 2 without it."""
    given, source = (option, "--timm-benchmark") if option else (os.environ.get(TIMM_ENV), TIMM_ENV)
    path = Path(given).expanduser() if given else None
    if path is None or not path.is_file():
        where = f" at {given} (from {source})" if given else ""
        print(f"compare_timm: timm's benchmark.py not found{where}; {HOW_TO_GET_TIMM}", file=sys.stderr)
        sys.exit(2)
    return path.resolve()


def has_device_option(script: Path) -> bool:
    """Whether this version of benchmark.py declares a ``--device`` option."""
    return re.search(r"""add_argument\(\s*['"]--device['"]""", script.read_text(encoding="utf-8")) is not None


def launch_with_device(script: str, argv: list[str]) -> None:
    """Run an older benchmark.py's own ``main()`` with ``argv``, after adding the ``--device`` option it lacks.

    Its ``benchmark()`` hands every parsed option to the runner classes as keyword arguments, so the
    added ``device`` reaches them as it does in the versions that declare the option themselves.
    """
    spec = importlib.util.spec_from_file_location("timm_benchmark_script", script)
    if spec is None or spec.loader is None:
        raise SystemExit(f"compare_timm: cannot load {script} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.parser.add_argument("--device", default="cuda")
    sys.argv = [script, *argv]
    module.main()


def portable(path: str | Path, keep: int = 1) -> str:
    """A path as a results file records it: relative inside the repository, else its last ``keep`` parts."""
    p = Path(path).expanduser().resolve()
    try:
        return p.relative_to(ROOT).as_posix()
    except ValueError:
        return "/".join(p.parts[-keep:])


def recorded_command(argv: list[str], timm_script: Path, from_env: bool) -> str:
    """The command line as a results file records it, with no path that belongs to this machine."""
    words, path_options = ["python", "benchmarks/compare_timm.py"], {"--timm-benchmark": 2, "--out": 1, "--markdown": 1}
    pending = 0  # the previous word was a path option: how many trailing parts of its value to keep
    for word in argv:
        option, eq, value = word.partition("=")
        if pending:
            word, pending = portable(word, pending), 0
        elif eq and option in path_options:
            word = f"{option}={portable(value, path_options[option])}"
        elif word in path_options:
            pending = path_options[word]
        elif os.path.isabs(value or option):  # any other path of this machine, e.g. an abbreviated option's
            word = f"{option}={portable(value)}" if eq else portable(word)
        words.append(word)
    if from_env:
        return f"{TIMM_ENV}={shlex.quote(portable(timm_script, 2))} {shlex.join(words)}"
    return shlex.join(words)


def script_commit(script: Path) -> str | None:
    """The commit of the timm checkout whose top folder holds ``script`` (None where it is no such checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(script.parent), "rev-parse", "--show-toplevel", "HEAD"],
                             capture_output=True, text=True, check=False, timeout=30)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != script.parent:
        return None
    return lines[1]


def _run(argv: list[str], a: argparse.Namespace, env: dict[str, str] | None = None) -> str:
    from idle import wait_until_idle

    wait_until_idle(a.wait_idle)  # a shared machine: start each run when others' work has stopped
    env = {**os.environ, **(env or {}), **({"OMP_NUM_THREADS": str(a.threads)} if a.threads else {})}
    out = subprocess.run([sys.executable, *argv], capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{out.stderr[-3000:]}")
    return out.stdout


def _common(a: argparse.Namespace) -> list[str]:
    return ["--img-size", str(a.img_size), "--device", a.device, "--precision", a.precision,
            "--warmup", str(a.warmup), "--iters", str(a.iters)]  # fmt: skip


def timm_command(model: str, batch: int, a: argparse.Namespace) -> list[str]:
    """The arguments for ``python``: timm's script with its own options for this model and these settings."""
    timm_args = ["--model", model, "-b", str(batch), "--img-size", str(a.img_size), "--bench", "inference",
                 "--num-warm-iter", str(a.warmup), "--num-bench-iter", str(a.iters)]  # fmt: skip
    if a.precision == "fp16":
        timm_args.append("--amp")  # timm's AMP is fp16 autocast, as zoo's fp16 is
    if a.timm_has_device:
        return [str(a.timm_script), *timm_args, "--device", a.device]
    if a.device == "cuda":  # what a script without --device runs on anyway
        return [str(a.timm_script), *timm_args]
    return [__file__, LAUNCH, str(a.timm_script), *timm_args, "--device", a.device]


def timm_results(stdout: str) -> dict[str, Any]:
    """The JSON object benchmark.py prints after its ``--result`` line."""
    _, mark, tail = stdout.rpartition("--result\n")
    if not mark:
        raise SystemExit(f"timm's benchmark.py printed no --result block; its output ended with:\n{stdout[-2000:]}")
    return json.JSONDecoder().raw_decode(tail.lstrip())[0]


def timm_once(model: str, batch: int, a: argparse.Namespace) -> dict[str, Any]:
    r = timm_results(_run(timm_command(model, batch, a), a, {"PYTHONSAFEPATH": "1"}))
    if "error" in r:
        raise SystemExit(f"timm's benchmark failed on {model}: {r['error']}")
    return {"samples_per_sec": r["infer_samples_per_sec"], "step_time_ms_mean": r["infer_step_time"],
            "batch_size": r["infer_batch_size"]}  # fmt: skip


def zoo_once(model: str, batch: int, a: argparse.Namespace) -> dict[str, Any]:
    argv = ["-m", "zoo_core.cli", "benchmark", "--model", f"timm:{model}", "--batch-size", str(batch), *_common(a)]
    r = json.loads(_run([*argv, "--no-isolate", "--json"], a))[0]
    if r.get("error"):
        raise SystemExit(f"zoo benchmark failed on {model}: {r['error']}")
    i = r["infer"]
    return {"samples_per_sec": i["samples_per_sec"], "samples_per_sec_mean": i["samples_per_sec_mean"],
            "step_time_ms": i["step_time_ms"], "step_time_ms_mean": i["step_time_ms_mean"],
            "batch_size": i["batch_size"], "environment": r["environment"]}  # fmt: skip


def compare(a: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"settings": {k: getattr(a, k) for k in ("device", "precision", "img_size", "warmup",
                                                                      "iters", "rounds", "threads")},
                               "timm_benchmark": {"path": portable(a.timm_script, 2),
                                                  "commit": script_commit(a.timm_script)},
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


def _script_line(script: dict[str, Any] | None) -> list[str]:
    if not script:
        return []
    commit = f" at commit {script['commit'][:12]}" if script.get("commit") else ""
    return [f"timm's script: `{script['path']}`{commit}, run with the installed timm."]


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
        *_script_line(results.get("timm_benchmark")),
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
    if len(sys.argv) > 2 and sys.argv[1] == LAUNCH:
        launch_with_device(sys.argv[2], sys.argv[3:])
        return
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
    p.add_argument("--timm-benchmark", metavar="PATH",
                   help=f"benchmark.py of your timm checkout (default: ${TIMM_ENV}); {HOW_TO_GET_TIMM}")  # fmt: skip
    p.add_argument("--out", default=str(HERE / "results" / "compare_timm.json"))
    p.add_argument("--markdown", default=str(HERE / "results" / "compare_timm.md"))
    a = p.parse_args()
    if a.iters < 5:
        p.error("--iters must be at least 5 (timm's script logs every iters // 5 steps)")
    a.timm_script = find_timm_script(a.timm_benchmark)
    a.timm_has_device = has_device_option(a.timm_script)
    results = compare(a)
    from zoo_core.atomic_io import atomic_write_json, atomic_write_text

    results["command"] = recorded_command(sys.argv[1:], a.timm_script, from_env=not a.timm_benchmark)
    text = markdown(results, results["command"])
    atomic_write_json(a.out, results)
    atomic_write_text(a.markdown, text)
    print(text)
    sys.exit(0 if all(m["within_tolerance"] for m in results["models"].values()) else 1)


if __name__ == "__main__":
    main()
