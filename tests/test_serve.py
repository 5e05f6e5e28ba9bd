"""`zoo serve`: the pages and the JSON API through FastAPI's TestClient, the command itself as a process.

The registry holds SimpleCNN trained one epoch on digits (``digits_entry_home``, made once per session); the app is
built once for the module and every test points ZOO_HOME at that registry. The browser tests are in
test_serve_browser.py."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from zoo_core import plugins  # noqa: E402
from zoo_core.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENTRY = "cnn:simplecnn.web"
BENCHMARK_FILE = ROOT / "benchmarks" / "results" / "cpu_core_fp32.json"


def digit_png(path: Path, index: int = -5) -> Path:
    """A digit of scikit-learn's test images as a 64x64 grayscale PNG."""
    from PIL import Image
    from sklearn.datasets import load_digits

    pixels = (load_digits().images[index] * 255 / 16).round().astype("uint8")
    Image.fromarray(pixels, "L").resize((64, 64), Image.NEAREST).save(path)
    return path


@pytest.fixture(scope="module")
def app(digits_entry_home: Path):
    from zoo_serve.app import Settings, create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ZOO_HOME", str(digits_entry_home))
        plugins.reset()
        yield create_app(Settings(benchmark_files=[str(BENCHMARK_FILE)], max_upload_bytes=200_000,
                                  max_pixels=1_000_000))  # fmt: skip
    plugins.reset()


@pytest.fixture
def client(app, digits_entry_home: Path, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("ZOO_HOME", str(digits_entry_home))
    plugins.reset()
    return TestClient(app)


def cli(capsys, *args: str):
    """``zoo ARGS`` in this process: its JSON."""
    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr().out
    assert code in (0, 1), out
    return json.loads(out)


def one_line(html: str) -> str:
    found = re.findall(r'<p class="error" role="alert">(.*?)</p>', html, re.S)
    assert len(found) == 1 and "\n" not in found[0] and "Traceback" not in html
    return found[0]


def test_search_api_is_zoo_list_json(client, capsys):
    listed = client.get("/api/models", params={"q": "resnet50"})
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    rows = listed.json()
    assert "resnet50" in [r["name"] for r in rows] and all("resnet50" in r["qualified"] for r in rows)
    assert rows == cli(capsys, "list", "*resnet50*", "--json")
    by_params = client.get("/api/models", params={"q": "resnet", "plugin": "torchvision", "sort": "params"}).json()
    assert by_params == cli(capsys, "list", "*resnet*", "--plugin", "torchvision", "--sort", "params", "--json")
    sizes = [r["num_params"] for r in by_params]
    assert sizes == sorted(sizes) and {r["plugin"] for r in by_params} == {"torchvision"}


def test_home_page_searches_filters_sorts_and_pages(client):
    home = client.get("/")
    assert home.status_code == 200
    assert '<input type="search" name="q"' in home.text and 'href="/registry"' in home.text
    assert 'href="/runs"' in home.text and 'href="/benchmarks"' in home.text
    total = int(re.search(r'<p class="count">([\d,]+) models', home.text).group(1).replace(",", ""))
    assert total > 1400 and 'rel="next"' in home.text  # the whole catalogue, a page at a time
    found = client.get("/", params={"q": "densenet", "family": "densenet", "pretrained": "1", "sort": "top1"})
    names = re.findall(r'<a href="/models/[^"]+">([^<]+)</a>', found.text)
    assert names[0] == "densenet161" and "densenet121" in names  # torchvision's, best top-1 first
    assert "densenet264d" not in names  # no pretrained weights
    limited = client.get("/", params={"q": "densenet", "max_params": "10M", "sort": "params"})
    assert "7,978,856" in limited.text and "densenet161" not in limited.text  # 28.7M parameters
    assert client.get("/", params={"min_params": "lots"}).status_code == 400


def test_model_page_shows_the_model_as_zoo_info_does(client, capsys):
    page = client.get("/models/densenet121")
    assert page.status_code == 200
    assert "7,978,856" in page.text and "2.834" in page.text and "imagenet1k_v1" in page.text
    assert "74.43" in page.text and "bsd-3-clause" in page.text and "center 0.875 (256)" in page.text
    assert "zoo predict densenet121.imagenet1k_v1 picture.jpg" in page.text
    assert 'create_model(&#34;densenet121.imagenet1k_v1&#34;)' in page.text
    assert client.get("/api/models/densenet121").json() == cli(capsys, "info", "densenet121", "--json")
    tags = client.get("/api/models/timm:densenet121/tags").json()
    assert tags == cli(capsys, "list", "timm:densenet121", "--tags", "--json")


def test_registry_and_entry_pages_show_what_the_registry_holds(client, capsys):
    listed = cli(capsys, "registry", "list", "--json")
    assert client.get("/api/registry").json() == listed
    page = client.get("/registry")
    assert f'href="/registry/{ENTRY.replace(":", "%3A")}"' in page.text
    entry = client.get(f"/registry/{ENTRY}")
    top1 = listed[0]["metrics"]["top1"]
    assert entry.status_code == 200 and f"<td>{top1}</td>" in entry.text
    assert '<input type="file" name="image"' in entry.text and '<button type="submit">' in entry.text
    assert "<svg" in entry.text and "top-1 per class" in entry.text  # per-class bars and curves, inline
    assert "Lineage" in entry.text and "digits" in entry.text and "<h3>simplecnn.web</h3>" in entry.text  # the card
    shown = client.get(f"/api/registry/{ENTRY}").json()
    assert shown == cli(capsys, "registry", "show", ENTRY, "--json")
    confusion = client.get(f"/registry/{ENTRY}/confusion.svg")
    assert confusion.headers["content-type"] == "image/svg+xml"
    # zoo eval's matrix: its top-1 is the published one, and its counts add up to the test split
    assert f"top-1 {top1}%" in confusion.text
    counts = [int(n) for n in re.findall(r"predicted \w+: (\d+)</title>", confusion.text)]
    assert sum(counts) == listed[0]["metrics"]["num_samples"]
    missing = client.get("/registry/resnet50.imagenet1k_v2")
    assert missing.status_code == 404 and "unknown registry entry" in one_line(missing.text)


def test_try_it_gives_what_zoo_predict_gives(client, capsys, tmp_path, app):
    picture = digit_png(tmp_path / "digit.png")
    expected = cli(capsys, "predict", "simplecnn.web", str(picture), "--top-k", "3", "--json")
    answered = client.post("/api/predict", data={"model": "simplecnn.web", "top_k": "3"},
                           files={"image": ("digit.png", picture.read_bytes(), "image/png")})  # fmt: skip
    assert answered.status_code == 200
    got = answered.json()
    assert got["predictions"][0]["image"] == "digit.png"
    expected["predictions"][0]["image"] = "digit.png"
    assert got == expected  # the same classes, probabilities, weights and preprocessing
    page = client.post(f"/registry/{ENTRY}", data={"top_k": "3", "gradcam": "1"},
                       files={"image": ("digit.png", picture.read_bytes(), "image/png")})  # fmt: skip
    best = expected["predictions"][0]["top"][0]
    assert page.status_code == 200
    assert f'<td class="label">{best["class"]}</td><td class="num">{100 * best["probability"]:.2f}%' in page.text
    assert '<img src="data:image/png;base64,' in page.text and "Grad-CAM of <strong>" in page.text
    # the model stays loaded: one cache entry serves every request, and the handlers run off the event loop
    assert len(app.state.zoo.models) == 1
    assert app.state.zoo.models.get("simplecnn.web") is app.state.zoo.models.get(ENTRY)
    import inspect

    from zoo_serve import api, pages

    assert not inspect.iscoroutinefunction(api.predict) and not inspect.iscoroutinefunction(pages.try_entry)


def test_uploads_over_the_limits_or_not_pictures_are_refused(client):
    from PIL import Image

    def post(data: bytes, name: str = "x.png"):
        return client.post("/api/predict", data={"model": "simplecnn.web"}, files={"image": (name, data)})

    big = post(os.urandom(300_000))  # over the 200 kB this app was given
    assert big.status_code == 413 and "over the limit" in big.json()["error"]
    page = client.post(f"/registry/{ENTRY}", files={"image": ("x.png", os.urandom(300_000))})
    assert page.status_code == 413 and "over the limit" in one_line(page.text)
    buffer = io.BytesIO()
    Image.new("L", (2000, 1000)).save(buffer, "PNG")  # 2 MP in a few kB: a decompression bomb for this app
    bomb = post(buffer.getvalue())
    assert len(buffer.getvalue()) < 200_000 and bomb.status_code == 413
    assert bomb.json() == {"error": "the image is 2000x1000 = 2,000,000 pixels, over the limit of 1,000,000"}
    text = post(b"#!/bin/sh\necho not a picture\n", "x.sh")
    assert text.status_code == 400 and "not a picture zoo reads" in text.json()["error"]
    assert post(b"").status_code == 400
    no_model = client.post("/api/predict", files={"image": ("x.png", buffer.getvalue())})
    assert no_model.status_code == 400 and no_model.json() == {"error": "model: missing"}


TRAVERSALS = [
    "/static/..%2f..%2f..%2f..%2fetc%2fpasswd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/..%252f..%252fetc%252fpasswd",
    "/static/..%5c..%5c..%5cetc%5cpasswd", "/static/%2E%2E%5Capp.py", "/static/..%2fapp.py",
    "/static/..%2ftemplates%2fbase.html", "/static/%2fetc%2fpasswd", "/static/....%2f%2f....%2f%2fetc%2fpasswd",
    "/static/%c0%ae%c0%ae%2fapp.py", "/models/..%2f..%2fetc%2fpasswd", "/registry/..%2f..%2fetc%2fpasswd",
    "/registry/%2e%2e%2fcnn%2fsimplecnn", "/api/models/..%2f..%2fetc%2fpasswd", "/api/registry/..%2fcnn.web",
]  # fmt: skip


@pytest.mark.parametrize("url", TRAVERSALS)
def test_no_request_reads_a_file_outside_the_app(client, url):
    answer = client.get(url)
    assert answer.status_code in (400, 404), answer.text[:200]
    assert "root:" not in answer.text and "import" not in answer.text and "{% block" not in answer.text


def test_the_apps_own_files_are_served_by_name(client):
    style = client.get("/static/style.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert client.get("/static/style.css", headers={"If-None-Match": style.headers["etag"]}).status_code == 304
    html = client.get("/").text
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html)  # nothing is loaded from elsewhere
    assert client.get("/docs").status_code == 404  # FastAPI's docs page loads scripts from a CDN


def test_errors_are_one_line_pages_or_json(client, monkeypatch):
    unknown = client.get("/models/resnet5000")
    assert unknown.status_code == 404 and "unknown model 'resnet5000'" in one_line(unknown.text).replace("&#39;", "'")
    assert client.get("/api/models/resnet5000").json() == {
        "error": "unknown model 'resnet5000'; did you mean resnet50 or resnet50t or resnet50s?"}
    pulled = client.get("/api/models/hf-hub:alice-digits")  # would pull from the Hub into the registry
    assert pulled.status_code == 400 and "zoo pull" in pulled.json()["error"]
    from zoo_serve import answers

    def broken() -> list:
        raise RuntimeError("disk on fire\nwith a second line and a traceback")

    monkeypatch.setattr(answers, "runs", broken)
    page = client.get("/runs")
    assert page.status_code == 500 and one_line(page.text) == "RuntimeError: disk on fire"
    assert client.get("/api/runs").json() == {"error": "RuntimeError: disk on fire"}
    assert client.get("/nowhere").status_code == 404


def test_runs_and_benchmarks_pages(client, capsys):
    assert client.get("/api/runs").json() == cli(capsys, "runs", "--json")
    runs = client.get("/runs")
    assert "cnn-simplecnn-web" in runs.text and "finished" in runs.text and runs.text.count("<svg") == 2
    bench = client.get("/benchmarks")
    assert bench.status_code == 200 and "<svg" in bench.text and "Pareto front" in bench.text
    records = client.get("/api/benchmarks").json()
    from_file = json.loads(BENCHMARK_FILE.read_text())
    assert [{k: v for k, v in r.items() if k != "serve"} for r in records if r["serve"]["source"] != "registry"] \
        == sorted(from_file, key=lambda r: -r["infer"]["samples_per_sec"])  # fmt: skip
    front = {r["model"] for r in records if r["serve"]["pareto"]}
    assert front == {"efficientnet_b0", "resnet50"}  # faster than anything more accurate, on this CPU
    assert client.get("/api/benchmarks", params={"device": "no such device"}).json() == []
    by_step = client.get("/benchmarks", params={"sort": "step_ms", "order": "asc"}).text
    table = by_step[by_step.index('<table class="benchmarks">'):]
    assert table.index("<td>simplecnn") < table.index("<td>improvedcnn") < table.index("<td>inception_v3")


def test_pareto_front():
    from zoo_serve.charts import pareto_front

    assert pareto_front([(80, 10), (70, 20), (75, 5), (60, 15), (80, 10)]) == [True, True, False, False, True]


def test_the_app_is_read_only(app, client, digits_entry_home, tmp_path):
    """Nothing in the app deletes, moves or writes: every page and endpoint leaves ZOO_HOME's registry and runs
    as they were, and no route takes a method that changes things."""
    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p.relative_to(digits_entry_home)): (p.stat().st_size, p.stat().st_mtime_ns)
                for folder in ("registry", "runs") for p in (digits_entry_home / folder).rglob("*")}  # fmt: skip

    before = snapshot()
    picture = digit_png(tmp_path / "digit.png").read_bytes()
    for url in ("/", "/registry", f"/registry/{ENTRY}", "/runs", "/benchmarks", "/api/registry", "/api/runs",
                f"/api/registry/{ENTRY}", f"/registry/{ENTRY}/confusion.svg"):  # fmt: skip
        assert client.get(url).status_code == 200
    assert client.post("/api/predict", data={"model": ENTRY}, files={"image": ("d.png", picture)}).status_code == 200
    assert snapshot() == before
    from zoo_serve import api, pages

    routes = [r for router in (pages.router, api.router) for r in router.routes]
    assert len(routes) > 15
    assert {m for route in routes for m in route.methods} == {"GET", "POST"}
    posts = {route.path for route in routes if "POST" in route.methods}
    assert posts == {"/api/predict", "/registry/{name}"}


def test_openapi_describes_the_api(client):
    schema = client.get("/openapi.json").json()
    assert {"/api/models", "/api/models/{name}", "/api/registry", "/api/benchmarks", "/api/predict",
            "/api/runs"} <= set(schema["paths"])  # fmt: skip
    assert not [p for p in schema["paths"] if not p.startswith("/api/")]  # the pages are not API
    assert "/api/predict" in client.get("/api").text


def test_loopback_addresses():
    from zoo_serve.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")


def start(home: Path, *args: str) -> tuple[subprocess.Popen, str]:
    from conftest import ctrl_c_default

    proc = subprocess.Popen([sys.executable, "-m", "zoo_core", "serve", "--port", "0", *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=ctrl_c_default,
                            env={**os.environ, "ZOO_HOME": str(home)})  # fmt: skip
    line = proc.stdout.readline()
    assert line.startswith("zoo serve: http://"), line + proc.stderr.read()
    return proc, line.split()[2]


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_zoo_serve_answers_on_loopback_only_and_stops_on_ctrl_c(digits_entry_home):
    import socket
    import urllib.request

    proc, url = start(digits_entry_home)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/models?q=densenet121", timeout=30) as answer:
            assert answer.status == 200 and json.loads(answer.read())[0]["name"] == "densenet121"
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        here = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
        for address in here - {"127.0.0.1"}:  # this machine's other addresses get no answer
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, port))
    finally:
        code, err = stop(proc)
    assert code == 0 and err.strip().splitlines() == ["zoo serve: stopped"]
    anywhere, shown = start(digits_entry_home, "--host", "0.0.0.0")
    time.sleep(0.2)
    code, err = stop(anywhere)
    assert shown.startswith("http://0.0.0.0:") and err.startswith("zoo: warning: serving on 0.0.0.0, so other")
    assert code == 0


def test_a_port_in_use_is_one_line(digits_entry_home):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "zoo_core", "serve", "--port", str(port)], capture_output=True,
                              text=True, timeout=120,
                              env={**os.environ, "ZOO_HOME": str(digits_entry_home)})  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"zoo: error: port {port} on 127.0.0.1 is in use; pick another with --port (0: any free one)"]
