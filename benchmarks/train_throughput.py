"""Training throughput: the classic tutorial loop against zoo's input pipeline, on the same images.

The tutorial loop: torchvision ImageFolder + ToTensor/Normalize + DataLoader(num_workers=2, shuffle)
feeding SimpleCNN with Adam 1e-3 and cross-entropy (fp32, contiguous tensors, loss.item() every step).
zoo: the same model, optimizer and batch size fed from the decode-once uint8 cache, normalised as a batch,
in channels_last (fp32), through the ``classifier`` trainer's own ``TrainStep``; and with bf16 autocast
where the CPU does bf16 natively. Each configuration runs ``--warmup`` steps, then is timed over
``--steps`` steps; configurations alternate for ``--rounds`` rounds and the median round is reported.

``--accuracy-epochs N`` checks the other half of the claim, the same accuracy: it trains the tutorial loop
and ``zoo train simplecnn`` (default recipe, no validation hold-out, so both see all 50,000 images) for N
epochs each and evaluates both on the test set (written to ``train_accuracy.json``).

The CIFAR-10 copy (ImageFolder layout: ``train/<class>/*.jpg``, ``test/<class>/*.jpg``) comes from
``--data-dir DIR``, else ``$ZOO_DATA/cifar10``. Results record it as ``$ZOO_DATA/...`` or relative to the
repository, never as a path of the machine they were made on.

    ZOO_DATA=/path/to/data python benchmarks/train_throughput.py
    python benchmarks/train_throughput.py --data-dir path/to/cifar10 --accuracy-epochs 10
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from provenance import recorded_command, recorded_path

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
NO_DATA = ("train_throughput: CIFAR-10 not found{where}: pass --data-dir DIR or set ZOO_DATA "
           "(a folder holding cifar10/{{train,test}}/<class>/*.jpg)")  # fmt: skip




def tutorial_loader(folder: Path, batch_size: int, workers: int, shuffle: bool = True) -> Any:
    """The tutorial's input pipeline: ImageFolder + ToTensor/Normalize + DataLoader."""
    import torchvision.transforms as T
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    transform = T.Compose([T.ToTensor(), T.Normalize(CIFAR10_MEAN, CIFAR10_STD)])
    return DataLoader(ImageFolder(str(folder), transform), batch_size=batch_size, shuffle=shuffle,
                      num_workers=workers)  # fmt: skip


def tutorial_model() -> tuple[Any, Any, Any]:
    """The tutorial's SimpleCNN (seed 0), Adam 1e-3 and cross-entropy."""
    import torch
    from zoo_cnn.models import SimpleCNN

    torch.manual_seed(0)
    model = SimpleCNN()
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), torch.nn.CrossEntropyLoss()


def tutorial_loop(train_dir: Path, batch_size: int, warmup: int, steps: int, workers: int) -> float:
    """images/s of the tutorial's loop over ``steps`` steps after ``warmup``."""
    loader = tutorial_loader(train_dir, batch_size, workers)
    model, optimizer, criterion = tutorial_model()
    model.train()
    running_loss, seen, began = 0.0, 0, 0.0
    for i, (images, labels) in enumerate(loader):
        if i == warmup:
            began, seen = time.perf_counter(), 0
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()
        seen += labels.shape[0]
        if i + 1 == warmup + steps:
            break
    else:
        raise SystemExit(f"only {i + 1} batches in {train_dir}; lower --warmup/--steps")
    return seen / (time.perf_counter() - began)


def tutorial_accuracy(data_dir: Path, batch_size: int, epochs: int, workers: int) -> dict[str, Any]:
    """Train the tutorial loop for ``epochs`` full epochs, then its test top-1 (%)."""
    import torch

    train = tutorial_loader(data_dir / "train", batch_size, workers)
    test = tutorial_loader(data_dir / "test", 256, workers, shuffle=False)
    model, optimizer, criterion = tutorial_model()
    began = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        for images, labels in train:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
        print(f"tutorial epoch {epoch + 1}: last loss {loss.item():.3f}", flush=True)
    train_s = time.perf_counter() - began
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for images, labels in test:
            correct += int((model(images).argmax(1) == labels).sum())
            total += labels.shape[0]
    return {"test_top1": round(100 * correct / total, 2), "train_time_s": round(train_s, 1),
            "images_per_s": round(epochs * len(train.dataset) / train_s, 1)}  # fmt: skip


def zoo_accuracy(data_dir: Path, batch_size: int, epochs: int) -> dict[str, Any]:
    """``zoo train simplecnn`` with its defaults for ``epochs`` epochs, published to a throw-away ZOO_HOME."""
    import tempfile

    from zoo_train.training import train

    from zoo_core.paths import cache_dir

    os.environ.setdefault("ZOO_CACHE", str(cache_dir()))  # keep the decoded dataset cache
    with tempfile.TemporaryDirectory() as home:
        os.environ["ZOO_HOME"] = home
        outcome = train("simplecnn", "cifar10", data_dir=str(data_dir), epochs=epochs, batch_size=batch_size,
                        val_fraction=0.0, tag=f"accuracy-{epochs}")  # fmt: skip
    return {"test_top1": outcome.metrics["top1"], "train_time_s": outcome.metrics["train_time_s"],
            "images_per_s": outcome.metrics["train_images_per_s"]}  # fmt: skip


def provenance(argv: list[str] | None, precision: str) -> dict[str, Any]:
    """The environment and command every record of this script carries."""
    from zoo_core.environment import environment

    env = {**environment("cpu"), "precision": precision}
    args = argv if argv is not None else sys.argv[1:]
    return {"environment": env,
            "command": recorded_command("train_throughput.py", args)}  # fmt: skip


def accuracy(args: argparse.Namespace, argv: list[str] | None) -> int:
    import torch

    from zoo_core.atomic_io import atomic_write_json

    torch.set_num_threads(args.threads)
    results = {"tutorial": tutorial_accuracy(args.data_dir, args.batch_size, args.accuracy_epochs, args.workers),
               "zoo": zoo_accuracy(args.data_dir, args.batch_size, args.accuracy_epochs)}  # fmt: skip
    record = {
        "benchmark": "train_accuracy",
        "model": "cnn:simplecnn",
        "recipe": "Adam 1e-3, cross-entropy, no augmentation, all 50,000 training images, seed 0",
        "dataset": recorded_path(args.data_dir),
        "batch_size": args.batch_size,
        "epochs": args.accuracy_epochs,
        "results": results,
        "test_top1_difference": round(results["zoo"]["test_top1"] - results["tutorial"]["test_top1"], 2),
        **provenance(argv, "fp32"),
    }
    for name, r in results.items():
        print(f"{name:<10} test top-1 {r['test_top1']:.2f}%  {r['images_per_s']:,.0f} img/s  {r['train_time_s']:.0f}s")
    out = args.out.with_name("train_accuracy.json")
    atomic_write_json(out, record)
    print(f"wrote {out}")
    return 0


def zoo_loop(split: Any, batch_size: int, warmup: int, steps: int, precision: str, channels_last: bool,
             augment: str = "none") -> float:  # fmt: skip
    """images/s of zoo's pipeline + the classifier trainer's step, as ``zoo train`` runs them."""
    import torch
    from zoo_train.loop import LOG_EVERY, TrainStep, make_optimizer
    from zoo_train.pipeline import BatchPipeline
    from zoo_train.training import TrainConfig

    from zoo_core.datasets import batches
    from zoo_core.models import create_model

    device = torch.device("cpu")
    torch.manual_seed(0)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = create_model("simplecnn").to(memory_format=memory_format)
    model.train()
    config = TrainConfig(model="simplecnn", dataset="cifar10")
    pipeline = BatchPipeline(mean=CIFAR10_MEAN, std=CIFAR10_STD, size=(32, 32), channels=3, augment=augment,
                             device=device, channels_last=channels_last)  # fmt: skip
    step = TrainStep(model, make_optimizer(config, list(model.parameters())), pipeline, device, precision)
    generator = torch.Generator().manual_seed(0)
    seen, began, total = 0, 0.0, torch.zeros(())
    it = iter(())
    for i in range(warmup + steps):
        if i == warmup:
            began, seen = time.perf_counter(), 0
        batch = next(it, None)
        if batch is None:
            it = batches(split, batch_size, shuffle=True, generator=generator)
            batch = next(it)
        images, labels = batch
        loss, _ = step(images, labels, generator)
        total += loss
        if (i + 1) % LOG_EVERY == 0:
            float(total)  # the trainer reads the loss this often (its NaN check)
        seen += labels.shape[0]
    return seen / (time.perf_counter() - began)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="CIFAR-10 in ImageFolder layout (default: $ZOO_DATA/cifar10)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the tutorial loop")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch threads")
    parser.add_argument("--max-idle-wait", type=float, default=300.0,
                        help="seconds to wait for the CPUs to go quiet before each measurement")
    parser.add_argument("--accuracy-epochs", type=int, default=0,
                        help="instead: train both loops this many epochs and compare test accuracy")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_throughput.json")
    args = parser.parse_args(argv)
    if args.data_dir is None and os.environ.get("ZOO_DATA"):
        args.data_dir = Path(os.environ["ZOO_DATA"]).expanduser() / "cifar10"
    splits = ("train", "test") if args.accuracy_epochs else ("train",)
    if args.data_dir is None or not all((args.data_dir / split).is_dir() for split in splits):
        print(NO_DATA.format(where=f" at {args.data_dir}" if args.data_dir else ""), file=sys.stderr)
        return 2
    if args.accuracy_epochs:
        return accuracy(args, argv)

    import torch
    from idle import wait_until_idle

    from zoo_core.atomic_io import atomic_write_json
    from zoo_core.datasets import load_dataset

    torch.set_num_threads(args.threads)
    began = time.perf_counter()
    data = load_dataset("cifar10", args.data_dir)
    cache_s = time.perf_counter() - began
    cache_state = "loaded from the cache" if "cache" in data.source else "decoded (first run) and cached"
    print(f"dataset: {len(data.split('train'))} training images {cache_state} in {cache_s:.1f}s")
    bf16 = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    configs: dict[str, Any] = {
        "tutorial": lambda: tutorial_loop(args.data_dir / "train", args.batch_size, args.warmup, args.steps,
                                          args.workers),  # fmt: skip
        "zoo_fp32_channels_last": lambda: zoo_loop(data.split("train"), args.batch_size, args.warmup, args.steps,
                                                   "fp32", True),  # fmt: skip
        "zoo_fp32_contiguous": lambda: zoo_loop(data.split("train"), args.batch_size, args.warmup, args.steps,
                                                "fp32", False),  # fmt: skip
        "zoo_fp32_channels_last_standard_augment": lambda: zoo_loop(
            data.split("train"), args.batch_size, args.warmup, args.steps, "fp32", True, "standard"),
    }  # fmt: skip
    if bf16:
        configs["zoo_bf16_channels_last"] = lambda: zoo_loop(data.split("train"), args.batch_size, args.warmup,
                                                             args.steps, "bf16", True)  # fmt: skip
    rounds: dict[str, list[float]] = {name: [] for name in configs}
    for r in range(args.rounds):
        for name, run in configs.items():
            wait_until_idle(args.max_idle_wait)  # a shared box: don't measure someone else's job
            rounds[name].append(round(run(), 1))
            print(f"round {r + 1}  {name:<42} {rounds[name][-1]:>8,.0f} img/s", flush=True)
    results = {name: {"images_per_s": statistics.median(v), "rounds": v} for name, v in rounds.items()}
    base = results["tutorial"]["images_per_s"]
    for r in results.values():
        r["speedup_vs_tutorial"] = round(r["images_per_s"] / base, 2)
    record = {
        "benchmark": "train_throughput",
        "model": "cnn:simplecnn",
        "dataset": recorded_path(args.data_dir),
        "batch_size": args.batch_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "rounds": args.rounds,
        "tutorial_workers": args.workers,
        "results": results,
        "bf16": "autocast bf16 measured" if bf16 else "skipped: this CPU has no native bf16 (AVX512-BF16/AMX); "
        "torch would emulate it several times slower than fp32",
        "dataset_load_s": round(cache_s, 1),
        "dataset_load": cache_state,
        **provenance(argv, "fp32" + (", bf16" if bf16 else "")),
    }
    print()
    for name, r in results.items():
        print(f"{name:<42} {r['images_per_s']:>8,.0f} img/s  x{r['speedup_vs_tutorial']:.2f}  rounds {r['rounds']}")
    print(f"environment: {record['environment']['device_name']}, {record['environment']['cpu_count']} CPUs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch_size}")  # fmt: skip
    atomic_write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
