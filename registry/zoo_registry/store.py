"""The local registry of published weights: ``$ZOO_HOME/registry/<plugin>/<model>/<tag>``.

An entry holds ``model.safetensors``, ``config.json`` (how to rebuild the model, its labels and
preprocessing, the weights' sha256 and size), ``metrics.json`` and a ``README.md`` model card.

Writes are atomic at the level of the whole entry: a publish is staged in ``registry/.staging/`` (same
file system), fsynced, and renamed into place under a per-entry lock (``registry/.locks/``). Replacing a
tag renames the old folder aside (``<model>/.<tag>.old``), renames the new one in and then deletes the
old; a process killed between the two renames leaves the old entry aside, and the next reader or writer
that takes the lock renames it back. Readers take the lock shared while they load weights, so they never
mix one publish's config with another's weights.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo_core.plugin_api import (
    PREPROCESSING_FIELDS,
    TAG_RE,
    LockBusy,
    ModelRef,
    SchemaError,
    UnknownNameError,
    UsageError,
    WeightsError,
    check_tag,
    file_lock,
    first_line,
    get_catalogue,
    parse,
    records,
    refresh_weights,
    registry_dir,
    utc_now,
    validate_tag,
)

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
SCHEMA = 1
STALE_SECONDS = 6 * 3600  # leftovers of killed publishes older than this are deleted


@dataclass
class PublishedEntry:
    """One published set of weights and what was recorded with them."""

    model_name: str  # qualified, "cnn:simplecnn"
    tag: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def sha256(self) -> str:
        return str(self.config["sha256"])

    @property
    def ref(self) -> str:
        """``plugin:model.tag``, the name ``create_model`` and ``zoo eval`` accept."""
        return f"{self.model_name}.{self.tag}"

    def to_dict(self, full: bool = False) -> dict[str, Any]:
        d = {
            "model": self.model_name,
            "tag": self.tag,
            "ref": self.ref,
            "path": str(self.path),
            "num_classes": self.config.get("num_classes"),
            "sha256": self.sha256,
            "size_bytes": self.config.get("size_bytes"),
            "created": self.config.get("created"),
            "metrics": self.metrics,
        }
        if full:
            d["config"] = self.config
            d["files"] = sorted(p.name for p in self.path.iterdir())
        return d


# -- names and places --------------------------------------------------------------------------------


def registry_root() -> Path:
    return registry_dir()


def _entry_dir(plugin: str, model: str, tag: str) -> Path:
    return registry_root() / plugin / model / tag


def _aside_dir(entry_dir: Path) -> Path:
    return entry_dir.parent / f".{entry_dir.name}.old"


def _lock_path(entry_dir: Path) -> Path:
    root = entry_dir.parent.parent.parent
    return root / ".locks" / entry_dir.parent.parent.name / entry_dir.parent.name / f"{entry_dir.name}.lock"


def _check_tag(tag: str) -> None:
    check_tag(tag)  # the one rule, checked before anything touches the disk


def qualify(model_name: str) -> tuple[str, str]:
    """``[plugin:]model`` -> (plugin, model); a bare name goes through the catalogue, or, for a model
    whose plugin is gone, through the registry's own folders."""
    ref = parse(model_name)
    if ref.is_source or ref.tag is not None:
        raise UsageError(f"expected a model name ([plugin:]name), got {model_name!r}")
    return _qualified(ref)


def _qualified(ref: ModelRef) -> tuple[str, str]:
    if ref.plugin is not None:
        return ref.plugin, ref.name
    try:
        entry = get_catalogue().get("model", ref.name)
        return entry.plugin, entry.name
    except UnknownNameError:
        root = registry_root()
        found = [p.name for p in _subdirs(root) if (p / ref.name).is_dir()] if root.is_dir() else []
        if len(found) != 1:
            raise
        return found[0], ref.name


def split_ref(text: str, default: bool = False) -> tuple[str, str, str]:
    """Any name of published weights (``MODEL.TAG``, ``plugin:model.tag``, ``hf-hub:OWNER/REPO``; with
    ``default``, a bare model name means its default weights) -> (plugin, model, tag). A ``MODEL.TAG`` need not be
    a live tag (a broken entry is still one to show or remove)."""
    ref = parse(text)
    if ref.is_source or ref.version is not None or (default and ref.tag is None):
        from zoo_core import resolve

        ref = resolve(ref, default).ref
    if not ref.tag:
        raise UsageError(f"expected MODEL.TAG (for example simplecnn.mytag), got {text!r}")
    return (*_qualified(ref), ref.tag)


def _subdirs(path: Path) -> list[Path]:
    """Visible sub-folders, sorted; dot-folders are zoo's own (staging, locks, replaced entries)."""
    try:
        with os.scandir(path) as it:
            return sorted(Path(e.path) for e in it if not e.name.startswith(".") and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


# -- reading -----------------------------------------------------------------------------------------


# What an entry's JSON files must hold: far above anything zoo writes, far below what would hurt to read.
MAX_CLASSES = 10**7
MAX_LABELS = 100_000  # as many as a Hub config may bring (zoo_registry.hub_files)
MAX_SIDE = 16_384
_TEXT = records.string(1000, null=True)
_SIDE = records.integer(1, MAX_SIDE, null=True)
_STATS = records.list_of(records.number(), 64, min_len=1, null=True)
# null only where the readers take it for absent (they read those fields with .get)
CONFIG_SPEC = records.obj({
    "schema": records.version(SCHEMA),
    "architecture": records.string(201, min_len=3, required=True),
    "tag": records.string(200, min_len=1, required=True),
    "model_kwargs": records.obj(required=True),
    "num_classes": records.integer(1, MAX_CLASSES, null=True),
    "labels": records.list_of(records.string(1000), MAX_LABELS, null=True),
    "preprocessing": records.obj({
        "input_size": records.list_of(records.integer(1, MAX_SIDE), 3, min_len=3, null=True),
        "mean": _STATS, "std": _STATS, "interpolation": records.string(32, null=True),
        "crop_mode": records.string(32, null=True), "crop_pct": records.number(null=True), "resize_size": _SIDE,
    }, null=True),
    "weights_file": records.string(choices=(WEIGHTS_FILE,), null=True),
    "format": records.string(choices=("safetensors",), null=True),
    "sha256": records.string(64, pattern="[0-9a-f]{64}", label="a sha256 (64 lowercase hex digits)", required=True),
    "size_bytes": records.integer(0, null=True), "num_params": records.integer(0, null=True),
    "training": records.obj(null=True), "pushed": records.list_of(records.obj(), 10_000, null=True),
    **dict.fromkeys(("created", "zoo_version", "torch_version", "source", "origin", "revision", "hf_hub_id",
                     "license", "base_model"), _TEXT),
})  # fmt: skip
METRICS_SPEC = records.obj({
    "top1": records.number(0, 100, null=True), "top5": records.number(0, 100, null=True),
    "topk": records.integer(1, null=True), "num_samples": records.integer(0, null=True), "dataset": _TEXT,
    "split": _TEXT,
})  # fmt: skip


def read_entry(entry_dir: Path) -> PublishedEntry:
    """Read one entry's JSON files (never the weights); OSError, or a RecordError (a ValueError) that names
    the file and the field, when they are broken."""
    plugin, model, tag = entry_dir.parent.parent.name, entry_dir.parent.name, entry_dir.name
    config = records.load(entry_dir / CONFIG_FILE, CONFIG_SPEC)
    qualified = f"{plugin}:{model}"
    if config["architecture"] != qualified or config["tag"] != tag:
        raise records.RecordError(
            f"{entry_dir / CONFIG_FILE} describes {records.printable(config['architecture'], 120)}."
            f"{records.printable(config['tag'], 120)}, not {qualified}.{tag} (was the folder moved by hand?)"
        )
    classes, labels = config.get("num_classes"), config.get("labels") or []
    kwargs_classes = config["model_kwargs"].get("num_classes", classes)
    if (labels and len(labels) != classes) or kwargs_classes != classes:
        raise records.RecordError(
            f"{entry_dir / CONFIG_FILE} disagrees with itself: num_classes {classes!r}, {len(labels)} labels, "
            f"model_kwargs num_classes {records.shown(kwargs_classes)}"
        )
    metrics = records.load(entry_dir / METRICS_FILE, METRICS_SPEC, missing={})
    return PublishedEntry(qualified, tag, entry_dir, config, metrics)


def weights_metadata(entry: PublishedEntry) -> dict[str, Any]:
    """The entry as pretrained-tag metadata in the weights schema (``zoo_core.weights``)."""
    config = entry.config
    recorded = config.get("preprocessing") or {}
    # zoo's training resizes whole images to the input size (no crop); entries older than the schema say
    # nothing of it.
    preprocessing = {"crop_pct": 1.0, "crop_mode": "squash", **{k: v for k, v in recorded.items()
                                                                 if k in PREPROCESSING_FIELDS}}  # fmt: skip
    meta = {
        "source": config.get("source") or "local",
        "path": str(entry.path),
        "sha256": entry.sha256,
        "size_bytes": config.get("size_bytes"),
        "model_kwargs": config["model_kwargs"],
        "num_classes": config.get("num_classes"),
        "labels": config.get("labels") or None,
        "metrics": entry.metrics,
        "preprocessing": preprocessing,
        "created": config.get("created"),
        "license": config.get("license"),
        "hf_hub_id": config.get("hf_hub_id"),
        "origin": config.get("origin"),
        "revision": config.get("revision"),
        "base_model": config.get("base_model"),
    }
    return {k: v for k, v in meta.items() if v is not None}


_WARNED: set[tuple[str, str]] = set()


def warn_skipped(path: Path, error: BaseException) -> None:
    """Say once per process that a broken entry was skipped (the weights hook runs again after each publish)."""
    msg = first_line(error)
    if (str(path), msg) not in _WARNED:
        _WARNED.add((str(path), msg))
        print(f"zoo: warning: registry entry {path} skipped: {msg} (`zoo doctor --fix` moves it aside)",
              file=sys.stderr)  # fmt: skip


def _recover(entry_dir: Path) -> None:
    """Finish a replace that was killed between its two renames (the caller holds the entry lock)."""
    aside = _aside_dir(entry_dir)
    if aside.is_dir():
        if entry_dir.is_dir():  # the new entry made it in; only the delete of the old one was lost
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(aside, entry_dir)


def _try_recover(entry_dir: Path) -> None:
    """Recover without waiting: a writer holding the lock is mid-replace and will finish it."""
    try:
        with file_lock(_lock_path(entry_dir), timeout=0):
            _recover(entry_dir)
    except (LockBusy, OSError):
        pass


def scan(on_error: Callable[[Path, BaseException], None] | None = warn_skipped) -> list[PublishedEntry]:
    """Every entry, sorted by model and tag, reading only JSON; a broken entry goes to ``on_error``."""
    entries = []
    for plugin_dir in _subdirs(registry_root()):
        for model_dir in _subdirs(plugin_dir):
            names = set(os.listdir(model_dir))
            for name in names:
                if name.startswith(".") and name.endswith(".old") and name[1:-4] not in names:
                    _try_recover(model_dir / name[1:-4])
            for entry_dir in _subdirs(model_dir):
                try:
                    entries.append(read_entry(entry_dir))
                except (OSError, ValueError) as e:
                    if on_error is not None:
                        on_error(entry_dir, e)
    return entries


def list_entries() -> list[PublishedEntry]:
    """Every published entry (broken ones are reported on stderr and left out)."""
    return scan()


def get(model_name: str, tag: str) -> PublishedEntry:
    """The entry ``model_name``.``tag``; UnknownNameError (with close tags) when there is none."""
    plugin, model = qualify(model_name)
    _check_tag(tag)
    entry_dir = _entry_dir(plugin, model, tag)
    if not entry_dir.is_dir() and _aside_dir(entry_dir).is_dir():
        _try_recover(entry_dir)
    if not entry_dir.is_dir():
        import difflib

        tags = [p.name for p in _subdirs(entry_dir.parent)]
        close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.5) or tags[:4]  # else: the tags there are
        suggestions = [f"{plugin}:{model}.{t}" for t in close]
        raise UnknownNameError("registry entry", f"{plugin}:{model}.{tag}", suggestions)
    try:
        return read_entry(entry_dir)
    except records.NewerFormatError as e:  # not broken: this zoo is too old to read it
        raise WeightsError(str(e)) from None
    except (OSError, ValueError) as e:
        hint = "publish it again or `zoo registry remove` it"
        raise WeightsError(f"{entry_dir}: broken entry ({e}); {hint}") from None


# -- loading -----------------------------------------------------------------------------------------


def _load(model: Any, entry_dir: Path, sha256: str | None) -> None:
    from zoo_registry.weights_file import load_weights

    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(_lock_path(entry_dir), shared=True))
        except OSError:  # a read-only registry: nobody can be replacing the entry either
            pass
        if sha256 is None:
            try:
                sha256 = read_entry(entry_dir).sha256
            except (OSError, ValueError) as e:
                raise WeightsError(f"{entry_dir / CONFIG_FILE}: cannot read the entry ({e})") from None
        load_weights(model, entry_dir / WEIGHTS_FILE, sha256)


def load_published(entry_dir: str | os.PathLike[str], model: Any) -> None:
    """The catalogue's loader for an entry: reads its current config.json, then loads the weights after
    checking their sha256, format, keys and shapes."""
    _load(model, Path(entry_dir), None)


# -- writing -----------------------------------------------------------------------------------------


def _json_copy(what: str, value: Any, lenient: bool = False) -> Any:
    try:
        return json.loads(json.dumps(value, default=str if lenient else None))
    except (TypeError, ValueError) as e:
        raise UsageError(f"{what} must be JSON-serialisable ({e})") from None


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_text(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True) + "\n"


def model_ref(qualified: str) -> str:
    """The name to show in usage examples: bare where the bare name means this model."""
    try:
        return get_catalogue().display_ref(qualified, None)
    except UnknownNameError:
        return qualified


def stale_leftovers(root: Path) -> list[tuple[Path, str]]:
    """(folder, what left it) for each folder in .staging and .trash older than ``STALE_SECONDS``: what
    killed publishes, pushes and removes left. A younger one may belong to one still running (a large file
    being written does not touch its folder's mtime)."""
    now, found = time.time(), []
    for folder, what in ((".staging", "a publish was killed"), (".trash", "a remove was killed")):
        for child in sorted(_subdirs_all(root / folder)):
            try:
                if now - child.stat().st_mtime > STALE_SECONDS:
                    found.append((child, what))
            except OSError:  # finished (renamed away) while we looked
                pass
    return found


def _clean_stale(root: Path) -> None:
    """Delete what killed publishes and removes left in .staging and .trash."""
    for child, _ in stale_leftovers(root):
        shutil.rmtree(child, ignore_errors=True)


def _subdirs_all(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return []


def _exists_error(plugin: str, model: str, tag: str, entry_dir: Path) -> UsageError:
    return UsageError(
        f"{plugin}:{model}.{tag} is already published ({entry_dir}); choose another tag, remove it "
        f"(`zoo registry remove {plugin}:{model}.{tag} --yes`) or replace it (`--overwrite`)"
    )


def _check_rebuild(entry: Any, tag: str, model_kwargs: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse to publish weights that ``create_model`` could not load back from ``model_kwargs``."""
    import torch

    from zoo_registry.weights_file import describe_mismatch, unwrap

    try:
        with torch.device("meta"):  # no memory, no init cost
            rebuilt = entry.build(**model_kwargs)
    except Exception:  # noqa: BLE001 - some builders need real tensors; try again on the CPU
        try:
            rebuilt = entry.build(**model_kwargs)
        except Exception as e:  # noqa: BLE001
            raise UsageError(
                f"cannot rebuild {entry.qualified} from model_kwargs {model_kwargs}: {first_line(e, typed=True)}"
            ) from None
    model_shapes = {k: tuple(v.shape) for k, v in unwrap(rebuilt).state_dict().items()}
    problem = describe_mismatch(shapes, model_shapes)
    if problem:
        raise WeightsError(
            f"{entry.qualified}.{tag}: the model built from model_kwargs {model_kwargs} does not fit these "
            f"weights ({problem}); pass the arguments the model was built with"
        )


# Provenance a store other than training may record with an entry (weights schema fields, see weights_metadata).
PROVENANCE_KEYS = ("source", "origin", "revision", "hf_hub_id", "license", "base_model")


@dataclass
class _Checked:
    """A publish's arguments, checked against the catalogue and the weights schema before anything is written."""

    plugin: str
    name: str
    tag: str
    catalogue_entry: Any
    model_kwargs: dict[str, Any]
    labels: list[str]
    num_classes: int
    preprocessing: dict[str, Any]
    metrics: dict[str, Any]
    training: dict[str, Any] | None

    @property
    def qualified(self) -> str:
        return f"{self.plugin}:{self.name}"


def _check_publish(model_name: str, tag: str, model_kwargs: dict[str, Any], labels: list[str],
                   preprocessing: dict[str, Any], metrics: dict[str, Any] | None,
                   training: dict[str, Any] | None) -> _Checked:  # fmt: skip
    plugin, name = qualify(model_name)
    qualified = f"{plugin}:{name}"
    _check_tag(tag)
    # The published weights replace any the builder would download, so never ask it for them.
    model_kwargs = _json_copy("model_kwargs", {k: v for k, v in model_kwargs.items() if k != "pretrained"})
    preprocessing = _json_copy("preprocessing", dict(preprocessing or {}))
    metrics = _json_copy("metrics", dict(metrics or {}))
    training = _json_copy("training", training, lenient=True) if training is not None else None
    labels = [str(label) for label in labels]
    num_classes = int(model_kwargs.get("num_classes", len(labels)))
    if labels and len(labels) != num_classes:
        raise UsageError(f"{qualified}.{tag}: {len(labels)} labels for a model with {num_classes} classes")

    catalogue_entry = get_catalogue().get("model", qualified)
    try:  # what the catalogue will register must fit the weights schema: fail now, before writing
        checked = validate_tag(qualified, tag, {"source": "local", "num_classes": num_classes, "labels": labels or None,
                                                "model_kwargs": model_kwargs, "preprocessing": {
                                                    "crop_pct": 1.0, "crop_mode": "squash", **preprocessing}},
                               catalogue_entry.tag_defaults())  # fmt: skip
    except SchemaError as e:
        raise UsageError(str(e)) from None
    if tag in catalogue_entry.pretrained and tag not in catalogue_entry.loaders:
        raise UsageError(f"{qualified} already has its own pretrained tag {tag!r}; choose another tag")
    return _Checked(plugin, name, tag, catalogue_entry, model_kwargs, labels, num_classes, checked["preprocessing"],
                    metrics, training)  # fmt: skip


def _stage(c: _Checked, overwrite: bool) -> tuple[Path, Path]:
    """The entry's folder and a fresh staging folder for it, once ``overwrite`` allows the publish."""
    entry_dir = _entry_dir(c.plugin, c.name, c.tag)
    if entry_dir.is_dir() and not overwrite:
        raise _exists_error(c.plugin, c.name, c.tag, entry_dir)
    root = registry_root()
    (root / ".staging").mkdir(parents=True, exist_ok=True)
    _clean_stale(root)
    staging = Path(tempfile.mkdtemp(dir=root / ".staging", prefix=f"{c.plugin}-{c.name}-{c.tag}-"))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; a published entry is meant to be read
    return entry_dir, staging


def _finish(c: _Checked, staging: Path, entry_dir: Path, num_params: int | None, overwrite: bool,
            extra: dict[str, Any] | None = None) -> PublishedEntry:  # fmt: skip
    """Write config, metrics and card next to the staged weights, then rename the entry into place."""
    import torch

    from zoo_core import __version__
    from zoo_registry.model_card import render
    from zoo_registry.weights_file import sha256_file

    config = {
        "schema": SCHEMA,
        "architecture": c.qualified,
        "tag": c.tag,
        "model_kwargs": c.model_kwargs,
        "num_classes": c.num_classes,
        "labels": c.labels,
        "preprocessing": c.preprocessing,
        "weights_file": WEIGHTS_FILE,
        "format": "safetensors",
        "sha256": sha256_file(staging / WEIGHTS_FILE),
        "size_bytes": (staging / WEIGHTS_FILE).stat().st_size,
        "num_params": num_params,
        "zoo_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "created": utc_now(),
        "training": c.training,
        **(extra or {}),
    }
    if num_params is None:  # weights from elsewhere that did not say: better absent than wrong
        del config["num_params"]
    _write_text(staging / CONFIG_FILE, _dump(config))
    _write_text(staging / METRICS_FILE, _dump(c.metrics))
    _write_text(staging / CARD_FILE, render(config, c.metrics, model_ref(c.qualified)))
    _fsync_dir(staging)
    with file_lock(_lock_path(entry_dir)):
        _recover(entry_dir)
        if entry_dir.is_dir():
            if not overwrite:  # another process published the tag while we were writing
                raise _exists_error(c.plugin, c.name, c.tag, entry_dir)
            aside = _aside_dir(entry_dir)
            os.rename(entry_dir, aside)
            try:
                os.rename(staging, entry_dir)
            except BaseException:
                os.rename(aside, entry_dir)
                raise
            _fsync_dir(entry_dir.parent)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            entry_dir.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, entry_dir)
            _fsync_dir(entry_dir.parent)
    refresh_weights()
    return PublishedEntry(c.qualified, c.tag, entry_dir, config, c.metrics)


def publish(
    model: Any,
    *,
    model_name: str,
    tag: str,
    model_kwargs: dict[str, Any],
    labels: list[str],
    preprocessing: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> PublishedEntry:
    """Publish ``model``'s weights as ``model_name``.``tag``; the tag is then a pretrained tag of the model.

    ``model_kwargs`` must rebuild the model (checked before anything is written). The process's catalogue
    registers the new tag at once, so ``create_model(name, pretrained=tag)`` sees it.
    """
    from zoo_registry.weights_file import save_weights, state_tensors

    c = _check_publish(model_name, tag, model_kwargs, labels, preprocessing, metrics, training)
    tensors = state_tensors(model)
    _check_rebuild(c.catalogue_entry, tag, c.model_kwargs, {k: tuple(v.shape) for k, v in tensors.items()})
    entry_dir, staging = _stage(c, overwrite)
    try:
        save_weights(tensors, staging / WEIGHTS_FILE, {"zoo_model": c.qualified, "zoo_tag": tag})
        num_params = sum(p.numel() for p in model.parameters())
        return _finish(c, staging, entry_dir, num_params, overwrite)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def publish_file(
    weights: str | os.PathLike[str],
    *,
    model_name: str,
    tag: str,
    model_kwargs: dict[str, Any],
    labels: list[str],
    preprocessing: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    num_params: int | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> PublishedEntry:
    """Publish an existing safetensors file byte for byte (weights fetched from elsewhere, say the Hub).

    The file is checked like ``publish`` checks a model (it must fit the model ``model_kwargs`` build) and
    copied, never re-serialised, so its sha256 stays what its source says. ``provenance`` records where it
    came from (``PROVENANCE_KEYS``: ``source``, ``origin``, ``revision``, ``hf_hub_id``, ``license``,
    ``base_model``); these become the tag's weights-schema fields.
    """
    from zoo_registry.weights_file import tensor_shapes

    provenance = {k: v for k, v in (provenance or {}).items() if v is not None}
    unknown = set(provenance) - set(PROVENANCE_KEYS)
    if unknown:
        raise UsageError(f"unknown provenance field(s) {', '.join(sorted(unknown))}")
    c = _check_publish(model_name, tag, model_kwargs, labels, preprocessing, metrics, training)
    _check_rebuild(c.catalogue_entry, tag, c.model_kwargs, tensor_shapes(weights))
    entry_dir, staging = _stage(c, overwrite)
    try:
        shutil.copyfile(weights, staging / WEIGHTS_FILE)
        os.chmod(staging / WEIGHTS_FILE, 0o644)
        with open(staging / WEIGHTS_FILE, "rb") as f:
            os.fsync(f.fileno())
        return _finish(c, staging, entry_dir, num_params, overwrite, _json_copy("provenance", provenance))
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in new.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def update_metrics(model_name: str, tag: str, metrics: dict[str, Any]) -> None:
    """Merge ``metrics`` (nested dicts merge key by key) into the entry's metrics.json and its model card."""
    from zoo_core.plugin_api import atomic_write_text
    from zoo_registry.model_card import render

    plugin, name = qualify(model_name)
    _check_tag(tag)
    metrics = _json_copy("metrics", dict(metrics))
    entry_dir = get(f"{plugin}:{name}", tag).path  # an unknown entry fails here, before any lock file exists
    with file_lock(_lock_path(entry_dir)):
        _recover(entry_dir)
        entry = get(f"{plugin}:{name}", tag)  # again: it may have been replaced while we waited
        merged = _merge(entry.metrics, metrics)
        atomic_write_text(entry_dir / METRICS_FILE, _dump(merged))
        atomic_write_text(entry_dir / CARD_FILE, render(entry.config, merged, model_ref(entry.model_name)))
    refresh_weights()


def record_push(model_name: str, tag: str, record: dict[str, Any]) -> PublishedEntry:
    """Record in the entry's config.json that it was pushed (``record``: repo, revision, commit, ...).

    One record per repo and revision: pushing there again replaces it. Written atomically under the entry's
    lock, like ``update_metrics``; the weights are not touched.
    """
    from zoo_core.plugin_api import atomic_write_text
    from zoo_registry.model_card import render

    plugin, name = qualify(model_name)
    _check_tag(tag)
    record = _json_copy("push record", dict(record))
    entry_dir = get(f"{plugin}:{name}", tag).path
    with file_lock(_lock_path(entry_dir)):
        _recover(entry_dir)
        entry = get(f"{plugin}:{name}", tag)
        config = dict(entry.config)
        pushes = [p for p in config.get("pushed") or [] if isinstance(p, dict)
                  and (p.get("repo"), p.get("revision")) != (record.get("repo"), record.get("revision"))]  # fmt: skip
        config["pushed"] = [*pushes, record]
        atomic_write_text(entry_dir / CONFIG_FILE, _dump(config))
        atomic_write_text(entry_dir / CARD_FILE, render(config, entry.metrics, model_ref(entry.model_name)))
    refresh_weights()
    return PublishedEntry(entry.model_name, tag, entry_dir, config, entry.metrics)


def remove(model_name: str, tag: str) -> None:
    """Delete the entry ``model_name``.``tag`` (UnknownNameError when there is none)."""

    plugin, name = qualify(model_name)
    _check_tag(tag)
    entry_dir = _entry_dir(plugin, name, tag)
    if not entry_dir.is_dir() and not _aside_dir(entry_dir).is_dir():
        get(f"{plugin}:{name}", tag)  # unknown: the error suggests close tags, before any lock file exists
    root = registry_root()
    with file_lock(_lock_path(entry_dir)):  # a broken entry (unreadable config) is removed all the same
        _recover(entry_dir)
        if not entry_dir.is_dir():  # removed by another process while we waited
            get(f"{plugin}:{name}", tag)
        (root / ".trash").mkdir(parents=True, exist_ok=True)
        trash = Path(tempfile.mkdtemp(dir=root / ".trash"))
        # One rename takes the entry out of sight at once; the slow delete happens where no one looks.
        os.rename(entry_dir, trash / tag)
        _fsync_dir(entry_dir.parent)
        shutil.rmtree(trash, ignore_errors=True)
    refresh_weights()


# -- the default tag of a model ------------------------------------------------------------------------

DEFAULT_FILE = ".default"  # <registry>/<plugin>/<model>/.default holds the tag `pretrained=True` means


def get_default(model_name: str) -> str | None:
    """The tag set with ``set_default`` for ``model_name``, or None (a stale one, whose entry is gone, too)."""
    plugin, name = qualify(model_name)
    model_dir = registry_root() / plugin / name
    tag = read_default(model_dir)
    return tag if tag and (model_dir / tag).is_dir() else None


def read_default(model_dir: Path) -> str | None:
    """The tag a model folder's ``.default`` names; None when there is no file, or it cannot be read or
    names no valid tag."""
    try:
        tag = (model_dir / DEFAULT_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return tag if TAG_RE.match(tag) else None


def set_default(model_name: str, tag: str | None) -> None:
    """Make ``tag`` (a published entry) the default weights of ``model_name``; None clears it."""
    from zoo_core.plugin_api import atomic_write_text

    plugin, name = qualify(model_name)
    path = registry_root() / plugin / name / DEFAULT_FILE
    if tag is None:
        path.unlink(missing_ok=True)
    else:
        get(f"{plugin}:{name}", tag)  # an unknown entry is an error, with close tags
        atomic_write_text(path, tag + "\n")
    refresh_weights()
