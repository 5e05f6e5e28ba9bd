"""What `zoo push` and `zoo pull` cost for densenet121-size weights (~32 MB) against the loopback Hub-protocol
server of the tests (tests/support/hub_server.py): seconds and MB/s, each the median of fresh runs, next to the bare
huggingface_hub transfer (one `upload_file`, one `hf_hub_download`) so that zoo's own share shows.

A push runs to a new repository each time (the server keeps LFS objects per repository, so the weights are
really sent); a pull runs into an empty ZOO_HOME and an empty Hugging Face cache. Both sides run on this
machine, so the figures are CPU-bound (hashing, copying, the server's Python loop), not network-bound.

    python benchmarks/hub_transfer.py [--runs 3] [--out benchmarks/results/hub_transfer.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from provenance import recorded_command

from zoo_core.atomic_io import atomic_write_json

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_bench_write"



def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="torchvision:densenet121")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hub_transfer.json")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "tests" / "support"))
    from hub_server import HubServer

    server = HubServer(users={TOKEN: ("bench", "write")}).start()
    work = Path(tempfile.mkdtemp(prefix="zoo_hub_bench_"))
    # huggingface_hub reads these when it is imported: set them first
    os.environ.update(HF_ENDPOINT=server.url, HF_TOKEN=TOKEN, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                      HF_HOME=str(work / "hf"), ZOO_HOME=str(work / "zoo"))  # fmt: skip
    os.environ.pop("HF_HUB_OFFLINE", None)
    load_before = os.getloadavg()

    import huggingface_hub
    import torch
    from huggingface_hub import HfApi, hf_hub_download
    from zoo_registry import hub, store

    import zoo_core
    from zoo_core import plugins

    torch.manual_seed(0)
    model = zoo_core.create_model(args.model)  # random weights: nothing is downloaded
    entry = store.publish(model, model_name=args.model, tag="bench", labels=[], model_kwargs={"num_classes": 1000},
                          preprocessing={"input_size": [3, 224, 224]})  # fmt: skip
    size = entry.weights_path.stat().st_size
    mb = size / 1e6
    api = HfApi(endpoint=server.url, token=TOKEN)

    push, pull, upload, download = [], [], [], []
    for i in range(args.runs):
        os.environ.update(ZOO_HOME=str(work / "zoo"), HF_HOME=str(work / "hf"))
        plugins.reset()
        push.append(timed(hub.push, entry.ref, f"bench/push-{i}"))
        api.create_repo(f"bench/raw-{i}")
        upload.append(timed(api.upload_file, path_or_fileobj=str(entry.weights_path), path_in_repo="model.safetensors",
                            repo_id=f"bench/raw-{i}"))  # fmt: skip
        os.environ.update(ZOO_HOME=str(work / f"zoo-pull-{i}"), HF_HOME=str(work / f"hf-pull-{i}"))
        plugins.reset()
        pull.append(timed(hub.pull, f"bench/push-{i}"))
        assert store.get(args.model, f"hub-bench-push-{i}").sha256 == entry.sha256
        download.append(timed(hf_hub_download, f"bench/raw-{i}", "model.safetensors", endpoint=server.url,
                              cache_dir=str(work / f"raw-cache-{i}")))  # fmt: skip
    load_after = os.getloadavg()
    server.stop()
    shutil.rmtree(work, ignore_errors=True)

    def row(samples: list[float]) -> dict[str, float]:
        median = statistics.median(samples)
        return {"seconds": round(median, 3), "mb_per_s": round(mb / median, 1),
                "runs_s": [round(s, 3) for s in samples]}  # fmt: skip

    import importlib.metadata as md

    from zoo_core.environment import cpu_name

    result = {
        "benchmark": "hub_transfer",
        "model": args.model,
        "weights_bytes": size,
        "zoo_push": row(push),
        "zoo_pull": row(pull),
        "huggingface_hub_upload_file": row(upload),
        "huggingface_hub_download": row(download),
        "runs": args.runs,
        "environment": {
            "server": "tests/support/hub_server.py on 127.0.0.1 (the same machine), LFS basic transfer, no xet",
            "machine": f"{cpu_name()}, {os.cpu_count()} CPUs, {platform.machine()}",
            "load_average_1m_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
            "python": platform.python_version(),
            "zoo": md.version("zoo"),
            "huggingface_hub": huggingface_hub.__version__,
            "torch": torch.__version__,
            "precision": "fp32 weights",
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": recorded_command("hub_transfer.py", sys.argv[1:]),
        },
    }
    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
