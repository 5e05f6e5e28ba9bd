"""How fast is `zoo list`? Cold (empty catalogue cache) and warm `zoo list --json`, against
`import timm; timm.list_models()`, each the median wall time of fresh processes.

    python benchmarks/catalogue_speed.py [--runs 5] [--out benchmarks/results/catalogue_speed.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from zoo_bench.provenance import recorded_args


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "catalogue_speed.json")
    parser.add_argument("--zoo", help="the `zoo` to measure (default: the one on PATH), e.g. an older checkout's")
    parser.add_argument("--before", type=Path, metavar="JSON",
                        help="this script's result for an earlier zoo: before/after ratios are added")  # fmt: skip
    args = parser.parse_args()

    zoo = args.zoo or shutil.which("zoo")
    if zoo is None:
        sys.exit("benchmark: the `zoo` command is not installed (pip install -e .)")
    home = Path(tempfile.mkdtemp(prefix="zoo_speed_"))
    env = {**os.environ, "ZOO_HOME": str(home)}
    env.pop("ZOO_CACHE", None)
    list_cmd = [zoo, "list", "--json"]
    cold = []
    for _ in range(max(1, args.runs // 2)):
        shutil.rmtree(home / "cache", ignore_errors=True)
        cold.append(wall(list_cmd, env))
    warm = [wall(list_cmd, env) for _ in range(args.runs)]
    helped = [wall([zoo, "--help"], env) for _ in range(args.runs)]
    timm = [wall([sys.executable, "-c", "import timm; timm.list_models()"], env) for _ in range(args.runs)]
    models = len(json.loads(subprocess.run(list_cmd, env=env, capture_output=True, text=True).stdout))
    shutil.rmtree(home, ignore_errors=True)

    import importlib.metadata as md

    result = {
        "benchmark": "catalogue_speed",
        "models_listed": models,
        "zoo_list_json_cold_s": round(statistics.median(cold), 3),
        "zoo_list_json_warm_s": round(statistics.median(warm), 3),
        "zoo_help_s": round(statistics.median(helped), 3),
        "timm_list_models_s": round(statistics.median(timm), 3),
        "runs": args.runs,
        "environment": {
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "python": platform.python_version(),
            "zoo": md.version("zoo"),
            "timm": md.version("timm"),
            "torch": md.version("torch"),
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "command": shlex.join(["python", "benchmarks/catalogue_speed.py", *recorded_args(sys.argv[1:])]),
        },
    }
    if args.before:
        before = json.loads(args.before.read_text())
        result["before"] = {k: before.get(k) for k in ("zoo_list_json_cold_s", "zoo_list_json_warm_s", "zoo_help_s")}
        result["before"]["command"] = before.get("environment", {}).get("command")
        result["after_over_before"] = {k: round(result[k] / v, 3) for k, v in result["before"].items()
                                       if isinstance(v, (int, float)) and v}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
