"""Distributed training throughput on this machine's CPUs: ``zoo train`` in one process against the same run
as two ranks under torchrun (``--nproc-per-node 2``, gloo, DistributedDataParallel), with the same model,
data and effective batch (one process of ``2B`` against two ranks of ``B``).

Both sides use every core: the single process runs torch's default of one thread per core; each rank gets
an equal share (``OMP_NUM_THREADS`` = cores / ranks, what ``zoo train --nproc-per-node`` sets). A third
configuration, one process on one thread, separates what the ranks gain from splitting the work from what
they gain by not sharing one process's threads. The figure is
what the runs record for each epoch: training images of all ranks over the slowest rank's epoch time
(data loading and validation excluded); epoch 1 is a warm-up and is left out, and a round's figure is the
median of the others. The configurations alternate for ``--rounds`` rounds, each run started once the CPUs
have been idle for a few seconds (``benchmarks/idle.py``), and the machine's load is recorded with every run.

    python benchmarks/ddp_throughput.py                       # simplecnn, synthetic 32x32, 3 rounds
    python benchmarks/ddp_throughput.py --model improvedcnn --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def one_run(args: argparse.Namespace, ranks: int, threads: int | None, home: Path, tag: str) -> dict[str, Any]:
    """One ``zoo train`` (under torchrun when ``ranks`` > 1); its per-epoch images/s and the load around it."""
    from idle import busy_fraction, wait_until_idle

    batch = args.batch_size // ranks
    cmd = [sys.executable, "-m", "zoo_core", "train", args.model, "--dataset", "synthetic",
           "--data-opt", f"train_size={args.train_size}", "--data-opt", "test_size=500", "--data-opt", "image_size=32",
           "--epochs", str(args.epochs), "--batch-size", str(batch), "--val-fraction", "0", "--tag", tag,
           "--device", "cpu", "--json"]  # fmt: skip
    if ranks > 1:
        cmd += ["--nproc-per-node", str(ranks)]
    waited = wait_until_idle(max_wait=args.max_idle_wait)
    busy = busy_fraction(1.0)
    load = os.getloadavg()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # torch's or zoo's own choice
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**env, "ZOO_HOME": str(home)}, check=False)
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"ddp_throughput: {shlex.join(cmd[1:])} failed:\n{done.stderr[-2000:]}")
    training = json.loads(done.stdout)["training"]
    rates = [h["images_per_s"] for h in training["history"][1:]]
    return {"images_per_s": round(statistics.median(rates), 1), "epochs_images_per_s": rates,
            "torch_threads_rank0": training["environment"]["cpu_threads"],
            "wall_s": round(wall, 1), "cpu_busy_before": None if busy is None else round(busy, 3),
            "load_avg_before": [round(v, 2) for v in load], "load_avg_after": [round(v, 2) for v in os.getloadavg()],
            "waited_for_idle_s": round(waited, 1)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="simplecnn")
    parser.add_argument("--batch-size", type=int, default=128, help="effective batch (default 128)")
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=4000, help="synthetic training images (default 4000)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run, the first one a warm-up")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-idle-wait", type=float, default=120.0, help="seconds to wait for idle CPUs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ddp_throughput.json")
    args = parser.parse_args(argv)
    if args.epochs < 2 or args.batch_size % args.ranks:
        parser.error("--epochs must be at least 2 and --batch-size divisible by --ranks")

    from provenance import recorded_command

    from zoo_core.atomic_io import atomic_write_json
    from zoo_core.environment import environment

    cores = os.cpu_count() or 1
    configs = {
        "one_process": {"ranks": 1, "batch_size_per_rank": args.batch_size, "threads_per_rank": cores},
        "one_process_one_thread": {"ranks": 1, "batch_size_per_rank": args.batch_size, "threads_per_rank": 1},
        f"{args.ranks}_ranks": {"ranks": args.ranks, "batch_size_per_rank": args.batch_size // args.ranks,
                                "threads_per_rank": max(1, cores // args.ranks)},
    }  # fmt: skip
    forced = {"one_process_one_thread": 1}  # the others: torch's default, or zoo's share per rank
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in configs}
    with tempfile.TemporaryDirectory(prefix="zoo-ddp-bench-") as tmp:
        for r in range(args.rounds):
            order = list(configs) if r % 2 == 0 else list(reversed(configs))
            for name in order:
                run = one_run(args, configs[name]["ranks"], forced.get(name), Path(tmp) / f"{name}-{r}", f"bench{r}")
                rounds[name].append(run)
                print(f"round {r + 1}: {name:<22} {run['images_per_s']:>8,.1f} images/s  (cpu busy before "
                      f"{run['cpu_busy_before']}, load {run['load_avg_before'][0]})", file=sys.stderr)  # fmt: skip
    results = {}
    for name, runs in rounds.items():
        results[name] = {**configs[name], "effective_batch_size": args.batch_size,
                         "images_per_s": round(statistics.median(r["images_per_s"] for r in runs), 1),
                         "rounds": runs}  # fmt: skip
    base = results["one_process"]["images_per_s"]
    for row in results.values():
        row["speedup_vs_one_process"] = round(row["images_per_s"] / base, 2)
    record = {
        "benchmark": "ddp_throughput",
        "command": recorded_command("ddp_throughput.py", sys.argv[1:] if argv is None else argv),
        "model": args.model,
        "dataset": f"synthetic 3x32x32, {args.train_size} training images",
        "epochs": args.epochs,
        "measure": "median over epochs 2.. of (images of all ranks / slowest rank's epoch seconds); median of rounds",
        "environment": {**environment("cpu"), "precision": "fp32", "backend": "gloo"},
        "results": results,
    }  # fmt: skip
    atomic_write_json(args.out, record)
    print(json.dumps({k: {"images_per_s": v["images_per_s"], "speedup": v["speedup_vs_one_process"]}
                      for k, v in results.items()}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
