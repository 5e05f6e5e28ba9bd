"""`zoo serve` in a real browser: Debian's chromium, headless, driven by Playwright's Python API (the system browser
through ``executable_path``; Playwright downloads nothing). One server and one browser for the module.

Skipped only where chromium is missing and CI is unset; in CI (.ci/run installs chromium and sets CI) a missing
browser fails."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_serve import BENCHMARK_FILE, ENTRY, digit_png

pytest.importorskip("fastapi")
CHROMIUM = next(filter(None, (os.environ.get("ZOO_CHROMIUM"), shutil.which("chromium"),
                              shutil.which("chromium-browser"))), None)  # fmt: skip
def _missing() -> str | None:
    if CHROMIUM is None:
        return "the chromium package is not installed (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return 'playwright is not installed (pip install -e ".[dev]")'
    return None


if _missing():
    if os.environ.get("CI"):
        raise RuntimeError(f"the browser tests must run in CI: {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)


@pytest.fixture(scope="module")
def server(digits_entry_home: Path):
    """`zoo serve --port 0` over the digits registry, with a benchmark file; its address."""
    from conftest import ctrl_c_default

    proc = subprocess.Popen([sys.executable, "-m", "zoo_core", "serve", "--port", "0", "--benchmarks",
                             str(BENCHMARK_FILE)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_default,
                            env={**os.environ, "ZOO_HOME": str(digits_entry_home)})  # fmt: skip
    line = proc.stdout.readline()
    assert line.startswith("zoo serve: http://127.0.0.1:"), line + proc.stderr.read()
    yield line.split()[2].rstrip("/")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    """A fresh page; every JavaScript error or failed request it logs fails the test."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    tab = context.new_page()
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    tab.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    yield tab
    context.close()
    assert problems == []


def test_search_densenet_and_open_densenet121(page, server):
    page.goto(server + "/")
    page.fill('input[type="search"][name="q"]', "densenet")
    page.press('input[type="search"][name="q"]', "Enter")
    page.wait_for_url("**/?q=densenet*")
    link = page.get_by_role("link", name="densenet121", exact=True)
    assert link.is_visible()
    link.click()
    page.wait_for_url("**/models/*densenet121")
    assert page.inner_text("h1") == "densenet121"
    assert page.inner_text("td.params") == "7,978,856"


def test_registry_entry_shows_its_top1_and_classifies_a_digit_as_zoo_predict_does(
    page, server, digits_entry_home, tmp_path, monkeypatch, capsys
):
    from zoo_core import plugins
    from zoo_core.cli import main

    picture = digit_png(tmp_path / "digit.png")
    monkeypatch.setenv("ZOO_HOME", str(digits_entry_home))
    plugins.reset()
    assert main(["predict", ENTRY, str(picture), "--json"]) == 0
    best = json.loads(capsys.readouterr().out)["predictions"][0]["top"][0]
    assert main(["registry", "list", "--json"]) == 0
    top1 = json.loads(capsys.readouterr().out)[0]["metrics"]["top1"]

    page.goto(server + "/registry")
    page.get_by_role("link", name=ENTRY).click()
    page.wait_for_url("**/registry/*")
    assert page.inner_text("h1") == ENTRY
    assert page.inner_text("strong.top1") == f"{top1:.2f}%"
    page.set_input_files('input[type="file"]', str(picture))
    page.get_by_role("button", name="Classify").click()
    page.wait_for_selector(".result table.top")
    first = page.locator(".result table.top tbody tr").first.inner_text().split()
    assert first[0] == best["class"] and first[1] == f"{100 * best['probability']:.2f}%"
    assert page.locator("figure.cam img").is_visible()


def test_benchmarks_page_renders_with_its_pareto_front(page, server):
    page.goto(server + "/benchmarks")
    assert page.locator("figure.scatter svg circle").count() >= 5
    assert page.locator("table.benchmarks tbody tr").count() == 7
    page.select_option('select[name="precision"]', "fp32")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/benchmarks?*precision=fp32*")
    front = page.locator("table.benchmarks tr.focus td:first-child").all_inner_texts()
    assert sorted(front) == ["efficientnet_b0", "resnet50"]
