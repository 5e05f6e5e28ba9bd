"""`zoo benchmark` runs as a whole: the count and time estimate before a run of many models, the question
before more than 20, Ctrl-C that keeps what finished, figures marked when other work disturbed them, and a
model that fails making the run fail."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ctrl_c_default

from zoo_core.cli import main

# tiny00..tiny21: 22 one-layer models, enough to need a confirmation; sleepy0..3 sleep 0.1 s a step,
# so a run of them lasts long enough to be interrupted; jittery sleeps 40 ms on every fourth call and
# 2 ms on the others, as a model sharing the machine with bursts of other work would see it; ctrlc
# raises KeyboardInterrupt in its first timed step, as Ctrl-C in the middle of a measurement does.
SCALE_PLUGIN = """
import time

from zoo_core import hookimpl


@hookimpl
def zoo_register_models(register):
    for i in range(22):
        register(f"tiny{i:02d}", build_tiny, input_size=(3, 4, 4), num_classes=2, description="one layer")
    for i in range(4):
        register(f"sleepy{i}", build_sleepy, input_size=(3, 4, 4), num_classes=2, description="0.1 s a step")
    register("jittery", build_jittery, input_size=(3, 4, 4), num_classes=2, description="bursts of slow steps")
    register("ctrlc", build_ctrlc, input_size=(3, 4, 4), num_classes=2, description="Ctrl-C in a step")


def build_tiny(num_classes=2, **kwargs):
    from torch import nn

    return nn.Sequential(nn.Flatten(), nn.Linear(48, num_classes))


def _sleeper(slow_every, slow, fast, num_classes, interrupt_at=None):
    from torch import nn

    class Sleeper(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(48, num_classes)
            self.calls = 0

        def forward(self, x):
            self.calls += 1
            if interrupt_at is not None and self.calls >= interrupt_at:
                raise KeyboardInterrupt
            time.sleep(slow if self.calls % slow_every == 0 else fast)
            return self.fc(x.flatten(1))

    return Sleeper()


def build_sleepy(num_classes=2, **kwargs):
    return _sleeper(1, 0.1, 0.1, num_classes)


def build_jittery(num_classes=2, **kwargs):
    return _sleeper(4, 0.04, 0.002, num_classes)


def build_ctrlc(num_classes=2, **kwargs):
    return _sleeper(1, 0.0, 0.0, num_classes, interrupt_at=2)  # call 1 counts FLOPs, call 2 is the first step
"""
FAST = ["--device", "cpu", "--warmup", "0", "--iters", "2", "-b", "2"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One intra-op thread here and in worker processes: these steps are tiny, and the machine is shared."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def scale_models(plugin_path, monkeypatch, tmp_path):
    plugin_path("zoo-scaletest", "scaletest", "zoo_scaletest_plugin", SCALE_PLUGIN)
    monkeypatch.setenv("ZOO_PLUGINS", "cnn,data,registry,bench,scaletest")  # no timm catalogue: faster
    history = tmp_path / "timings.json"  # not the session's shared cache: each test starts with no history
    monkeypatch.setattr("zoo_bench.estimate.history_path", lambda: history)
    return history


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["benchmark", *args])
    out, err = capsys.readouterr()
    return code, out, err


# -- how many, how long, and asking first ------------------------------------------------------------


def test_a_wildcard_says_how_many_models_and_how_long_before_it_starts(capsys, scale_models):
    code, out, err = run(capsys, "-m", "scaletest:tiny0[0-2]", *FAST, "--no-isolate")
    assert code == 0
    # rough figures, for a model never timed here: 5 s start-up and build, then 2 steps of 0.5 s scaled to
    # batch 2 of the CPU's default 16
    per_model = 5.0 + 2 * 0.5 * 2 / 16
    assert err.splitlines()[0] == (
        f"zoo: 3 models to benchmark, about {round(3 * per_model)} s (at rough figures; later runs estimate "
        "from this one)"
    )
    assert [line.split()[0] for line in out.splitlines()[2:5]] == [f"tiny0{i}" for i in range(3)]
    # one exact model says nothing: `zoo benchmark --model NAME` prints what it always did
    code, _, err = run(capsys, "-m", "scaletest:tiny00", *FAST)
    assert code == 0 and "to benchmark" not in err


def test_the_estimate_learns_from_earlier_runs(scale_models):
    from zoo_bench.estimate import estimate, remember
    from zoo_bench.settings import BenchSettings

    from zoo_core.plugins import get_catalogue

    get_catalogue()
    settings = BenchSettings(device="cpu", warmup=3, iters=None, batch_size=8)
    jobs = [("scaletest:tiny00", settings), ("scaletest:tiny01", settings)]
    before = estimate(jobs)
    rough_step = 0.5 * 8 / 16  # ROUGH_STEP_S at batch 8; auto iters fill 10 s
    assert before.measured == 0 and before.seconds == pytest.approx(2 * (5.0 + 3 * rough_step + 10.0))
    # tiny00 ran in its own process at batch 4: 0.2 s a step, 3 warm-up + 10 timed steps, 4.6 s in all
    record = {
        "model": "scaletest:tiny00", "qualified": "scaletest:tiny00", "error": None,
        "environment": {"device": "cpu", "cpu_threads": 1, "precision": "fp32", "img_size": 4,
                        "channels_last": False, "compile": False},
        "infer": {"step_time_ms": 200.0, "batch_size": 4, "iters": 10, "warmup": 3},
    }  # fmt: skip
    remember(record, 4.6, isolated=True)
    after = estimate(jobs)
    step = 0.2 * 8 / 4  # scaled to batch 8: 0.4 s, so auto iters take 25 steps for 10 s
    assert after.measured == 1
    assert after.seconds == pytest.approx((4.6 - 13 * 0.2) + (3 + 25) * step + (5.0 + 3 * rough_step + 10.0))
    assert "1 from earlier runs here, 1 at rough figures" in after.describe()
    remember({**record, "model": "x", "qualified": "scaletest:tiny01"}, 4.6, isolated=True)
    assert estimate(jobs).describe().endswith("(from earlier runs of these models here)")
    assert json.loads(scale_models.read_text())  # kept as JSON in the cache


def test_more_than_20_models_need_a_yes(capsys, scale_models, monkeypatch):
    # no terminal to ask on (stdin is not a tty under pytest): refused, one line, nothing run
    code, out, err = run(capsys, "-m", "scaletest:tiny*", *FAST, "--no-isolate")
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith("zoo: error: 22 models to benchmark, about ") and "only with --yes" in err
    # at a terminal: asked, and "no" runs nothing
    monkeypatch.setattr("zoo_bench.cli.stdin_is_terminal", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, err = run(capsys, "-m", "scaletest:tiny*", *FAST, "--no-isolate")
    assert code == 2 and out == "" and "Run all 22? [y/N]" in err and "nothing run" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, err = run(capsys, "-m", "scaletest:tiny*", *FAST, "--no-isolate", "--json")
    assert code == 0 and len(json.loads(out)) == 22
    # --yes runs them without a question, terminal or not
    monkeypatch.setattr("zoo_bench.cli.stdin_is_terminal", lambda: False)
    code, out, err = run(capsys, "-m", "scaletest:tiny*", *FAST, "--no-isolate", "--json", "--yes")
    assert code == 0 and len(json.loads(out)) == 22 and "Run all" not in err
    assert "22 models to benchmark" in err


# -- Ctrl-C --------------------------------------------------------------------------------------------


def test_ctrl_c_prints_the_models_that_finished(tmp_path, scale_models):
    """Ctrl-C at a terminal signals the whole process group: zoo and the worker measuring a model."""
    csv_path = tmp_path / "partial.csv"
    cmd = [sys.executable, "-m", "zoo_core.cli", "benchmark", "-m", "scaletest:sleepy*", "--device", "cpu",
           "--warmup", "0", "--iters", "10", "-b", "2", "--csv", str(csv_path)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, preexec_fn=ctrl_c_default)  # fmt: skip
    try:
        assert proc.stderr is not None
        seen = []
        deadline = time.monotonic() + 120
        for line in proc.stderr:  # a line per finished model when stderr is not a terminal
            seen.append(line)
            if line.startswith("zoo: [1/4] sleepy0 done") or time.monotonic() > deadline:
                break
        os.killpg(proc.pid, signal.SIGINT)
        out, rest = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(seen) + rest
    assert proc.returncode == 130, err
    assert seen[0].startswith("zoo: 4 models to benchmark, about ")
    assert "Traceback" not in err
    finished = int(err.split("zoo: interrupted: ")[1].split()[0])
    assert finished >= 1 and f"zoo: interrupted: {finished} of 4 models finished, {4 - finished} not run" in err
    rows = [line.split()[0] for line in out.splitlines()[2:] if line.startswith("sleepy")]
    assert rows == [f"sleepy{i}" for i in range(finished)]  # a wildcard's models are shown by their bare names
    with open(csv_path, newline="") as f:
        assert [row["model"] for row in csv.DictReader(f)] == rows


def test_ctrl_c_in_json_mode_keeps_the_json_and_the_plot(capsys, scale_models, tmp_path):
    png = tmp_path / "partial.png"
    code, out, err = run(capsys, "scaletest:tiny00", "scaletest:tiny01", "scaletest:ctrlc", "scaletest:tiny02",
                         *FAST, "--no-isolate", "--json", "--plot", str(png))  # fmt: skip
    assert code == 130
    assert [r["model"] for r in json.loads(out)] == ["scaletest:tiny00", "scaletest:tiny01"]
    assert err.splitlines()[-1] == "zoo: interrupted: 2 of 4 models finished, 2 not run (shown above)"
    assert png.read_bytes()[:4] == b"\x89PNG"
    # interrupted before anything finished: no table, no file, and no error about an empty plot
    code, out, err = run(capsys, "scaletest:ctrlc", "scaletest:tiny00", *FAST, "--no-isolate",
                         "--plot", str(tmp_path / "none.png"))  # fmt: skip
    assert code == 130 and out == "" and not (tmp_path / "none.png").exists()
    assert err.splitlines()[-1] == "zoo: interrupted: 0 of 2 models finished, 2 not run"


# -- interference ----------------------------------------------------------------------------------------


def test_spread_criteria():
    from zoo_bench.timing import Timing

    steady = Timing([0.010, 0.011, 0.010, 0.012, 0.010, 0.011, 0.010, 0.013, 0.011, 0.010], 0.108).summary(1)
    assert not steady["unstable"] and steady["p90_over_median"] < 1.5
    # a fifth of the steps three times slower: the p90 shows it
    slowed = Timing([0.01] * 8 + [0.03] * 2, 0.14).summary(1)
    assert slowed["unstable"] and slowed["p90_over_median"] == pytest.approx(3.0)
    # one stall in twenty: the p90 stays at the median, the mean does not
    stall = [0.01] * 19 + [0.25]
    stalled = Timing(stall, sum(stall)).summary(1)
    assert stalled["p90_over_median"] == pytest.approx(1.0) and stalled["mean_over_median"] == pytest.approx(2.2)
    assert stalled["unstable"]


def test_interference_is_marked_in_json_table_csv_and_plot(capsys, scale_models, tmp_path):
    from zoo_bench.plot import figure

    args = ["scaletest:jittery", "scaletest:tiny00", "--device", "cpu", "--warmup", "0", "--iters", "8",
            "--no-isolate"]  # fmt: skip
    csv_path = tmp_path / "out.csv"
    code, out, _ = run(capsys, *args, "--json", "--csv", str(csv_path))
    assert code == 0
    jittery, tiny = json.loads(out)
    # two of the eight timed steps took 40 ms, the others 2 ms
    assert jittery["unstable"] is True and jittery["infer"]["unstable"] is True
    assert jittery["infer"]["p90_over_median"] > 5 and jittery["infer"]["mean_over_median"] > 2
    with open(csv_path, newline="") as f:
        assert next(csv.DictReader(f))["infer_unstable"] == "True"

    code, out, _ = run(capsys, *args)
    row = next(line for line in out.splitlines() if line.startswith("scaletest:jittery"))
    assert row.split()[4].endswith("!")  # samples/s
    assert "! unstable: p90 or mean step time over 1.5x the median" in out

    fig, _ = figure([jittery, {**tiny, "infer": {**tiny["infer"], "unstable": False}}])
    ax = fig.axes[0]
    hollow = [c for c in ax.collections if len(c.get_facecolors()) == 0 or c.get_facecolors()[0][3] == 0]
    assert len(hollow) == 1 and hollow[0].get_offsets()[0][1] == pytest.approx(jittery["infer"]["samples_per_sec"])
    assert any("unstable" in t.get_text() for t in ax.get_legend().get_texts())
    assert any(t.get_text() == "scaletest:jittery (!)" for t in ax.texts)


# -- a failing model -------------------------------------------------------------------------------------

FAILS_TO_RUN = """
from zoo_core import hookimpl
import torch.nn as nn


class Broken(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        raise RuntimeError("this model cannot run")


@hookimpl
def zoo_register_models(register):
    register("brokenrun", Broken, input_size=(3, 8, 8), num_classes=10)
"""


def test_benchmark_exits_non_zero_when_a_model_fails(plugin_path, capsys, monkeypatch):
    plugin_path("zoo-brokenrun", "brokenrun", "zoo_brokenrun_plugin", FAILS_TO_RUN)
    monkeypatch.setenv("ZOO_PLUGINS", "cnn,bench,brokenrun")
    code, out, _ = run(capsys, "brokenrun", "--device", "cpu", "--iters", "2", "--warmup", "0", "--json")
    assert code == 1 and "this model cannot run" in json.loads(out)[0]["error"]


def test_more_than_20_models_run_with_y_as_with_yes(capsys, scale_models, monkeypatch):
    monkeypatch.setattr("zoo_bench.cli.stdin_is_terminal", lambda: True)  # a question would be asked
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # and answered "no" if it were
    code, out, err = run(capsys, "-m", "scaletest:tiny*", *FAST, "--no-isolate", "--json", "-y")
    assert code == 0 and len(json.loads(out)) == 22 and "Run all" not in err
