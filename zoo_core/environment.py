"""The environment a figure was measured in, recorded with every result (training, evaluation, benchmarks;
no host name, no user)."""

from __future__ import annotations

import datetime
import functools
import os
import platform
import re
import sys
from typing import Any


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def package_version(dist: str) -> str | None:
    """An installed distribution's version, or None when it is not installed."""
    version = _dist_info_versions().get(_normalise(dist))
    if version is not None:
        return version
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@functools.cache
def _dist_info_versions() -> dict[str, str]:
    """Distribution -> version, from the ``name-version.dist-info`` folder names of one listing of each
    ``sys.path`` folder (the first on the path wins, as for importlib.metadata): asking importlib.metadata
    searches the whole path and parses a METADATA file per package, ~2 ms each, and the catalogue cache's
    key needs a dozen of them on every command."""
    versions: dict[str, str] = {}
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            stem = name[: -len(".dist-info")]
            if name.endswith(".dist-info") and stem.count("-") == 1:
                dist, version = stem.split("-")
                versions.setdefault(_normalise(dist), version)
    return versions


def utc_now() -> str:
    """The current time as ``2026-12-02T04:48:00Z`` (what every record stores)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def environment(device: str) -> dict[str, Any]:
    """Device, library versions and date; the run's settings are added by the runner."""
    import torch

    env: dict[str, Any] = {
        "device": device,
        "date": utc_now(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "torch": torch.__version__,
        "torchvision": package_version("torchvision"),
        "timm": package_version("timm"),
        "zoo": package_version("zoo"),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cpu_name": cpu_name(),
        "cpu_count": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    if device == "cpu":
        env["device_name"] = env["cpu_name"]
    else:
        props = torch.cuda.get_device_properties(device)
        env.update(
            device_name=props.name,
            device_capability=f"{props.major}.{props.minor}",
            device_memory_gb=round(props.total_memory / 2**30, 1),
            device_multiprocessors=props.multi_processor_count,
        )
    return env
