"""The model a training run trains: a catalogue model built for the dataset's classes, channels and size, or
pretrained weights with the preprocessing that adapts the data to them; and the backbone freezing of
transfer learning."""

from __future__ import annotations

from typing import Any

from zoo_core.plugin_api import Reporter, UsageError


def _pair(value: Any) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _size_text(size: tuple[int, ...]) -> str:
    return "x".join(str(int(v)) for v in size)


def build_model(config: Any, dataset: Any, reporter: Reporter) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """-> (model, the model_kwargs that rebuild it, preprocessing in the weights schema's form).

    Pretrained weights fix the architecture and their input: the data adapts to them (resized to the
    weights' input size unless ``--img-size`` says otherwise). A model from scratch is built for the data,
    except that a model that sizes itself to its input trains at its design size when the images are
    larger (``--img-size`` overrides).
    """
    from zoo_core import create_model, resolve

    found = resolve(config.model, config.pretrained or False)
    entry, tag, weights = found.entry, found.tag, found.weights
    classes = dataset.num_classes
    data_size = tuple(dataset.image_size)
    kwargs: dict[str, Any] = {}
    if weights is not None:
        pre = weights.preprocessing
        model_kwargs = {**weights.model_kwargs, "num_classes": classes}
        if "input_size" in weights.model_kwargs:  # a model that sized its classifier to its input
            size = _pair(weights.model_kwargs["input_size"])
            if config.img_size and (config.img_size, config.img_size) != size:
                raise UsageError(f"--img-size {config.img_size}: the weights {entry.name}.{tag} were built for "
                                 f"{_size_text(size)} inputs; leave --img-size out")  # fmt: skip
        else:
            size = (config.img_size, config.img_size) if config.img_size else _pair(pre.input_size[1:])
            if size != data_size:
                how = "--img-size" if config.img_size else f"the size {entry.name}.{tag} was trained at"
                reporter.info(f"resizing {_size_text(data_size)} images to {_size_text(size)} ({how}; "
                              "--img-size chooses another)")  # fmt: skip
        model = create_model(found.ref, num_classes=classes)
        if weights.labels and list(weights.labels) != list(dataset.classes) and len(weights.labels) == classes:
            from zoo_core.plugin_api import reset_classifier

            reset_classifier(model, classes, classes)  # same number of classes, another task: a new head
        channels = int(weights.model_kwargs.get("in_chans", pre.channels))
        mean: Any = list(pre.mean) if len(pre.mean) == channels else None
        std: Any = list(pre.std) if len(pre.std) == channels else None
    else:
        design = tuple(entry.input_size[1:])
        size = (config.img_size, config.img_size) if config.img_size else data_size
        if entry.takes_input_size:
            if not config.img_size and (size[0] > design[0] or size[1] > design[1]):
                size = (min(size[0], design[0]), min(size[1], design[1]))
                reporter.info(f"training {entry.name} at its design size {_size_text(size)}, not the images' "
                              f"{_size_text(data_size)} (--img-size chooses another)")  # fmt: skip
            kwargs["input_size"] = list(size)
        min_size = entry.metadata.get("min_input_size")
        if min_size and (size[0] < min_size[1] or size[1] < min_size[2]):
            size = (max(size[0], min_size[1]), max(size[1], min_size[2]))
            reporter.info(f"resizing to {_size_text(size)}, the smallest input {entry.name} takes")
        channels = dataset.channels
        in_chans = channels if channels != entry.input_size[0] else None
        try:
            model = create_model(entry.qualified, num_classes=classes, in_chans=in_chans, **kwargs)
        except Exception as e:  # noqa: BLE001 - a builder without in_chans: give it the channels it has
            if in_chans is None or "in_chans" not in str(e):
                raise
            channels = entry.input_size[0]
            model = create_model(entry.qualified, num_classes=classes, **kwargs)
        model_kwargs = {"num_classes": classes, **kwargs}
        if channels != entry.input_size[0]:
            model_kwargs["in_chans"] = channels
        mean, std = None, None  # from the training split, once it is known (see training.prepare)
    preprocessing = {
        "input_size": [channels, int(size[0]), int(size[1])],
        "mean": mean,
        "std": std,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
        "crop_mode": "squash",  # the training pipeline resizes whole images, as evaluation must
    }
    return model, model_kwargs, preprocessing


def head_modules(model: Any, num_classes: int) -> list[Any]:
    """The classifier a new task trains: timm's ``get_classifier()``, else every Linear producing
    ``num_classes`` outputs (as ``reset_classifier`` picks them)."""
    import torch.nn as nn

    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return [head]
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not heads:
        raise UsageError(f"cannot find the classifier of {type(model).__name__} to train with --freeze-backbone")
    return heads


def freeze_backbone(model: Any, num_classes: int) -> tuple[list[Any], list[Any]]:
    """Freeze everything but the classifier -> (trainable parameters, frozen norm layers to keep in eval)."""
    import torch.nn as nn

    heads = head_modules(model, num_classes)
    trainable = {id(p) for h in heads for p in h.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    in_head = {id(m) for h in heads for m in h.modules()}
    norms = [m for m in model.modules() if id(m) not in in_head
             and isinstance(m, nn.modules.batchnorm._NormBase)]  # fmt: skip
    return [p for p in model.parameters() if p.requires_grad], norms
