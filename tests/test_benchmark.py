"""`zoo benchmark`, driven as a user would: figures and their arithmetic, out-of-memory decay, output
files, suites, accuracy with registry records, and the errors a user can cause."""

from __future__ import annotations

import csv
import json
import math

import pytest

from zoo_core.cli import main

# A plugin with models whose cost is known exactly: mlp8 is Flatten -> Linear(192, 16) -> ReLU ->
# Linear(16, 10), no biases, on 3x8x8 inputs; oomnet fails like a GPU that is out of memory whenever a
# batch holds more than 8 samples.
BENCH_PLUGIN = """
from zoo_core import hookimpl


@hookimpl
def zoo_register_models(register):
    register("mlp8", build_mlp8, input_size=(3, 8, 8), num_classes=10, description="two linear layers")
    register("oomnet", build_oomnet, input_size=(3, 8, 8), num_classes=10, description="OOM above batch 8")


def build_mlp8(num_classes=10, **kwargs):
    from torch import nn

    layers = [nn.Flatten(), nn.Linear(192, 16, bias=False), nn.ReLU(), nn.Linear(16, num_classes, bias=False)]
    return nn.Sequential(*layers)


def build_oomnet(num_classes=10, **kwargs):
    import torch

    class OOMNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(192, num_classes)

        def forward(self, x):
            if x.shape[0] > 8:
                raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate a batch of {x.shape[0]}")
            return self.fc(x.flatten(1))

    return OOMNet()
"""
FAST = ["--device", "cpu", "--warmup", "1", "--iters", "5"]


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One intra-op thread, here and in worker processes: on a busy 2-core machine two OpenMP threads
    that wait on each other make these tiny steps many times slower, and no assertion depends on speed."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def bench_models(plugin_path, monkeypatch):
    plugin_path("zoo-benchtest", "benchtest", "zoo_benchtest_plugin", BENCH_PLUGIN)
    monkeypatch.setenv("ZOO_PLUGINS", "cnn,data,registry,bench,benchtest")  # no timm catalogue: faster


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["benchmark", *args])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *args: str) -> list[dict]:
    code, out, err = run(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_figures_follow_from_known_flops(capsys, bench_models):
    (r,) = run_json(capsys, "-m", "benchtest:mlp8", "-b", "4", "--mode", "both", *FAST)
    forward = 2 * (192 * 16 + 16 * 10)  # 2 FLOPs per multiply-accumulate
    # backward: the second layer's input and weight gradients, the first layer's weight gradient
    # only (the image needs no gradient)
    backward = 2 * (16 * 10) * 2 + 2 * (192 * 16)
    assert r["error"] is None and r["qualified"] == "benchtest:mlp8"
    assert r["param_count"] == 192 * 16 + 16 * 10
    assert r["gmacs"] == pytest.approx(forward / 2 / 1e9)
    assert r["infer"]["flops_per_sample"] == forward
    assert r["train"]["flops_per_sample"] == forward + backward
    for phase in ("infer", "train"):
        p = r[phase]
        assert p["batch_size"] == 4 and p["iters"] == 5 and p["warmup"] == 1
        assert p["samples_per_sec"] == pytest.approx(4 / (p["step_time_ms"] / 1e3), rel=1e-4)
        assert p["tflops"] == pytest.approx(p["flops_per_sample"] * p["samples_per_sec"] / 1e12, rel=1e-4)
        assert p["step_time_ms_min"] <= p["step_time_ms"] <= p["step_time_ms_p90"]
        assert p["peak_tflops"] is None and p["peak_share"] is None  # no datasheet peak for a CPU
        assert p["peak_mem_mb"] > 0


def test_share_of_peak_uses_the_datasheet_table():
    from zoo_bench.measure import achieved
    from zoo_bench.peaks import peak_tflops

    assert peak_tflops("NVIDIA H100 80GB HBM3", "bf16") == 989.4
    assert peak_tflops("NVIDIA H100 PCIe", "bf16") == 756.0
    assert peak_tflops("NVIDIA H200", "tf32") == 494.7
    assert peak_tflops("NVIDIA A100-SXM4-80GB", "fp32") == 19.5
    assert peak_tflops("NVIDIA L4", "fp16") == 121.0 and peak_tflops("NVIDIA L40S", "bf16") == 362.05
    assert peak_tflops("Tesla V100-SXM2-16GB", "bf16") is None
    assert peak_tflops("NVIDIA A10G", "fp16") is None  # unknown cards have no peak, not a guess
    # densenet121's 2.87 GMACs at 3000 samples/s on an H100 in bf16
    tflops, peak, share = achieved(2 * 2.87e9, 3000.0, "cuda:0", "NVIDIA H100 80GB HBM3", "bf16")
    assert tflops == pytest.approx(17.22) and peak == 989.4 and share == pytest.approx(17.22 / 989.4)
    assert achieved(1e9, 10.0, "cpu", "AMD EPYC", "fp32") == (pytest.approx(0.01), None, None)


def test_out_of_memory_decays_the_batch_as_timm_does(capsys, bench_models):
    (r,) = run_json(capsys, "-m", "benchtest:oomnet", "-b", "32", *FAST)
    assert r["error"] is None
    assert r["infer"]["batch_size"] == 8 and r["infer"]["batch_size_requested"] == 32
    assert r["infer"]["oom_retries"] == 4  # 32 -> 24 -> 16 -> 12 -> 8


def test_batch_decay_steps_down_to_one_then_gives_up():
    import torch
    from zoo_bench.measure import run_with_batch_decay

    tried = []

    def always_oom(batch):
        tried.append(batch)
        raise torch.OutOfMemoryError("out of memory")

    with pytest.raises(MemoryError, match="every batch size from 4 down to 1"):
        run_with_batch_decay(always_oom, 4, "cpu")
    assert tried == [4, 3, 2, 1]
    with pytest.raises(ValueError):  # anything else is not retried
        run_with_batch_decay(lambda b: (_ for _ in ()).throw(ValueError("bad")), 4, "cpu")


def test_out_of_memory_on_a_gpu_frees_compiled_graphs_before_the_retry(monkeypatch):
    """CUDA graphs hold a failed attempt's memory in a private pool that torch.cuda.empty_cache() cannot
    release while the graphs live: without a compiler reset first, the smaller batches run out of memory too."""
    import torch
    import torch._dynamo  # noqa: F401 - loaded in every real run (FLOPs are counted first)
    from zoo_bench.measure import run_with_batch_decay

    events: list = []
    monkeypatch.setattr(torch.compiler, "reset", lambda: events.append("reset"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: events.append("empty_cache"))

    def run(batch):
        events.append(batch)
        if batch > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {}

    assert run_with_batch_decay(run, 4, "cuda:0")["batch_size"] == 2
    assert events == [4, "reset", "empty_cache", 3, "reset", "empty_cache", 2]


def test_peak_memory_under_cuda_graphs_includes_the_warmup_that_recorded_them(monkeypatch):
    """A CUDA graph replay allocates nothing: its activations were allocated when the warm-up recorded it,
    so a peak reset after the warm-up would report little more than the weights."""
    import torch
    from zoo_bench.memory import PeakMemory

    calls: list = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append("reset"))
    for cuda_graphs, expected in ((False, ["begin", "start", "reset"]), (True, ["begin", "reset", "start"])):
        calls.clear()
        meter = PeakMemory("cuda:0", cuda_graphs=cuda_graphs)
        calls.append("begin")
        meter.begin()
        calls.append("start")
        meter.start()
        assert calls == expected, cuda_graphs
    assert meter.method == "cuda_max_memory_allocated_with_warmup"


def test_outputs_table_json_csv_and_plot(capsys, bench_models, tmp_path):
    from zoo_bench.writers import CSV_COLUMNS

    csv_path, png = tmp_path / "out.csv", tmp_path / "out.png"
    code, out, err = run(capsys, "benchtest:mlp8", "--model", "simplecnn", "--no-isolate", "--mode", "both",
                         "-b", "4", *FAST, "--csv", str(csv_path), "--plot", str(png))  # fmt: skip
    assert code == 0, err
    header, rule, *rows = out.splitlines()
    assert header.split()[:6] == ["model", "phase", "batch", "img", "samples/s", "step"]
    assert [row.split()[0] for row in rows[:4]] == ["simplecnn", "train", "benchtest:mlp8", "train"]
    assert "AMD" in out or "cpu" in out  # the environment line
    with open(csv_path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == CSV_COLUMNS
        table = list(reader)
    timm_columns = ["model", "infer_samples_per_sec", "infer_step_time", "infer_batch_size", "infer_img_size",
                    "infer_gmacs", "train_samples_per_sec", "train_step_time", "train_batch_size",
                    "train_img_size", "param_count"]  # fmt: skip
    assert CSV_COLUMNS[: len(timm_columns)] == timm_columns
    cnn, mlp = table
    assert mlp["model"] == "benchtest:mlp8" and cnn["qualified"] == "cnn:simplecnn"
    assert cnn["infer_img_size"] == "32" and cnn["param_count"] == "1.15"  # millions, as timm writes it
    assert float(cnn["infer_samples_per_sec"]) > 0 and float(cnn["train_samples_per_sec"]) > 0
    for column in ("device", "device_name", "precision", "tf32", "torch", "date", "command"):
        assert cnn[column] != ""
    assert cnn["command"].startswith("zoo benchmark benchtest:mlp8 --model simplecnn")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_record_carries_its_environment(capsys, bench_models):
    (r,) = run_json(capsys, "-m", "benchtest:mlp8", "--precision", "fp32", "--channels-last", *FAST)
    env = r["environment"]
    for key in ("device", "device_name", "torch", "cuda", "cudnn", "precision", "tf32", "compile", "channels_last",
                "batch_size", "img_size", "date", "command", "cpu_threads"):  # fmt: skip
        assert key in env
    assert env["precision"] == "fp32" and env["tf32"] is False and env["channels_last"] is True
    assert env["batch_size"] == 16 and env["img_size"] == 8  # the CPU's default batch, the model's size
    assert "hostname" not in json.dumps(r).lower()


def test_a_model_in_its_own_process(capsys, bench_models):
    # several models get one process each by default; --isolate asks for it with one model too
    (r,) = run_json(capsys, "-m", "benchtest:oomnet", "-b", "16", "--isolate", *FAST)
    assert r["error"] is None and r["infer"]["batch_size"] == 8 and r["environment"]["device"] == "cpu"


def test_suite_settings_per_model_and_overridden_by_options(capsys, bench_models, tmp_path):
    suite = tmp_path / "mine.json"
    models = ["benchtest:mlp8", {"model": "benchtest:oomnet", "batch_size": 16}]
    suite.write_text(json.dumps({"settings": {"batch_size": 32, "warmup": 1, "iters": 3}, "models": models}))
    records = run_json(capsys, "--suite", str(suite), "--device", "cpu", "--iters", "4", "--no-isolate")
    assert [r["model"] for r in records] == ["benchtest:mlp8", "benchtest:oomnet"]
    assert records[0]["infer"]["batch_size"] == 32 and records[0]["infer"]["iters"] == 4  # option beats suite
    assert records[1]["infer"]["batch_size_requested"] == 16 and records[1]["infer"]["batch_size"] == 8
    code, out, err = run(capsys, "--suite", "no-such-suite")
    assert code == 2 and "unknown suite 'no-such-suite'" in err


def publish_digits_cnn(tag: str) -> float:
    """Train simplecnn briefly on the digits dataset, publish it as simplecnn.<tag>; its test top-1 (%)."""
    import torch
    from zoo_registry.store import publish

    from zoo_core import create_model
    from zoo_core.datasets import load_dataset

    data = load_dataset("digits")
    train, test = data.split("train"), data.split("test")
    pixels = train.images.float() / 255
    mean, std = float(pixels.mean()), float(pixels.std())

    def normalised(split):
        return (split.images.float() / 255 - mean) / std

    torch.manual_seed(0)
    kwargs = {"num_classes": 10, "in_chans": 1, "input_size": [8, 8]}
    model = create_model("simplecnn", **kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    inputs = normalised(train)
    for _ in range(2):  # epochs
        for i in range(0, len(train), 64):
            loss = torch.nn.functional.cross_entropy(model(inputs[i : i + 64]), train.labels[i : i + 64])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        top1 = 100 * float((model(normalised(test)).argmax(1) == test.labels).float().mean())
    publish(model, model_name="cnn:simplecnn", tag=tag, model_kwargs=kwargs, labels=data.classes,
            preprocessing={"input_size": [1, 8, 8], "mean": [mean], "std": [std]},
            metrics={"dataset": "digits", "top1": round(top1, 2)})  # fmt: skip
    return top1


def test_accuracy_in_the_same_run_is_recorded_in_the_registry(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_PLUGINS", "cnn,data,train,registry,bench")
    top1 = publish_digits_cnn("digits-bench")
    assert top1 > 80  # it learned something, so the accuracy below is a real check
    png = tmp_path / "acc.png"
    # --weights TAG still works, with one deprecation line: weights are MODEL.TAG everywhere
    code, out, err = run(capsys, "simplecnn", "--weights", "digits-bench", "--dataset", "digits", "-b", "64", *FAST,
                         "--plot", str(png), "--json")  # fmt: skip
    assert code == 0, err
    assert err.splitlines()[0] == "zoo: note: --weights digits-bench is deprecated; use simplecnn.digits-bench"
    (r,) = json.loads(out)
    assert r["error"] is None and r["tag"] == "digits-bench" and r["input_size"] == [1, 8, 8]
    acc = r["accuracy"]
    assert acc["dataset"] == "digits" and acc["split"] == "test" and acc["num_samples"] == 359
    assert acc["top1"] == pytest.approx(top1, abs=0.01) and acc["top1"] <= acc["top5"] <= 100
    assert r["registry"] == "recorded" and r["infer"]["samples_per_sec"] > 0

    from zoo_registry.store import get

    entry = get("cnn:simplecnn", "digits-bench")
    assert entry.metrics["top1"] == round(top1, 2)  # the training metrics are kept
    (key, bench), *_ = entry.metrics["benchmark"].items()
    assert key == f"{r['environment']['device_name']} fp32"
    assert bench["top1"] == acc["top1"] and bench["infer_samples_per_sec"] == r["infer"]["samples_per_sec"]
    assert bench["environment"]["torch"] and bench["environment"]["command"].startswith("zoo benchmark simplecnn")
    card = (entry.path / "README.md").read_text()
    assert "benchmark" in card and str(acc["top1"]) in card
    assert png.read_bytes()[:4] == b"\x89PNG"

    # the same weights named as simplecnn.TAG
    code, out, err = run(capsys, "simplecnn.digits-bench", "--dataset", "digits", "-b", "64", *FAST, "--json")
    assert code == 0 and "deprecated" not in err
    assert json.loads(out)[0]["accuracy"]["top1"] == acc["top1"]


def test_shipped_suites_name_known_models():
    from zoo_bench.runner import expand_models
    from zoo_bench.suites import available, load_suite

    assert {"core", "small", "timm-core"} <= set(available())
    _, core = load_suite("core")
    names = [m for m, _ in core]
    for name in ("simplecnn", "improvedcnn", "resnet18", "resnet50", "inception_v3", "densenet121",
                 "efficientnet_b0"):  # fmt: skip
        assert name in names
    for suite in available():
        expand_models([m for m, _ in load_suite(suite)[1]])  # raises on an unknown name


def test_cuda_without_a_gpu_exits_2_with_one_line(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, out, err = run(capsys, "--model", "simplecnn", "--device", "cuda")
    assert code == 2 and out == ""
    assert err.startswith("zoo: error: --device cuda: no CUDA device is available here")
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "--model", "simplecnn", "--device", "cuda:3")
    assert code == 2 and "no CUDA device" in err
    code, _, err = run(capsys, "--model", "simplecnn", "--device", "tpu")
    assert code == 2 and "unknown device 'tpu'" in err


def test_precision_the_device_cannot_do_is_a_clear_error(capsys):
    import torch

    code, _, err = run(capsys, "--model", "simplecnn", "--device", "cpu", "--precision", "tf32")
    assert code == 2 and "tf32 needs an NVIDIA GPU" in err
    if not torch.ops.mkldnn._is_mkldnn_fp16_supported():
        code, _, err = run(capsys, "--model", "simplecnn", "--device", "cpu", "--precision", "fp16")
        assert code == 2 and "fp16 is not supported natively by this CPU" in err
        assert len(err.strip().splitlines()) == 1


def test_unknown_model_suggests_close_names(capsys):
    code, out, err = run(capsys, "--model", "densenet12", "--device", "cpu")
    assert code == 2 and out == ""
    assert "unknown model 'densenet12'" in err and "densenet121" in err
    code, _, err = run(capsys, "--model", "nothing-like-this*", "--device", "cpu")
    assert code == 2 and "no model matches 'nothing-like-this*'" in err
    code, _, err = run(capsys, "--device", "cpu")
    assert code == 2 and "--model NAME" in err and "--suite" in err


def test_output_paths_that_cannot_be_written_fail_before_the_run(capsys, bench_models, tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    code, out, err = run(capsys, "benchtest:mlp8", *FAST, "--csv", str(a_file / "out.csv"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith(f"zoo: error: --csv {a_file / 'out.csv'}: ") and "not a folder zoo can write to" in err
    code, out, err = run(capsys, "benchtest:mlp8", *FAST, "--plot", str(tmp_path / "out.xyz"))
    assert code == 2 and out == "" and "cannot draw a .xyz file" in err and "png" in err


def test_dataset_needs_trained_weights(capsys):
    code, _, err = run(capsys, "--model", "simplecnn", "--device", "cpu", "--dataset", "digits")
    assert code == 2 and "name them as simplecnn.TAG" in err


def test_decayed_figures_are_finite_and_ordered():
    from zoo_bench.timing import percentile

    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0 and percentile(values, 90) == pytest.approx(4.6)
    assert percentile([7.0], 90) == 7.0 and not math.isnan(percentile(values, 0))
