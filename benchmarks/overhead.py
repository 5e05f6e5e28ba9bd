"""Is the runner's own overhead out of the figure? A hand-written tight loop against `zoo benchmark`.

    python benchmarks/overhead.py        # simplecnn b64 (short steps) and resnet18 b16 on the CPU

The tight loop is the least a benchmark can do: build the model the same way, warm up, then
``perf_counter(); model(x); perf_counter()`` under ``torch.inference_mode``, and take batch / median
step. The runner (``zoo_bench.measure.measure``, what `zoo benchmark` runs) gets the same model and
settings. Both run in this process, in many short rounds that alternate which goes first, so a burst
of someone else's work on a shared machine hits both alike; each side's figure is the median over
rounds. The tight loop must not be more than 3% faster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from provenance import recorded_command

HERE = Path(__file__).resolve().parent
LIMIT = 0.03



def tight_loop(model_name: str, batch: int, warmup: int, iters: int) -> float:
    """Samples/s of the plainest possible timed loop (batch / median step)."""
    import torch

    from zoo_core import create_model
    from zoo_core.models import resolve

    model = create_model(model_name).eval()
    x = torch.randn(batch, *resolve(model_name)[0].input_size)
    steps = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(iters):
            t0 = time.perf_counter()
            model(x)
            steps.append(time.perf_counter() - t0)
    return batch / statistics.median(steps)


def runner(model_name: str, batch: int, warmup: int, iters: int) -> tuple[float, dict[str, Any]]:
    """Samples/s as `zoo benchmark --device cpu` measures it, and its environment."""
    from zoo_bench.measure import measure
    from zoo_bench.settings import BenchSettings

    settings = BenchSettings(device="cpu", batch_size=batch, warmup=warmup, iters=iters,
                             command="python benchmarks/overhead.py")  # fmt: skip
    record = measure(model_name, settings)
    if record["error"]:
        raise SystemExit(f"{model_name}: {record['error']}")
    return record["infer"]["samples_per_sec"], record["environment"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["simplecnn:64:40", "resnet18:16:5"], metavar="NAME:BATCH:ITERS")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--wait-idle", type=float, default=60, metavar="SECONDS",
                   help="before each model, wait up to this long for the CPUs to go quiet")  # fmt: skip
    p.add_argument("--out", default=str(HERE / "results" / "overhead.json"))
    a = p.parse_args()
    from idle import wait_until_idle

    command = recorded_command("overhead.py", sys.argv[1:])
    results: dict[str, Any] = {"limit": LIMIT, "rounds": a.rounds, "warmup": a.warmup, "models": {},
                               "command": command}  # fmt: skip
    for item in a.models:
        name, batch, iters = item.split(":")
        wait_until_idle(a.wait_idle)  # a shared machine: start when others' work has stopped
        tight, ours = [], []
        for i in range(a.rounds):
            for who in ("tight", "runner") if i % 2 == 0 else ("runner", "tight"):
                if who == "tight":
                    tight.append(tight_loop(name, int(batch), a.warmup, int(iters)))
                else:
                    sps, results["environment"] = runner(name, int(batch), a.warmup, int(iters))
                    ours.append(sps)
            print(f"{name} round {i + 1}: tight {tight[-1]:.1f}, runner {ours[-1]:.1f} samples/s", file=sys.stderr)
        t, r = statistics.median(tight), statistics.median(ours)
        results["models"][name] = {
            "batch_size": int(batch), "iters": int(iters),
            "tight_samples_per_sec": round(t, 2), "runner_samples_per_sec": round(r, 2),
            "tight_faster_by": round(t / r - 1, 4), "ok": t / r - 1 <= LIMIT,
            "rounds": {"tight": [round(v, 2) for v in tight], "runner": [round(v, 2) for v in ours]},
        }  # fmt: skip
    from zoo_core.atomic_io import atomic_write_json

    atomic_write_json(a.out, results)
    for name, m in results["models"].items():
        print(f"{name:12s} b{m['batch_size']:<4d} tight {m['tight_samples_per_sec']:>9.1f}  runner "
              f"{m['runner_samples_per_sec']:>9.1f} samples/s  tight faster by {m['tight_faster_by']:+.1%}  "
              f"{'ok' if m['ok'] else 'OVER 3%'}")  # fmt: skip
    sys.exit(0 if all(m["ok"] for m in results["models"].values()) else 1)


if __name__ == "__main__":
    main()
