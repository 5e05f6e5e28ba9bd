"""The CIFAR-10 speedrun: `zoo train --recipe cifar10-fast` against the time the classic tutorial needs for its
10 epochs, measured in the same run on the same machine.

    python benchmarks/speedrun.py [--data-dir $ZOO_DATA/cifar10] [--seeds 0 1 2] [--recipe cifar10-fast]
        [--train-arg=--epochs --train-arg=6] [--out FILE]

The tutorial: torchvision ImageFolder + ToTensor/Normalize + DataLoader(num_workers=2), SimpleCNN, Adam 1e-3,
batch 64 (``train_throughput.tutorial_accuracy``), one epoch over the 50,000 training images, timed around its
training loop alone (no start-up, no test); ten times that is the budget. It runs before the recipe's runs
and again after them, and the budget is ten times the mean of its epochs, so that a machine that others share
weighs on both sides alike.

The recipe: `zoo train --recipe NAME --data-dir DIR --tag fast --seed S --json` for each seed, timed as a
whole process from the shell (start-up, loading the decoded dataset, training, the test with the recipe's
test-time augmentation, publishing), with the decoded-dataset cache built beforehand. Its test top-1 is read
from the registry (`zoo registry list --json`: the row of tag `fast`, its `metrics.top1`), where each seed's
weights are a version of `MODEL.fast`.

Written to benchmarks/results/speedrun.json: each run, mean / min / max of top-1 and time, the budget, whether
the target (top-1 >= --target within the budget) was met, the machine's load average around every
measurement (os.getloadavg: a shared machine), and the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from provenance import cifar10_dir, recorded_command, recorded_path

HERE = Path(__file__).resolve().parent
TUTORIAL = """
import json, sys
sys.path.insert(0, {here!r})
from pathlib import Path
from train_throughput import tutorial_accuracy
print(json.dumps(tutorial_accuracy(Path({data!r}), 64, 1, 2)))
"""


def load() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def run(cmd: list[str], env: dict[str, str], what: str) -> tuple[float, str]:
    """(wall seconds, stdout) of a whole process; its failure ends the benchmark with its stderr."""
    began = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"speedrun: {what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def tutorial_epoch(data: Path, env: dict[str, str]) -> dict[str, Any]:
    before = load()
    wall, out = run([sys.executable, "-c", TUTORIAL.format(here=str(HERE), data=str(data))], env, "the tutorial")
    result = json.loads(out.strip().splitlines()[-1])
    return {"train_loop_s": result["train_time_s"], "process_s": round(wall, 1),
            "test_top1_after_1_epoch": result["test_top1"], "load_before": before, "load_after": load()}  # fmt: skip


def recipe_run(recipe: str, data: Path, seed: int, tag: str, env: dict[str, str], extra: list[str]) -> dict[str, Any]:
    zoo = [sys.executable, "-m", "zoo_core"]
    before = load()
    cmd = [*zoo, "train", "--recipe", recipe, "--data-dir", str(data), "--tag", tag, "--seed", str(seed), "--json",
           *extra]  # fmt: skip
    wall, out = run(cmd, env, f"zoo train --recipe {recipe} --seed {seed}")
    after = load()
    trained = json.loads(out)
    _, listed = run([*zoo, "registry", "list", "--json"], env, "zoo registry list")
    version = trained.get("version")
    rows = [r for r in json.loads(listed) if r.get("tag") == tag]
    row = next((r for r in rows if version is None or r.get("version") in (None, version)), rows[-1] if rows else {})
    training = trained["training"]
    return {
        "seed": seed,
        "top1": (row.get("metrics") or {}).get("top1", trained["metrics"]["top1"]),
        "top1_in_output": trained["metrics"]["top1"],
        "tta": trained["metrics"].get("tta"),
        "process_s": round(wall, 1),
        "train_time_s": trained["metrics"].get("train_time_s"),
        "train_images_per_s": trained["metrics"].get("train_images_per_s"),
        "published": trained["published"],
        "registry_row": {"tag": row.get("tag"), "version": row.get("version"), "top1": (row.get("metrics") or {})
                         .get("top1")},  # fmt: skip
        "precision": training.get("precision"),
        "epochs": training.get("epochs"),
        "batch_size": training.get("batch_size"),
        "device": training.get("environment", {}).get("device"),
        "load_before": before,
        "load_after": after,
    }


def summary(values: list[float]) -> dict[str, float]:
    return {"mean": round(statistics.mean(values), 2), "min": round(min(values), 2), "max": round(max(values), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="CIFAR-10 in ImageFolder layout (default: $ZOO_DATA/cifar10)")
    parser.add_argument("--recipe", default="cifar10-fast")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tag", default="fast")
    parser.add_argument("--target", type=float, default=91.0, help="test top-1 (%%) the recipe must reach")
    parser.add_argument("--tutorial-epochs", type=int, default=10, help="the budget: this many tutorial epochs")
    parser.add_argument("--device", help="passed to zoo train (a GPU run records its own time; the tutorial stays "
                        "on the CPU as it is written)")  # fmt: skip
    parser.add_argument("--train-arg", action="append", default=[], metavar="ARG",
                        help="one more argument for zoo train, recorded (repeat it: --train-arg=--epochs "
                        "--train-arg=6)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=HERE / "results" / "speedrun.json")
    args = parser.parse_args()
    data = cifar10_dir(args.data_dir, "speedrun")

    from zoo_core.paths import cache_dir

    home = Path(tempfile.mkdtemp(prefix="zoo_speedrun_"))
    # A throw-away registry and runs; the decoded-dataset cache is the user's, built once beforehand.
    env = {**os.environ, "ZOO_HOME": str(home), "ZOO_CACHE": str(cache_dir())}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as on a user's machine, compiled modules are cached
    print("building the decoded-dataset cache (not timed) ...", file=sys.stderr)
    run([sys.executable, "-c", f"from zoo_core.plugin_api import load_dataset; load_dataset('cifar10', {str(data)!r})"],
        env, "decoding the dataset")  # fmt: skip
    extra = [*(["--device", args.device] if args.device else []), *args.train_arg]

    tutorial = [tutorial_epoch(data, env)]
    print(f"tutorial epoch: {tutorial[-1]['train_loop_s']} s (load {tutorial[-1]['load_before']})", file=sys.stderr)
    runs = []
    for seed in args.seeds:
        runs.append(recipe_run(args.recipe, data, seed, args.tag, env, extra))
        r = runs[-1]
        print(f"seed {seed}: top-1 {r['top1']}%  {r['process_s']} s  (load {r['load_before']})", file=sys.stderr)
    tutorial.append(tutorial_epoch(data, env))
    print(f"tutorial epoch: {tutorial[-1]['train_loop_s']} s (load {tutorial[-1]['load_before']})", file=sys.stderr)

    from zoo_core.atomic_io import atomic_write_json
    from zoo_core.environment import environment

    epoch_s = statistics.mean(t["train_loop_s"] for t in tutorial)
    budget = round(args.tutorial_epochs * epoch_s, 1)
    top1, seconds = summary([r["top1"] for r in runs]), summary([r["process_s"] for r in runs])
    result = {
        "benchmark": "speedrun",
        "recipe": args.recipe,
        "recipe_overrides": args.train_arg,
        "dataset": recorded_path(data),
        "target": {"top1": args.target, "within_s": budget,
                   "rule": f"test top-1 >= {args.target}% (mean of the seeds) in no more whole-process time than "
                   f"{args.tutorial_epochs} epochs of the tutorial's loop (every seed)"},  # fmt: skip
        "tutorial": {"epochs": tutorial, "mean_epoch_s": round(epoch_s, 1),
                     "budget_s": budget, "budget_epochs": args.tutorial_epochs},  # fmt: skip
        "runs": runs,
        "top1": top1,
        "process_s": seconds,
        "time_vs_budget": round(seconds["max"] / budget, 3),
        "met": {"top1": top1["mean"] >= args.target, "time": seconds["max"] <= budget},
        "cpu_flags": _cpu_flags(),
        "load_average_1_5_15": {"start": tutorial[0]["load_before"], "end": tutorial[-1]["load_after"]},
        "environment": environment(runs[0]["device"] or "cpu"),
        "command": recorded_command("speedrun.py", sys.argv[1:]),
    }
    atomic_write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("top1", "process_s", "tutorial", "met")}, indent=2))
    return 0


def _cpu_flags() -> list[str]:
    """The CPU features that decide bf16 on a CPU (Linux /proc/cpuinfo)."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    wanted = {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx2"}
    return sorted(set(flags.split(":", 1)[1].split()) & wanted)


if __name__ == "__main__":
    sys.exit(main())
