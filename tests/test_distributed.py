"""`zoo train` under torchrun, on CPUs with gloo: two ranks of batch B learn what one process of batch 2B
learns, evaluation is exact on a split that does not divide by two, only rank 0 writes, two "machines" on
loopback meet through a c10d rendezvous, a killed rank ends the job in one line, and the job resumes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import free_port
from safetensors.torch import load_file
from test_train import _wait_for
from zoo_registry import store
from zoo_train.evaluation import evaluate_published

import zoo_core
from zoo_core import plugins
from zoo_core.cli import main
from zoo_core.datasets import Split, batches, num_batches, shard_indices
from zoo_core.paths import runs_dir

# A model with neither batch norm nor dropout, so two ranks and one process compute the same thing; a trainer
# that is the classifier plus a dump of every rank's weights; and one that forgets to average gradients.
PROBE = '''
import os

from zoo_core import hookimpl


def build_flatnet(num_classes=4, in_chans=3):
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(in_chans, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(24, num_classes))


def build_bnnet(num_classes=4, in_chans=3):
    import torch.nn as nn

    return nn.Sequential(nn.Conv2d(in_chans, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                         nn.Flatten(), nn.Linear(24, num_classes))


def dumping(job):
    from safetensors.torch import save_file
    from zoo_train.loop import train_classifier

    result = train_classifier(job)
    weights = {k: v.detach().cpu().contiguous() for k, v in job.model.state_dict().items()}
    save_file(weights, os.path.join(os.environ["PROBE_DUMP"], f"rank{job.rank}.safetensors"))
    return result


def unsynced(job):
    import torch
    from zoo_core.datasets import batches

    optimizer = torch.optim.SGD(job.params, lr=0.1)
    job.train_mode()
    for images, labels in batches(job.train, 16, shuffle=True, generator=torch.Generator().manual_seed(0),
                                  rank=job.rank, world_size=job.world_size):
        loss = torch.nn.functional.cross_entropy(job.model(job.train_pipeline(images, train=True)), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"epochs": 1}


@hookimpl
def zoo_register_models(register):
    register("flatnet", build_flatnet, family="probe", description="conv, relu, pool, linear",
             input_size=(3, 8, 8), num_classes=4)
    register("bnnet", build_bnnet, family="probe", description="conv, batch norm, relu, pool, linear",
             input_size=(3, 8, 8), num_classes=4)


@hookimpl
def zoo_register_trainers(register):
    register("dumping", dumping, description="classifier, then each rank's weights to $PROBE_DUMP",
             distributed=True)
    register("unsynced", unsynced, description="trains each rank on its own", distributed=True)
'''


def synthetic(**sizes: int) -> list[str]:
    options = {"num_classes": 4, "image_size": 8, **sizes}
    return ["--dataset", "synthetic", *[w for k, v in options.items() for w in ("--data-opt", f"{k}={v}")]]


def zoo(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``zoo ARGS`` in a fresh process, the way a user runs it."""
    return subprocess.run([sys.executable, "-m", "zoo_core", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)  # fmt: skip


@pytest.fixture
def probe(plugin_path) -> None:
    plugin_path("zoo-probe", "probe", "zoo_ddp_probe", PROBE)


# -- sharding (no processes) ---------------------------------------------------------------------------


def test_two_shards_of_batch_b_are_the_batches_of_2b_and_every_rank_steps_alike() -> None:
    split = Split(torch.arange(23, dtype=torch.uint8).view(23, 1, 1, 1).expand(23, 2, 2, 1).contiguous(),
                  torch.arange(23))  # fmt: skip
    whole = [labels for _, labels in batches(split, 8, shuffle=True, generator=torch.Generator().manual_seed(3))]
    shares = [[labels for _, labels in batches(split, 4, shuffle=True, generator=torch.Generator().manual_seed(3),
                                               rank=r, world_size=2)] for r in range(2)]  # fmt: skip
    assert len(shares[0]) == len(shares[1]) == num_batches(split, 4, train=True, world_size=2) == 3
    for i, full in enumerate(whole[:2]):  # full batches: the two shares together are the batch of 2B
        assert sorted(torch.cat([shares[0][i], shares[1][i]]).tolist()) == sorted(full.tolist())
    dealt = torch.cat([torch.cat(s) for s in shares])
    assert len(dealt) == 24 and set(dealt.tolist()) == set(range(23))  # 23 padded to 24 by one repeat
    # Evaluation's shares do not pad: every sample exactly once.
    parts = [shard_indices(23, r, 2) for r in range(2)]
    assert sorted(torch.cat(parts).tolist()) == list(range(23)) and [len(p) for p in parts] == [12, 11]
    # A new epoch (another seed) deals another order.
    again = [labels for _, labels in batches(split, 4, shuffle=True, generator=torch.Generator().manual_seed(4),
                                             rank=0, world_size=2)]  # fmt: skip
    assert torch.cat(again).tolist() != torch.cat(shares[0]).tolist()


# -- options checked before torchrun starts -------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["--nnodes", "2"], "needs --rdzv-endpoint"),
    (["--nnodes", "2", "--rdzv-endpoint", "127.0.0.1"], "HOST:PORT"),
    (["--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"], "--node-rank"),
    (["--nproc-per-node", "0"], "at least 1"),
    (["--nproc-per-node", "2", "--trainer", "unsynced", "--lr", "-1"], "--lr"),
    (["--nproc-per-node", "2", "--sync-bn", "--device", "cpu"], "--sync-bn needs CUDA"),
])  # fmt: skip
def test_launch_options_are_checked_before_torchrun_starts(probe, capsys, args: list[str], message: str) -> None:
    code = main(["train", "flatnet", *synthetic(), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_trainer_that_does_not_declare_distributed_support_is_refused(plugin_path, capsys) -> None:
    from test_train import TRAINER_PLUGIN

    plugin_path("zoo-onepass", "onepass", "zoo_onepass_plugin", TRAINER_PLUGIN)
    code = main(["train", "simplecnn", *synthetic(), "--trainer", "onepass", "--nproc-per-node", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "does not support distributed training" in err and err.count("\n") == 1


def test_a_half_set_torchrun_environment_is_a_one_line_error(monkeypatch, capsys) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    code = main(["train", "simplecnn", *synthetic(), "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "RANK and WORLD_SIZE must be set together" in err and err.count("\n") == 1


# -- real runs: torchrun, gloo, two processes -------------------------------------------------------------


def test_two_ranks_match_one_process_and_evaluate_exactly(probe, tmp_path: Path, monkeypatch, capsys) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    monkeypatch.setenv("PROBE_DUMP", str(dump))
    # 144 training images: 9 full steps of 16, or of 2 x 8; 101 test images (validation too): odd.
    common = ["train", "flatnet", *synthetic(train_size=144, test_size=101), "--epochs", "2", "--optimizer", "sgd",
              "--lr", "0.05", "--val-fraction", "0", "--trainer", "dumping"]  # fmt: skip
    assert main([*common, "--batch-size", "16", "--tag", "single"]) == 0, capsys.readouterr().err
    (dump / "rank0.safetensors").rename(dump / "single.safetensors")

    run = zoo(*common, "--batch-size", "8", "--tag", "ddp", "--nproc-per-node", "2")
    assert run.returncode == 0, run.stderr
    rank0, rank1 = load_file(dump / "rank0.safetensors"), load_file(dump / "rank1.safetensors")
    single = load_file(dump / "single.safetensors")
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), f"{name} differs between the ranks"
        assert torch.allclose(value, single[name], rtol=1e-4, atol=1e-6), f"{name}: 2 x 8 is not 1 x 16"

    plugins.reset()  # the registry changed under this process
    ddp, one = store.get("flatnet", "ddp"), store.get("flatnet", "single")
    published = load_file(ddp.path / "model.safetensors")
    assert all(torch.equal(published[k], rank0[k]) for k in rank0)  # rank 0 published what the ranks agree on
    m, training = ddp.metrics, ddp.config["training"]
    assert training["batch_size"] == 8 and training["world_size"] == 2 and training["effective_batch_size"] == 16
    assert training["distributed"]["world_size"] == 2 and training["distributed"]["backend"] == "gloo"
    assert training["command"].endswith("--nproc-per-node 2")  # the command the user typed
    # Exact evaluation: all 101 images once each, as one process counts them.
    report = evaluate_published("flatnet.ddp", "synthetic", device="cpu",
                                data_options={"num_classes": 4, "image_size": 8, "train_size": 144,
                                              "test_size": 101})  # fmt: skip
    assert m["num_samples"] == report["num_samples"] == 101
    assert (m["top1"], m["top5"], m["per_class_top1"]) == (report["top1"], report["top5"], report["per_class_top1"])
    assert m["top1"] == one.metrics["top1"] and m["per_class_top1"] == one.metrics["per_class_top1"]
    ddp_val = [h["val_top1"] for h in training["history"]]
    assert ddp_val == [h["val_top1"] for h in one.config["training"]["history"]]
    # Progress and the result once (rank 0), not once per rank.
    assert [ln.split()[1] for ln in run.stderr.splitlines() if ln.startswith("epoch")] == ["1", "2"]
    assert run.stdout.count("published flatnet.ddp") == 1
    run_dir = runs_dir() / "probe-flatnet-ddp"
    assert sorted(p.name for p in run_dir.iterdir()) == ["run.json"]  # the checkpoint went to the registry
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_a_trainer_that_does_not_average_gradients_publishes_nothing(probe) -> None:
    run = zoo("train", "flatnet", *synthetic(train_size=64, test_size=16), "--trainer", "unsynced", "--tag", "drift",
              "--nproc-per-node", "2")  # fmt: skip
    errors = [ln for ln in run.stderr.splitlines() if ln.startswith("zoo: error:")]
    assert run.returncode == 1 and len(errors) == 1 and "different weights on different ranks" in errors[0], run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads((runs_dir() / "probe-flatnet-drift" / "run.json").read_text())["status"] == "failed"
    with pytest.raises(zoo_core.UnknownNameError):
        store.get("flatnet", "drift")


def test_two_machines_on_loopback_train_and_publish_once(probe, tmp_path: Path, monkeypatch) -> None:
    homes = [tmp_path / "machine0", tmp_path / "machine1"]  # no shared ZOO_HOME: only rank 0 may write
    # 101 training images: the ranks' shares are padded to 51 each. Batch norm: each rank's statistics are
    # its own share's until they are averaged; evaluated on shards, they must agree with one process.
    args = ["train", "bnnet", *synthetic(train_size=101, test_size=51), "--epochs", "1", "--batch-size", "8",
            "--tag", "loop", "--trainer", "dumping", "--nproc-per-node", "1", "--nnodes", "2",
            "--rdzv-endpoint", f"127.0.0.1:{free_port()}"]  # fmt: skip
    dump = tmp_path / "dump"
    dump.mkdir()
    procs = [subprocess.Popen([sys.executable, "-m", "zoo_core", *args, "--node-rank", str(i)], text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env={**os.environ, "ZOO_HOME": str(home), "PROBE_DUMP": str(dump)})  # fmt: skip
             for i, home in enumerate(homes)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(f"-- machine {i}:\n{out}{err}"
                                                             for i, (out, err) in enumerate(outputs))  # fmt: skip
    rank0, rank1 = load_file(dump / "rank0.safetensors"), load_file(dump / "rank1.safetensors")
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0), "weights or batch-norm statistics differ"
    assert not torch.equal(rank0["1.running_var"], torch.ones(6))  # statistics gathered, then averaged
    written = [home for home in homes if home.exists() and any(home.rglob("*"))]
    assert len(written) == 1, "exactly one machine (the one with rank 0) wrote the run and the registry entry"
    files = sorted(str(p.relative_to(written[0])) for p in written[0].rglob("*") if p.is_file())
    assert [f for f in files if not f.startswith(("registry/.locks", "runs/.locks", "registry/.weights/"))] == [
        "registry/probe/bnnet/loop/tag.json", "registry/probe/bnnet/loop/v1/README.md",
        "registry/probe/bnnet/loop/v1/config.json", "registry/probe/bnnet/loop/v1/metrics.json",
        "registry/probe/bnnet/loop/v1/model.safetensors", "runs/probe-bnnet-loop/run.json"]  # fmt: skip
    assert sum(out.count("published bnnet.loop") for out, _ in outputs) == 1

    monkeypatch.setenv("ZOO_HOME", str(written[0]))
    plugins.reset()
    entry = store.get("bnnet", "loop")
    distributed = entry.config["training"]["distributed"]
    assert (distributed["world_size"], distributed["nodes"]) == (2, 2)
    report = evaluate_published("bnnet.loop", "synthetic", device="cpu",
                                data_options={"num_classes": 4, "image_size": 8, "train_size": 101,
                                              "test_size": 51})  # fmt: skip
    assert report["top1"] == entry.metrics["top1"] and report["num_samples"] == entry.metrics["num_samples"] == 51


def _worker_pid(launcher: int, rank: int) -> int | None:
    """The pid of the torchrun worker of ``rank`` started by ``launcher`` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
def test_a_killed_rank_ends_the_job_in_one_line_and_the_job_resumes(probe, capsys) -> None:
    run_dir = runs_dir() / "probe-flatnet-killed"
    checkpoint = run_dir / "checkpoint.safetensors"
    args = ["train", "flatnet", *synthetic(train_size=1600, test_size=40), "--epochs", "4", "--batch-size", "8",
            "--tag", "killed", "--nproc-per-node", "2"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "zoo_core", *args], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=os.environ.copy())  # fmt: skip
    _wait_for(checkpoint, proc, timeout=240)
    victim = _worker_pid(proc.pid, 1)
    assert victim is not None, "no rank 1 worker found"
    os.kill(victim, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, f"the run ended before rank 1 could be killed:\n{err}"
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"zoo: error: rank 1 (local rank 1, pid {victim}) was killed by SIGKILL"), err
    assert "--resume" in last and "Traceback" not in err
    from safetensors import safe_open

    with safe_open(str(checkpoint), "pt") as f:
        done = json.loads(f.metadata()["zoo_checkpoint"])["epoch"]
    assert 1 <= done < 4
    code = main([*args[:-2], "--resume"])  # one process cannot continue what two started: another batch
    assert code == 2 and "resume it with 2" in capsys.readouterr().err

    resumed = zoo(*args[:-2], "--resume", "--nproc-per-node", "2")  # the same command, --resume
    assert resumed.returncode == 0, resumed.stderr
    assert f"continuing after epoch {done}" in resumed.stderr
    assert [int(ln.split()[1]) for ln in resumed.stderr.splitlines() if ln.startswith("epoch")] == \
        list(range(done + 1, 5))  # fmt: skip
    plugins.reset()
    entry = store.get("flatnet", "killed")
    assert [h["epoch"] for h in entry.config["training"]["history"]] == [1, 2, 3, 4]
    assert entry.config["training"]["resumed_with"] and entry.metrics["num_samples"] == 40


def test_a_process_whose_peers_never_come_gives_up_after_the_timeout() -> None:
    env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port())}  # rank 1 never starts
    began = time.monotonic()
    run = zoo("train", "simplecnn", *synthetic(), "--epochs", "1", "--dist-timeout", "2", env=env, timeout=120)
    assert run.returncode == 1 and run.stderr.count("\n") == 1, run.stderr
    assert run.stderr.startswith("zoo: error: rank 0: could not form the process group of 2 at 127.0.0.1:")
    assert time.monotonic() - began < 60 and not runs_dir().exists()  # nothing was started, nothing written


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the worker processes through /proc")
def test_a_hung_rank_ends_the_job_after_the_timeout(probe) -> None:
    checkpoint = runs_dir() / "probe-flatnet-hung" / "checkpoint.safetensors"
    proc = subprocess.Popen([sys.executable, "-m", "zoo_core", "train", "flatnet", *synthetic(train_size=1600),
                             "--epochs", "4", "--batch-size", "8", "--tag", "hung", "--nproc-per-node", "2",
                             "--dist-timeout", "3"], text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    _wait_for(checkpoint, proc, timeout=240)
    victim = _worker_pid(proc.pid, 1)
    assert victim is not None, "no rank 1 worker found"
    os.kill(victim, signal.SIGSTOP)  # alive, holding its sockets open, answering nothing
    try:
        _, err = proc.communicate(timeout=180)  # the timeout, then torchrun's grace period before SIGKILL
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    errors = [ln for ln in err.splitlines() if ln.startswith("zoo: error:")]
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert any(ln.startswith("zoo: error: rank 0: lost contact") and "Timed out" in ln for ln in errors), err
