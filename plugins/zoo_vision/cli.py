"""``zoo predict``, ``zoo activations`` and ``zoo gradcam``: parse, call the Python API, print, write."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from zoo_core.plugin_api import (
    UsageError,
    ZooError,
    device_option,
    echo_json,
    img_size_option,
    json_option,
    model_argument,
    precision_option,
    the_model,
)


def _default_out(image: str, what: str) -> str:
    """``<image stem>_<what>.png`` in the current folder."""
    return f"{Path(image).stem}_{re.sub(r'[^A-Za-z0-9_-]+', '-', what)}.png"


def _weights_of(loaded: Any) -> dict[str, Any]:
    return {"model": loaded.qualified, "tag": loaded.tag, "ref": loaded.name}


class _Progress:
    """A rich progress bar on stderr, only on a terminal and only for more than one batch."""

    def __init__(self, total: int, batch_size: int) -> None:
        from rich.console import Console

        self.bar: Any = None
        console = Console(stderr=True)
        if console.is_terminal and total > batch_size:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                console=console, transient=True)  # fmt: skip
            self.task = self.bar.add_task("predict", total=total)
            self.bar.start()

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@click.command("predict")
@model_argument
@click.argument("images", nargs=-1, metavar="IMAGE...")
@click.option("--top-k", type=int, default=5, show_default=True, help="Classes to show per image.")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per forward pass.")
@click.option("--workers", type=int, default=4, show_default=True, help="Threads decoding images.")
@device_option
@precision_option
@img_size_option("Feed the model this square side (default: the weights'); the crop share is kept.")
@click.option("--runtime", type=click.Choice(("torch", "onnxruntime")), default="torch", show_default=True,
              help="Run the weights eagerly, or their verified ONNX export in onnxruntime (made if none is stored).")
@click.option("--int8", is_flag=True, help="With --runtime onnxruntime: the int8 export (see `zoo export --int8`).")
@json_option
def predict_cmd(model: str | None, model_option: str | None, images: tuple[str, ...], top_k: int, batch_size: int,
                workers: int, device: str, precision: str, img_size: int | None, as_json: bool,
                runtime: str = "torch", int8: bool = False) -> None:  # fmt: skip
    """Class names and probabilities for images (files or folders), with MODEL.TAG's labels and preprocessing.

    \b
    zoo predict resnet50.imagenet1k_v2 cat.jpg dog.png --top-k 3
    zoo predict simplecnn.run1 photos/ --json
    """
    from zoo_vision.image_model import load_model
    from zoo_vision.predict import check_settings, image_files, predict

    if model_option and model:  # `-m MODEL a.jpg`: click gave the first image to the positional MODEL
        images, model = (model, *images), None
    spec = the_model(model, model_option)
    if not images:
        raise UsageError(f"give one or more images or folders: zoo predict {spec} IMAGE...")
    check_settings(top_k, batch_size, workers)  # bad settings and missing paths fail before the model loads
    files = image_files(images)
    if runtime != "torch" or int8:
        from zoo_export.runtime import check_runtime

        check_runtime(runtime, int8, img_size)
        device = "cpu" if device == "auto" else device
    loaded = load_model(spec, device=device, img_size=img_size)
    if runtime != "torch":
        from zoo_export.verified import runtime_model

        loaded.model = runtime_model(spec, int8=int8, device=loaded.device, model=loaded.model,
                                     log=lambda text: click.echo(f"zoo: {text}", err=True))  # fmt: skip
    failed: list[tuple[str, ZooError]] = []

    def skip(path: str, error: ZooError) -> None:
        failed.append((path, error))
        if len(files) > 1:  # a lone picture's error is the command's own
            click.echo(f"zoo: warning: skipped {error}", err=True)

    bar = _Progress(len(files), batch_size)
    try:
        results = predict(loaded, files, top_k=top_k, batch_size=batch_size, precision=precision, workers=workers,
                          progress=bar, on_error=skip)  # fmt: skip
    finally:
        bar.close()
    if as_json:
        echo_json({**_weights_of(loaded), "runtime": getattr(loaded.model, "zoo_runtime", {"runtime": "torch"}),
                   "preprocessing": loaded.preprocessing.to_dict(), "top_k": top_k,
                   "predictions": [r.to_dict() for r in results],
                   "errors": [{"image": p, "error": str(e)} for p, e in failed]})  # fmt: skip
    else:
        from zoo_core.plugin_api import describe

        click.echo(f"{loaded.name}: {describe(loaded.preprocessing)}")
        width = max((len(label) for r in results for _, label, _ in r.top), default=0)
        for r in results:
            click.echo(r.image)
            for index, label, p in r.top:
                click.echo(f"  {100 * p:6.2f}%  {label:<{width}}  ({index})")
    if len(failed) == len(files) == 1:
        raise failed[0][1]
    if len(failed) == len(files):
        raise ZooError(f"none of the {len(files)} images could be read")
    if failed:
        raise ZooError(f"{len(failed)} of {len(files)} images could not be read")


@click.command("activations")
@model_argument
@click.option("--image", type=click.Path(dir_okay=False), help="The picture to read.")
@click.option("--layer", help="A layer with a feature-map output (default: the first convolution).")
@click.option("--out", type=click.Path(dir_okay=False),
              help="Write the grid here (default: IMAGE_activations_LAYER.png).")
@click.option("--max-maps", type=int, default=64, show_default=True, help="Feature maps to draw (the first N).")
@click.option("--list-layers", is_flag=True, help="List the layers with a feature-map output, and stop.")
@device_option
@img_size_option("Feed the model this square side (default: the weights'); the crop share is kept.")
@json_option
def activations_cmd(model: str | None, model_option: str | None, image: str | None, layer: str | None,
                    out: str | None, max_maps: int, list_layers: bool, device: str, img_size: int | None,
                    as_json: bool) -> None:  # fmt: skip
    """A grid of one layer's feature maps for a picture, or the layers to choose from (--list-layers).

    \b
    zoo activations resnet18.tv_in1k --image cat.jpg --layer layer1.0.conv1 --out maps.png
    zoo activations resnet18 --list-layers
    """
    from zoo_core.plugin_api import check_plot
    from zoo_vision.activations import activations
    from zoo_vision.activations import list_layers as layers_of
    from zoo_vision.image_model import as_image, load_model

    spec = the_model(model, model_option)
    if list_layers:
        # The layers are the architecture's: no weights are read (or downloaded); a tag named keeps its sizes.
        rows = layers_of(load_model(spec, pretrained=False, device=device, img_size=img_size))
        if as_json:
            echo_json(rows)
            return
        from zoo_core.plugin_api import format_table

        click.echo(format_table(["layer", "type", "channels", "size", "stride", "layout"],
                                [(r["name"], r["type"], r["channels"], "x".join(map(str, r["size"])), r["stride"],
                                  r["layout"]) for r in rows]))  # fmt: skip
        return
    if not image:
        raise UsageError(f"give a picture: zoo activations {spec} --image PATH (or --list-layers)")
    if max_maps < 1:
        raise UsageError(f"--max-maps must be at least 1, got {max_maps}")
    if out:
        check_plot(out, "--out")
    picture = as_image(image)  # a picture that cannot be read fails before the model loads
    loaded = load_model(spec, device=device, img_size=img_size)
    result = activations(loaded, picture, layer=layer)
    from zoo_vision.pictures import save_figure

    if not out:
        out = _default_out(image, f"activations_{result.layer}")
        check_plot(out, "--out")
    save_figure(result.figure(max_maps), out)
    info = result.to_dict(max_maps)
    if as_json:
        echo_json({**_weights_of(loaded), "image": image, **info, "out": out})
        return
    size = "x".join(map(str, info["size"]))
    click.echo(f"{loaded.name} {info['layer']} ({info['type']}): {info['channels']} maps of {size}, stride "
               f"{info['stride']}; values {info['min']:.3g} to {info['max']:.3g}, mean {info['mean']:.3g}")  # fmt: skip
    click.echo(f"wrote {out} ({info['shown']} maps)")


@click.command("gradcam")
@model_argument
@click.option("--image", type=click.Path(dir_okay=False), required=False, help="The picture to explain.")
@click.option("--target", help="The class to explain, by label or index (default: the predicted class).")
@click.option("--layer", help="The layer to explain (default: the plugin's, timm's last feature stage, else the "
              "last feature map).")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False), help="Write the heat map over the picture, at its size "
              "(default: IMAGE_gradcam.png).")  # fmt: skip
@click.option("--save-map", type=click.Path(dir_okay=False), metavar="FILE.npy",
              help="Write the map (float32, the picture's height x width, in [0, 1]) as a NumPy file.")
@click.option("--alpha", type=float, default=0.5, show_default=True, help="Opacity of the heat map.")
@device_option
@img_size_option("Feed the model this square side (default: the weights'); the crop share is kept.")
@json_option
def gradcam_cmd(model: str | None, model_option: str | None, image: str | None, target: str | None,
                layer: str | None, out: str | None, save_map: str | None, alpha: float, device: str,
                img_size: int | None, as_json: bool) -> None:  # fmt: skip
    """Grad-CAM: the parts of a picture that raise a class's score, as a heat map over the picture.

    \b
    zoo gradcam resnet18.tv_in1k --image cat.jpg
    zoo gradcam simplecnn.run1 --image ship.png --target ship --save-map ship.npy --json
    """
    from zoo_core.plugin_api import check_output, check_plot
    from zoo_vision.gradcam import gradcam, require_captum
    from zoo_vision.image_model import as_image, load_model

    spec = the_model(model, model_option)
    if not image:
        raise UsageError(f"give a picture: zoo gradcam {spec} --image PATH")
    if not 0 <= alpha <= 1:
        raise UsageError(f"--alpha must be in [0, 1], got {alpha}")
    out = out or _default_out(image, "gradcam")
    check_plot(out, "--out")
    if save_map:
        if Path(save_map).suffix.lower() != ".npy":
            raise UsageError(f"--save-map {save_map}: the map is written as a NumPy file; name it FILE.npy")
        check_output(save_map, "--save-map")
    require_captum()  # before the model loads
    picture = as_image(image)
    loaded = load_model(spec, device=device, img_size=img_size)
    cam = gradcam(loaded, picture, target=target, layer=layer)
    from zoo_vision.pictures import save_figure

    save_figure(cam.figure(alpha), out)
    if save_map:
        _write_map(cam.map, save_map)
    if as_json:
        echo_json({**cam.to_dict(), **_weights_of(loaded), "image": image, "out": out, "map": save_map})
        return
    chosen = f"{cam.label} {100 * cam.probability:.2f}% (index {cam.index})"
    if cam.index != cam.predicted:
        chosen += f"; the model predicts {cam.predicted_label} {100 * cam.predicted_probability:.2f}%"
    click.echo(f"{loaded.name}: {chosen}")
    where = f"peak at x={cam.peak[0]}, y={cam.peak[1]}" if cam.peak else "the map is zero everywhere: no part of " \
        "the picture raises this class's score at this layer"
    click.echo(f"  layer {cam.layer} ({cam.layer_source}); {where}")
    click.echo(f"wrote {out}" + (f" and {save_map}" if save_map else ""))


def _write_map(heat: Any, path: str) -> None:
    import io

    import numpy as np

    from zoo_core.plugin_api import write_output

    buffer = io.BytesIO()
    np.save(buffer, heat.numpy().astype(np.float32))
    write_output(path, buffer.getvalue(), "--save-map")
