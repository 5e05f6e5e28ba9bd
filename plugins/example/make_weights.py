"""Train PocketNet on stripes with zoo itself and write the packaged weights of the tag ``stripes``.

Run it where zoo and this plugin are installed (``zoo install -e plugins/example``):

    python plugins/example/make_weights.py

It trains with ``zoo train`` in a throw-away ZOO_HOME, copies the published safetensors file into
``zoo_example/weights/`` and prints the tag's metadata to paste into ``zoo_example/__init__.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TAG = "stripes"
TRAIN = ["train", "example:pocketnet", "--dataset", "stripes", "--trainer", "pocket-sgd", "--epochs", "12",
         "--lr", "0.05", "--batch-size", "64", "--device", "cpu", "--seed", "0", "--tag", "made", "--json"]  # fmt: skip


def main() -> None:
    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "ZOO_HOME": home}
        out = subprocess.run([sys.executable, "-m", "zoo_core", *TRAIN], env=env, check=True, capture_output=True,
                             text=True).stdout  # fmt: skip
        result = json.loads(out)
        entry = Path(result["path"])
        config = json.loads((entry / "config.json").read_text())
        target = HERE / "zoo_example" / "weights" / f"pocketnet-{TAG}.safetensors"
        save_file(load_file(entry / "model.safetensors"), str(target), metadata={"format": "pt"})
    data = target.read_bytes()
    pre = config["preprocessing"]
    meta = {
        "preprocessing": {"input_size": pre["input_size"], "mean": [round(v, 4) for v in pre["mean"]],
                          "std": [round(v, 4) for v in pre["std"]], "crop_pct": 1.0, "crop_mode": "squash"},
        "metrics": {"dataset": "stripes", "split": "test", "top1": result["metrics"]["top1"]},
        "sha256": hashlib.sha256(data).hexdigest(),
        "file_size_mb": round(len(data) / 1e6, 4),
        "recipe": "zoo " + " ".join(TRAIN[:-3]),
    }  # fmt: skip
    print(f"wrote {target.relative_to(HERE)}; the tag's metadata:")
    print(json.dumps(meta, indent=4))


if __name__ == "__main__":
    main()
