"""The screenshots of `zoo serve` in docs/ (and the README's): a running server's pages in headless chromium.

    zoo serve --port 8765 --benchmarks benchmarks/results/cpu_core_fp32.json &
    python docs/screenshots.py --url http://127.0.0.1:8765 --entry cnn:simplecnn.digits-8ep --picture digit.png

The entry is any registry entry of the running server's ZOO_HOME; the picture is tried on its page.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8765")
    parser.add_argument("--entry", required=True)
    parser.add_argument("--picture", type=Path, required=True)
    parser.add_argument("--chromium", default=shutil.which("chromium"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, headless=True)
        page = browser.new_page(viewport={"width": 1200, "height": 820})
        shots = {"serve-home.png": "/?q=densenet", "serve-model.png": "/models/densenet121",
                 "serve-benchmarks.png": "/benchmarks", "serve-runs.png": "/runs"}  # fmt: skip
        for name, path in shots.items():
            page.goto(args.url + path)
            page.screenshot(path=DOCS / name)
        page.goto(f"{args.url}/registry/{args.entry}")
        page.set_input_files('input[type="file"]', str(args.picture))
        page.get_by_role("button", name="Classify").click()
        page.wait_for_selector(".result")
        page.set_viewport_size({"width": 1200, "height": 1500})
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=DOCS / "serve-entry.png")
        browser.close()


if __name__ == "__main__":
    main()
