"""Try-it predictions: ``zoo_vision.predict`` (the function behind ``zoo predict``) on a model kept loaded, so a
second picture costs a forward pass, and Grad-CAM over the picture (``zoo_vision.gradcam``).

Models are kept in a small LRU cache keyed by the weights' name and checksum, so weights published again under
the same tag are loaded afresh. Each model is used by one request at a time: Grad-CAM hooks a layer, and a
forward pass of another request must not run through that hook. The callers run these functions in a worker
thread, off the event loop.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from zoo_core.plugin_api import UsageError, ZooError, first_line
from zoo_serve.answers import CATALOGUE_LOCK, checked

CACHE_SIZE = 4
MAX_TOP_K = 100


@dataclass
class Loaded:
    """A model ready for pictures, and the lock its users take turns on."""

    model: Any  # zoo_vision.ImageModel
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelCache:
    """The ``size`` models used last, loaded once each."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._models: OrderedDict[tuple[str, str | None], Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str | None], threading.Lock] = {}

    def get(self, name: str) -> Loaded:
        """The model ``name`` (MODEL.TAG, or a model's default weights) names, loaded now or before."""
        found = checked(name)
        if found.tag is None:
            from zoo_core import resolve_weights

            with CATALOGUE_LOCK:
                found = resolve_weights(found)
        assert found.weights is not None
        key = (found.qualified, found.weights.sha256)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one load per model, however many requests ask for it at once
            with self._lock:
                if key in self._models:
                    return self._models[key]
            from zoo_vision import load_model

            with CATALOGUE_LOCK:  # building reads the catalogue, which a refresh of the registry's tags changes
                loaded = Loaded(load_model(found.qualified))
            with self._lock:
                self._models[key] = loaded
                self._loading.pop(key, None)
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
            return loaded

    def __len__(self) -> int:
        return len(self._models)


def prediction(loaded: Loaded, image: Any, top_k: int, filename: str | None = None) -> dict[str, Any]:
    """What ``zoo predict MODEL IMAGE --top-k K --json`` prints for one picture, from ``zoo_vision.predict``
    (the picture named by the name it was uploaded with)."""
    from zoo_vision import predict

    if not 1 <= top_k <= MAX_TOP_K:
        raise UsageError(f"top_k must be 1 to {MAX_TOP_K}, got {top_k}")
    model = loaded.model
    with loaded.lock:
        results = predict(model, [image], top_k=top_k, batch_size=1, workers=1)
    shown = [{**r.to_dict(), "image": filename or r.image} for r in results]
    return {"model": model.qualified, "tag": model.tag, "ref": model.name,
            "runtime": getattr(model.model, "zoo_runtime", {"runtime": "torch"}),
            "preprocessing": model.preprocessing.to_dict(), "top_k": top_k, "predictions": shown,
            "errors": []}  # fmt: skip


def gradcam_overlay(loaded: Loaded, image: Any, target: int | None = None) -> dict[str, Any]:
    """Grad-CAM of the predicted class (or ``target``) over the picture: ``zoo gradcam``'s JSON and the overlay
    as a PNG data URL; without captum, a line that says how to get it."""
    from zoo_vision import gradcam

    try:
        with loaded.lock:
            cam = gradcam(loaded.model, image, target=target)
    except ZooError as e:
        return {"error": first_line(e)}
    from PIL import Image
    from zoo_vision.pictures import overlay_pixels

    pixels = overlay_pixels(cam.image, cam.map.numpy(), cam.seen.numpy())
    picture = Image.fromarray((pixels * 255).round().clip(0, 255).astype("uint8"), "RGB")
    if max(picture.size) < 224:  # a digit of 8x8 pixels is shown large enough to see, pixels kept sharp
        scale = -(-224 // max(picture.size))
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return {**cam.to_dict(), "png": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")}
