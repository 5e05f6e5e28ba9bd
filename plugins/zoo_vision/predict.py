"""Class names and probabilities for pictures, read exactly as the weights' own library would read them
(``zoo_core.data_config``), in batches; folders are searched for image files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import UsageError, ZooError
from zoo_vision.image_model import ImageModel, as_image, load_model


@dataclass
class Prediction:
    """The classes a model sees in one picture."""

    image: str  # its path, or "<image N>" for a picture given in memory
    probabilities: Any  # a tensor: one probability per class
    top: list[tuple[int, str, float]]  # (index, label, probability), most likely first

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image,
                "top": [{"class": label, "index": i, "probability": round(p, 6)} for i, label, p in self.top]}


def image_files(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Files as given, folders searched (recursively, sorted) for images; a missing path is an error."""
    from zoo_data.image_folder import IMAGE_EXTENSIONS

    found: list[str] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            inside = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))  # fmt: skip
            if not inside:
                raise UsageError(f"{path} holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
            found += inside
        elif path.is_file():
            found.append(str(path))
        else:
            raise UsageError(f"{path}: no such file or folder")
    return found


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def check_settings(top_k: int, batch_size: int, workers: int) -> None:
    if top_k < 1 or batch_size < 1 or workers < 1:
        raise UsageError("--top-k, --batch-size and --workers must be at least 1")


def predict(
    model: str | Any, images: Any, *, top_k: int = 5, batch_size: int = 32, device: str | Any | None = None,
    img_size: int | None = None, precision: str = "fp32", workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
    on_error: Callable[[str, ZooError], None] | None = None,
) -> list[Prediction]:  # fmt: skip
    """Predictions for ``images``: a path, a folder, a PIL image, or a list of them. Pictures are decoded in
    ``workers`` threads and run ``batch_size`` at a time; ``progress(done, total)`` follows each batch. A picture
    that cannot be read raises, or goes to ``on_error(path, error)`` and is left out."""
    import torch

    from zoo_core.plugin_api import autocast, check_precision

    check_settings(top_k, batch_size, workers)
    items = images if isinstance(images, (list, tuple)) else [images]
    sources: list[Any] = []
    for item in items:
        sources += image_files([item]) if isinstance(item, (str, os.PathLike)) else [item]
    loaded: ImageModel = load_model(model, device=device, img_size=img_size)
    check_precision(loaded.device, precision)
    names = [str(s) if isinstance(s, (str, os.PathLike)) else f"<image {i}>" for i, s in enumerate(sources)]

    def read(i: int) -> Any:
        try:
            return loaded.transform(as_image(sources[i]))
        except ZooError as e:
            if on_error is None:
                raise
            on_error(names[i], e)
            return None

    results: list[Prediction] = []
    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for chunk in _batches(list(range(len(sources))), batch_size):
            tensors = list(pool.map(read, chunk))
            kept = [(i, t) for i, t in zip(chunk, tensors, strict=True) if t is not None]
            if kept:
                batch = torch.stack([t for _, t in kept]).to(loaded.device)
                with torch.inference_mode(), autocast(loaded.device, precision):
                    probs = torch.softmax(loaded.forward(batch).float(), dim=1).cpu()
                k = min(top_k, probs.shape[1])
                values, indices = probs.topk(k, dim=1)
                for row, (i, _) in enumerate(kept):
                    top = [(int(j), loaded.label(int(j)), float(p)) for p, j in zip(values[row], indices[row],
                                                                                   strict=True)]  # fmt: skip
                    results.append(Prediction(names[i], probs[row], top))
            done += len(chunk)
            if progress is not None:
                progress(done, len(sources))
    return results
