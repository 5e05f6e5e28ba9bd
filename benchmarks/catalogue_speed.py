"""How fast is `zoo list`? Cold (empty catalogue cache) and warm `zoo list --json`, against
`import timm; timm.list_models()`, each the median wall time of fresh processes.

    python benchmarks/catalogue_speed.py [--runs 5] [--out benchmarks/results/catalogue_speed.json]
    python benchmarks/catalogue_speed.py --before-zoo ../old-checkout/.venv/bin/zoo   # before/after ratios

With --before-zoo both are measured in alternation, round by round, each with its own ZOO_HOME.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from provenance import recorded_command


def wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(zoo: str, runs: int) -> tuple[dict[str, Any], Any]:
    """A generator of one round at a time of ``zoo``: cold list, warm list, --help (its ZOO_HOME kept)."""
    home = Path(tempfile.mkdtemp(prefix="zoo_speed_"))
    env = {**os.environ, "ZOO_HOME": str(home)}
    env.pop("ZOO_CACHE", None)
    times: dict[str, list[float]] = {"cold": [], "warm": [], "help": []}

    def rounds() -> Any:
        for i in range(runs):
            if i < max(1, runs // 2):
                shutil.rmtree(home / "cache", ignore_errors=True)
                times["cold"].append(wall([zoo, "list", "--json"], env))
            times["warm"].append(wall([zoo, "list", "--json"], env))
            times["help"].append(wall([zoo, "--help"], env))
            yield
        models = subprocess.run([zoo, "list", "--json"], env=env, capture_output=True, text=True).stdout
        times["models"] = [len(json.loads(models))]
        shutil.rmtree(home, ignore_errors=True)

    return times, rounds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "catalogue_speed.json")
    parser.add_argument("--zoo", help="the `zoo` to measure (default: the one on PATH)")
    parser.add_argument("--before-zoo", metavar="ZOO",
                        help="an earlier zoo (e.g. an older checkout's venv/bin/zoo), measured in alternation with "
                             "--zoo: before/after ratios are added")  # fmt: skip
    args = parser.parse_args()

    zoo = args.zoo or shutil.which("zoo")
    if zoo is None:
        sys.exit("benchmark: the `zoo` command is not installed (pip install -e .)")
    load_before = os.getloadavg()  # other work on the machine slows every figure; the ratios less
    after, after_rounds = measure(zoo, args.runs)
    sides = [after_rounds]
    if args.before_zoo:
        before, before_rounds = measure(args.before_zoo, args.runs)
        sides.append(before_rounds)
    for i in range(args.runs):  # alternate which zoo goes first, round by round
        for side in sides[:: 1 if i % 2 == 0 else -1]:
            next(side)
    for side in sides:
        next(side, None)  # the final count and clean-up
    timm = [wall([sys.executable, "-c", "import timm; timm.list_models()"], dict(os.environ)) for _ in range(args.runs)]

    import importlib.metadata as md

    def summary(times: dict[str, list[float]]) -> dict[str, Any]:
        return {
            "models_listed": times["models"][0],
            "zoo_list_json_cold_s": round(statistics.median(times["cold"]), 3),
            "zoo_list_json_warm_s": round(statistics.median(times["warm"]), 3),
            "zoo_help_s": round(statistics.median(times["help"]), 3),
            "runs_s": {k: [round(t, 3) for t in times[k]] for k in ("cold", "warm", "help")},
        }

    result: dict[str, Any] = {"benchmark": "catalogue_speed", **summary(after)}
    result["timm_list_models_s"] = round(statistics.median(timm), 3)
    result["runs"] = args.runs
    if args.before_zoo:
        result["before"] = summary(before)
        keys = ("zoo_list_json_cold_s", "zoo_list_json_warm_s", "zoo_help_s")
        result["after_over_before"] = {k: round(result[k] / result["before"][k], 3) for k in keys}
    result["environment"] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "zoo": md.version("zoo"),
        "timm": md.version("timm"),
        "torch": md.version("torch"),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_avg_before": [round(v, 2) for v in load_before],
        "load_avg_after": [round(v, 2) for v in os.getloadavg()],
        "command": recorded_command("catalogue_speed.py", sys.argv[1:]),
    }
    from zoo_core.atomic_io import atomic_write_json

    atomic_write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=2))


if __name__ == "__main__":
    main()
