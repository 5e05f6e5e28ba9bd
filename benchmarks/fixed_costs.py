"""What a whole zoo process costs beyond its work: `zoo eval` on the cached CIFAR-10 test set against the time
to import torch, and one `zoo train` epoch (plus its test) against the classic tutorial loop, each measured as
a whole process from the shell, as a user meets them.

    python benchmarks/fixed_costs.py [--data-dir $ZOO_DATA/cifar10] [--rounds 3]

The tutorial process: torchvision ImageFolder + ToTensor/Normalize + DataLoader(num_workers=2), SimpleCNN,
Adam 1e-3, batch 64, one epoch over the 50,000 training images, then top-1 on the 10,000 test images.
zoo's: `zoo train simplecnn --dataset cifar10 --epochs 1 --val-fraction 0` (the same images, recipe and
test), from a warm decoded-dataset cache, publishing to a throw-away registry. Processes alternate from round
to round and the median is reported; each starts when the CPUs are quiet. On a shared VM whose neighbours
come and go, the per-round ratios and the ratio of each side's best run (noise only ever adds time) are
recorded too.
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

from provenance import cifar10_dir, recorded_path, write_result

HERE = Path(__file__).resolve().parent
TUTORIAL = """
import sys, time
sys.path.insert(0, {here!r})
from train_throughput import tutorial_accuracy
import torch
from pathlib import Path
print(tutorial_accuracy(Path({data!r}), 64, 1, 2))
"""


def wall(cmd: list[str], env: dict[str, str], quiet_wait: float) -> float:
    from idle import wait_until_idle

    wait_until_idle(quiet_wait)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"fixed_costs: {' '.join(cmd[:4])} ... failed:\n{proc.stderr[-2000:]}")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="CIFAR-10 in ImageFolder layout (default: $ZOO_DATA/cifar10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--eval-runs", type=int, default=5)
    parser.add_argument("--quiet-wait", type=float, default=120.0, help="seconds to wait for idle CPUs per run")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "fixed_costs.json")
    args = parser.parse_args()
    data = cifar10_dir(args.data_dir, "fixed_costs")

    home = Path(tempfile.mkdtemp(prefix="zoo_fixed_"))
    env = {**os.environ, "ZOO_HOME": str(home)}
    # As on a user's machine, Python caches compiled modules (a sandbox may switch that off): the first,
    # unmeasured run of each process writes them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    zoo = [sys.executable, "-m", "zoo_core"]
    train = [*zoo, "train", "simplecnn", "--dataset", "cifar10", "--data-dir", str(data), "--epochs", "1",
             "--val-fraction", "0", "--overwrite", "--tag", "fixed"]  # fmt: skip
    print("warming the decoded-dataset cache and publishing simplecnn.fixed ...", file=sys.stderr)
    subprocess.run(train, env=env, check=True, capture_output=True)

    evaluate = [*zoo, "eval", "simplecnn.fixed", "--dataset", "cifar10", "--data-dir", str(data), "--json"]
    importing = [sys.executable, "-c", "import torch"]
    torch_import, eval_runs = [], []
    for i in range(args.eval_runs):  # in pairs, so both sides of a difference meet the same machine
        for cmd, times in ((importing, torch_import), (evaluate, eval_runs))[:: 1 if i % 2 == 0 else -1]:
            times.append(wall(cmd, env, args.quiet_wait))
    report = json.loads(subprocess.run(evaluate, env=env, capture_output=True, text=True, check=True).stdout)

    tutorial = [sys.executable, "-c", TUTORIAL.format(here=str(HERE), data=str(data))]
    runs: dict[str, list[float]] = {"tutorial": [], "zoo": []}
    for i in range(args.rounds):
        for who in ("tutorial", "zoo") if i % 2 == 0 else ("zoo", "tutorial"):
            runs[who].append(wall(tutorial if who == "tutorial" else train, env, args.quiet_wait))
            print(f"round {i + 1} {who}: {runs[who][-1]:.1f} s", file=sys.stderr)

    t_import, t_eval = statistics.median(torch_import), statistics.median(eval_runs)
    t_tutorial, t_zoo = statistics.median(runs["tutorial"]), statistics.median(runs["zoo"])
    beyond = [e - t for e, t in zip(eval_runs, torch_import, strict=True)]
    speedups = [t / z for t, z in zip(runs["tutorial"], runs["zoo"], strict=True)]
    result = {
        "benchmark": "fixed_costs",
        "dataset": recorded_path(data),
        "eval": {
            "torch_import_s": round(t_import, 3),
            "zoo_eval_s": round(t_eval, 3),
            "beyond_torch_import_s": round(t_eval - t_import, 3),
            "beyond_torch_import_per_pair_s": [round(b, 3) for b in beyond],
            "beyond_torch_import_median_of_pairs_s": round(statistics.median(beyond), 3),
            "target_beyond_torch_import_s": 2.0,
            "test_images": report["num_samples"],
            "runs_s": [round(t, 3) for t in eval_runs],
            "torch_import_runs_s": [round(t, 3) for t in torch_import],
        },
        "one_epoch": {
            "tutorial_process_s": round(t_tutorial, 1),
            "zoo_train_process_s": round(t_zoo, 1),
            "speedup": round(t_tutorial / t_zoo, 3),
            "speedup_per_round": [round(x, 3) for x in speedups],
            "speedup_median_of_rounds": round(statistics.median(speedups), 3),
            "speedup_of_best_runs": round(min(runs["tutorial"]) / min(runs["zoo"]), 3),
            "target_speedup": 2.0,
            "runs_s": {k: [round(t, 1) for t in v] for k, v in runs.items()},
            "batch_size": 64,
            "precision": "fp32",
        },
    }
    return write_result(args.out, result, "fixed_costs.py", ("eval", "one_epoch"))


if __name__ == "__main__":
    sys.exit(main())
