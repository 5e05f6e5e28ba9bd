"""Page faults and step time of CPU training steps with glibc's malloc defaults and with
`zoo_core.devices.keep_freed_cpu_memory` (what `zoo train` and `zoo eval` set on a CPU).

    python benchmarks/page_faults.py [--rounds 4] [--steps 20] [--batch-size 64]

Each measurement is a fresh process: SimpleCNN, Adam 1e-3, channels_last 3x32x32 inputs, some warm-up steps,
then the timed steps, whose minor page faults (getrusage) and wall time are divided by their count. The two
settings alternate from round to round and the medians are reported, with each round's ratio of step times
(a shared machine's load drifts less within a round) and the load average. GLIBC_TUNABLES and MALLOC_* are
unset, so that only the setting differs. Linux with glibc only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from provenance import load_average_1min, write_result

HERE = Path(__file__).resolve().parent
STEPS = """
import json, resource, sys, time
import torch
from zoo_core.devices import keep_freed_cpu_memory
from zoo_cnn.models import SimpleCNN

mode, warmup, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
if mode == "keep" and not keep_freed_cpu_memory():
    sys.exit("glibc refused the setting")
torch.manual_seed(0)
model = SimpleCNN().to(memory_format=torch.channels_last)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
y = torch.randint(0, 10, (batch,))


def run(n):
    for _ in range(n):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


run(warmup)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
start = time.perf_counter()
run(steps)
seconds = time.perf_counter() - start
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(json.dumps({"faults_per_step": faults / steps, "step_ms": 1000 * seconds / steps}))
"""


def measure(mode: str, args: argparse.Namespace) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GLIBC_TUNABLES", "MALLOC_"))}
    proc = subprocess.run([sys.executable, "-c", STEPS, mode, str(args.warmup), str(args.steps),
                           str(args.batch_size)], capture_output=True, text=True, env=env, timeout=600)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"page_faults: the {mode} process failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "page_faults.json")
    args = parser.parse_args()
    libc, libc_version = platform.libc_ver()
    if not sys.platform.startswith("linux") or libc != "glibc":
        print("page_faults: this measures glibc's malloc: run it on Linux with glibc", file=sys.stderr)
        return 2

    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {"default": [], "keep": []}
    for i in range(args.rounds):
        for mode in ("default", "keep") if i % 2 == 0 else ("keep", "default"):
            runs[mode].append(measure(mode, args))
            print(f"round {i + 1} {mode}: {runs[mode][-1]}", file=sys.stderr)

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    result = {
        "benchmark": "page_faults",
        "model": "simplecnn",
        "batch_size": args.batch_size,
        "input": [3, 32, 32],
        "steps": args.steps,
        "warmup": args.warmup,
        "rounds": args.rounds,
        "glibc": libc_version,
        **{mode: {"faults_per_step": round(median(mode, "faults_per_step"), 1),
                  "step_ms": round(median(mode, "step_ms"), 2),
                  "runs": [{k: round(v, 2) for k, v in r.items()} for r in runs[mode]]}
           for mode in runs},  # fmt: skip
        "faults_per_step_saved": round(median("default", "faults_per_step") - median("keep", "faults_per_step"), 1),
        "step_time_kept_over_default": round(median("keep", "step_ms") / median("default", "step_ms"), 3),
        "step_time_kept_over_default_per_round": [round(k["step_ms"] / d["step_ms"], 3)
                                                  for k, d in zip(runs["keep"], runs["default"], strict=True)],
        "load_average_1min": load_average_1min(load_before),
    }
    shown = [k for k in result if k not in ("default", "keep")] + ["command"]
    return write_result(args.out, result, "page_faults.py", shown)


if __name__ == "__main__":
    sys.exit(main())
