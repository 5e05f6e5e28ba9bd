"""Does `torch.compile` pay for itself in `cifar10-fast`? Eager against compiled training steps of FastCNN,
as the fast trainer takes them, and what each would cost over the whole recipe.

    python benchmarks/compile_step.py [--steps 4] [--recipe cifar10-fast] [--out FILE]

Each measurement is a fresh process: FastCNN (channels_last, whitening frozen), MuonSGD (Muon for the
filters, SGD for the rest, as in the recipe), the recipe's batch size and precision (bf16 autocast where the
CPU has it), random inputs and labels. It times the first step at each input side the recipe trains on (its
early windows, then whole images; for the compiled model that step includes the compilation) and then
``--steps`` more (their median). Compiled runs come twice: with an empty Inductor cache (a user's first run)
and again with the cache the first left (every later run on that machine). The test after training runs
eagerly either way.

The projection for the whole recipe: the recipe's steps at each side times the median step, plus, for the
compiled model, what its first steps took over a median step. Written to benchmarks/results/compile_step.json
with the environment and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from provenance import load_average_1min, write_result

HERE = Path(__file__).resolve().parent
STEPS = """
import json, sys, time
import torch
from zoo_core.devices import autocast, keep_freed_cpu_memory
from zoo_train.fastnet import build
from zoo_train.muon import MuonSGD

mode, precision, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sides = [int(s) for s in sys.argv[5].split(",")]
keep_freed_cpu_memory()
torch.manual_seed(0)
model = build().to(memory_format=torch.channels_last).train()
model.whiten.weight.requires_grad_(False)
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = MuonSGD([{"params": [p for p in trainable if p.ndim == 4], "muon": True},
                     {"params": [p for p in trainable if p.ndim != 4]}], lr=0.01, momentum=0.85)
net = torch.compile(model) if mode == "compiled" else model
labels = torch.randint(0, 10, (batch,))
out = {}
for side in sides:
    x = torch.randn(batch, 3, side, side).contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(steps + 1):
        began = time.perf_counter()
        with autocast("cpu", precision):
            loss = torch.nn.functional.cross_entropy(net(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - began)
    out[side] = {"first_s": times[0], "steps_s": times[1:]}
print(json.dumps(out))
"""


def measure(mode: str, precision: str, batch: int, steps: int, sides: list[int], cache: str) -> dict[str, dict]:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    cmd = [sys.executable, "-c", STEPS, mode, precision, str(batch), str(steps), ",".join(map(str, sides))]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"compile_step: the {mode} process ran over 30 minutes") from None
    if proc.returncode != 0:
        raise SystemExit(f"compile_step: the {mode} process failed:\n{proc.stderr[-2000:]}")
    raw = json.loads(proc.stdout.splitlines()[-1])
    return {side: {"first_s": round(r["first_s"], 2), "median_step_s": round(statistics.median(r["steps_s"]), 3),
                   "steps_s": [round(t, 3) for t in r["steps_s"]]} for side, r in raw.items()}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="cifar10-fast")
    parser.add_argument("--steps", type=int, default=4, help="timed steps after the first, at each input side")
    parser.add_argument("--train-images", type=int, default=50_000, help="the training split's size")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "compile_step.json")
    args = parser.parse_args()
    if args.steps < 1 or args.train_images < 1:
        parser.error("--steps and --train-images must be at least 1")

    import torch
    from zoo_train.recipes import AUTO, auto_precision, get_recipe

    from zoo_core.plugin_api import UsageError

    try:
        recipe = get_recipe(args.recipe).metadata
    except UsageError as e:
        parser.error(str(e))
    if recipe["model"] != "fastcnn" or "batch_size" not in recipe["train"]:
        parser.error(f"recipe {args.recipe} does not train fastcnn at a stated batch size: this measures FastCNN")
    train = recipe["train"]
    precision = train.get("precision", "fp32")
    if precision == AUTO:
        precision = auto_precision(torch.device("cpu"))
    batch, epochs = int(train["batch_size"]), int(train["epochs"])
    per_epoch = args.train_images // batch
    early = int(train.get("early_crop_epochs", 0)) if train.get("early_crop") else 0
    plan = {int(train["early_crop"]): early * per_epoch} if early else {}
    plan[32] = (epochs - early) * per_epoch  # CIFAR-10's whole images
    sides = sorted(plan)

    load_before = os.getloadavg()
    runs: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="zoo-inductor-") as cache:
        for name in ("eager", "compiled_cold_cache", "compiled_warm_cache"):
            runs[name] = measure(name.split("_")[0], precision, batch, args.steps, sides, cache)
            print(f"{name}: {runs[name]}", file=sys.stderr)

    def projected(run: dict) -> dict[str, float]:
        steps = sum(plan[s] * run[str(s)]["median_step_s"] for s in sides)
        extra = sum(run[str(s)]["first_s"] - run[str(s)]["median_step_s"] for s in sides)
        return {"steps_s": round(steps, 1), "first_steps_extra_s": round(extra, 1), "total_s": round(steps + extra, 1)}

    projection = {name: projected(run) for name, run in runs.items()}
    eager = projection["eager"]["total_s"]
    result = {
        "benchmark": "compile_step",
        "recipe": args.recipe,
        "model": "fastcnn",
        "precision": precision,
        "batch_size": batch,
        "recipe_steps_by_input_side": {str(s): plan[s] for s in sides},
        "runs": runs,
        "projected_training_s": projection,
        "compiled_over_eager": {name: round(p["total_s"] / eager, 3) for name, p in projection.items()},
        "load_average_1min": load_average_1min(load_before),
    }
    return write_result(args.out, result, "compile_step.py", ("projected_training_s", "compiled_over_eager"))


if __name__ == "__main__":
    raise SystemExit(main())
