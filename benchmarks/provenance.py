"""How the benchmark scripts record the command that made a results file: paths of this machine become
``$ZOO_DATA/...``, a path relative to the repository, or a bare file name, so a committed result holds no
absolute path of the machine it was measured on; where the CIFAR-10 copy they read is (``cifar10_dir``); and
how a result is written with its environment and command (``write_result``)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # the repository (this module lives in benchmarks/)


def recorded_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a results file records it: ``$ZOO_DATA/...``, relative to the repository, or its name."""
    p = Path(path).expanduser().resolve()
    zoo_data = os.environ.get("ZOO_DATA")
    if zoo_data and p.is_relative_to(base := Path(zoo_data).expanduser().resolve()):
        return Path("$ZOO_DATA", p.relative_to(base)).as_posix()
    if p.is_relative_to(ROOT):
        return p.relative_to(ROOT).as_posix()
    return p.name


def recorded_args(argv: list[str]) -> list[str]:
    """The arguments with every absolute path (``--out=/x`` too) in the form ``recorded_path`` gives it."""
    out = []
    for word in argv:
        option, eq, value = word.partition("=")
        if eq and option.startswith("-") and os.path.isabs(value):
            word = f"{option}={recorded_path(value)}"
        elif os.path.isabs(word):
            word = recorded_path(word)
        out.append(word)
    return out


def recorded_command(script: str, argv: list[str]) -> str:
    """``python benchmarks/SCRIPT ARGS...`` as it is recorded."""
    return shlex.join(["python", f"benchmarks/{script}", *recorded_args(argv)])


def cifar10_dir(given: Path | None, script: str) -> Path:
    """The CIFAR-10 ImageFolder copy a benchmark reads: ``--data-dir``, else ``$ZOO_DATA/cifar10``; where neither
    holds train/ and test/, one line on stderr and exit status 2."""
    data = given or (Path(os.environ["ZOO_DATA"]) / "cifar10" if os.environ.get("ZOO_DATA") else None)
    if data is None or not (data / "train").is_dir() or not (data / "test").is_dir():
        print(f"{script}: CIFAR-10 not found: pass --data-dir DIR or set ZOO_DATA (a folder holding "
              "cifar10/{train,test}/<class>/*.jpg)", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    return data


def load_average_1min(before: Sequence[float]) -> dict[str, Any]:
    """The 1-minute load average before (``os.getloadavg()`` taken then) and now, with the CPU count: how much
    else ran on a shared machine during a measurement."""
    return {"before": round(before[0], 2), "after": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()}


def write_result(out: Path, result: dict[str, Any], script: str, shown: Sequence[str], device: str = "cpu") -> int:
    """``result`` with the environment of ``device`` and the recorded command of ``script``, written atomically
    to ``out``; its ``shown`` entries printed as JSON on stdout. Returns 0, the script's exit status."""
    from zoo_core.atomic_io import atomic_write_json
    from zoo_core.environment import environment

    result = {**result, "environment": environment(device), "command": recorded_command(script, sys.argv[1:])}
    atomic_write_json(out, result)
    print(json.dumps({k: result[k] for k in shown}, indent=2))
    return 0
