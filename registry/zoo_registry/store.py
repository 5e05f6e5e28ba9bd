"""The local registry of published weights: ``$ZOO_HOME/registry/<plugin>/<model>/<tag>/v<N>``.

Every publish of a tag (a training run, a pull, an import) adds version N+1 and makes it the one the tag means;
nothing is replaced. A version folder holds ``model.safetensors`` (a hard link to the registry's copy of that
content, ``zoo_registry.blobs``), ``config.json`` (how to rebuild the model, its labels and preprocessing, the
weights' sha256 and size, the version number and its lineage), ``metrics.json`` and a ``README.md`` model card.
``zoo_registry.layout`` draws the whole tree; ``zoo_registry.versions`` works with versions and aliases.

Writes are atomic: a publish is staged in ``registry/.staging/`` (same file system) and fsynced, then, under
the tag's lock (``registry/.locks/``), renamed into place as the next version, and only then does the tag's
``tag.json`` (written atomically) point at it. A process killed at any point leaves the version before it
current and whole. Readers take the tag's lock shared while they load weights, so no removal pulls the file
away mid-read.

A tag folder written before versions existed (its files directly inside) reads as version 1, and is moved into
``v1/`` the first time the registry is scanned (or published to) where it can be written: the files are hard
linked into a staged folder that replaces the old one in two renames, so a kill loses nothing.
"""

from __future__ import annotations

import contextlib
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
    atomic_write_text,
    file_lock,
    first_line,
    get_catalogue,
    parse,
    records,
    refresh_weights,
    utc_now,
    validate_tag,
)
from zoo_registry.layout import (
    CONFIG_FILE,
    MAX_VERSION,
    TagState,
    aside_dir,
    check_new_name,
    fsync_dir,
    lock_path,
    read_aliases,
    read_tag,
    recover,
    registry_root,
    split_version_tag,
    subdirs,
    tag_dir,
    version_dir,
    version_tag,
    write_pointer,
)

WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
CARD_FILE = "README.md"
SCHEMA = 1
STALE_SECONDS = 6 * 3600  # leftovers of killed publishes older than this are deleted


@dataclass
class PublishedEntry:
    """One published version of a tag and what was recorded with it."""

    model_name: str  # qualified, "cnn:simplecnn"
    tag: str
    path: Path  # the version folder (the tag folder itself for one written before versions)
    config: dict[str, Any]
    metrics: dict[str, Any]
    version: int = 1
    current: bool = True  # whether the tag means this version now (as read)

    @property
    def weights_path(self) -> Path:
        return self.path / WEIGHTS_FILE

    @property
    def sha256(self) -> str:
        return str(self.config["sha256"])

    @property
    def tag_path(self) -> Path:
        return self.path if self.config.get("version") is None else self.path.parent

    @property
    def version_ref(self) -> str:
        """``plugin:model.tag@N``: this version, whichever the tag means later."""
        return f"{self.model_name}.{self.tag}@{self.version}"

    @property
    def ref(self) -> str:
        """The name ``create_model`` and ``zoo eval`` accept for these weights: ``plugin:model.tag`` for the
        current version, ``plugin:model.tag@N`` for an earlier one."""
        return f"{self.model_name}.{self.tag}" if self.current else self.version_ref

    @property
    def catalogue_tag(self) -> str:
        """The tag these weights have in the catalogue: the tag itself when current, else ``TAG--vN``."""
        return self.tag if self.current else version_tag(self.tag, self.version)

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
            "version": self.version,
            "current": self.current,
            "version_ref": self.version_ref,
        }
        if full:
            d["config"] = self.config
            d["files"] = sorted(p.name for p in self.path.iterdir() if p.is_file())
        return d


# -- names -------------------------------------------------------------------------------------------------


def qualify(model_name: str) -> tuple[str, str]:
    """``[plugin:]model`` -> (plugin, model); a bare name goes through the catalogue, or, for a model
    whose plugin is gone, through the registry's own folders."""
    ref = parse(model_name)
    if ref.is_source or ref.tag is not None:
        raise UsageError(f"expected a model name ([plugin:]name), got {model_name!r}")
    return qualified_parts(ref)


def qualified_parts(ref: ModelRef) -> tuple[str, str]:
    """(plugin, model) of a parsed catalogue name."""
    if ref.plugin is not None:
        return ref.plugin, ref.name
    try:
        entry = get_catalogue().get("model", ref.name)
        return entry.plugin, entry.name
    except UnknownNameError:
        root = registry_root()
        found = [p.name for p in subdirs(root) if (p / ref.name).is_dir()] if root.is_dir() else []
        if len(found) != 1:
            raise
        return found[0], ref.name


_qualified = qualified_parts


def split_ref(text: str, default: bool = False) -> tuple[str, str, str]:
    """Any name of published weights (``MODEL.TAG``, ``MODEL.TAG@N``, ``MODEL.ALIAS``, ``plugin:model.tag``,
    ``hf-hub:OWNER/REPO``; with ``default``, a bare model name means its default weights) -> (plugin, model,
    name), where the name is the tag, an alias or a version's ``TAG--vN`` (``get`` takes each). A ``MODEL.TAG``
    need not be a live tag (a broken entry is still one to show or remove)."""
    ref = parse(text)
    if ref.version is not None and ref.tag and not ref.is_source:
        ref = ref.with_tag(version_tag(ref.tag, ref.version))  # a version is found in the folders, not the catalogue
    elif ref.is_source or (default and ref.tag is None):
        from zoo_core import resolve

        ref = resolve(ref, default).ref
    if not ref.tag:
        raise UsageError(f"expected MODEL.TAG (for example simplecnn.mytag), got {text!r}")
    return (*qualified_parts(ref), ref.tag)


def locate(plugin: str, model: str, name: str) -> tuple[str, int | None]:
    """What a tag-like name means in a model's folder: (tag, None) for a tag (its current version),
    (tag, N) for an alias or a version's ``TAG--vN``. An unknown name comes back as (name, None)."""
    model_dir = registry_root() / plugin / model
    if (model_dir / name).is_dir() or aside_dir(model_dir / name).is_dir():
        return name, None
    aliases = read_aliases(model_dir)
    if name in aliases:
        return aliases[name]
    split = split_version_tag(name)
    if split is not None:
        base, version = split
        if (model_dir / base).is_dir():
            return base, version
        for candidate in subdirs(model_dir):  # a tag too long for the plain suffix
            if version_tag(candidate.name, version) == name:
                return candidate.name, version
    return name, None


# -- reading -----------------------------------------------------------------------------------------------


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
    "version": records.integer(1, MAX_VERSION, null=True),
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
    "lineage": records.obj(null=True),
    **dict.fromkeys(("created", "zoo_version", "torch_version", "source", "origin", "revision", "hf_hub_id",
                     "license", "base_model"), _TEXT),
})  # fmt: skip
METRICS_SPEC = records.obj({
    "top1": records.number(0, 100, null=True), "top5": records.number(0, 100, null=True),
    "topk": records.integer(1, null=True), "num_samples": records.integer(0, null=True), "dataset": _TEXT,
    "split": _TEXT,
})  # fmt: skip


def read_entry(entry_dir: Path) -> PublishedEntry:
    """Read one version folder's JSON files (never the weights), or a tag folder written before versions;
    OSError, or a RecordError (a ValueError) that names the file and the field, when they are broken."""
    config = records.load(entry_dir / CONFIG_FILE, CONFIG_SPEC)
    version = config.get("version")
    if version is None:  # written before versions: the tag folder holds the files
        plugin, model, tag = entry_dir.parent.parent.name, entry_dir.parent.name, entry_dir.name
    else:
        plugin, model, tag = entry_dir.parent.parent.parent.name, entry_dir.parent.parent.name, entry_dir.parent.name
    qualified = f"{plugin}:{model}"
    if config["architecture"] != qualified or config["tag"] != tag or (version and entry_dir.name != f"v{version}"):
        described = f"{records.printable(config['architecture'], 120)}.{records.printable(config['tag'], 120)}"
        raise records.RecordError(
            f"{entry_dir / CONFIG_FILE} describes {described}{f' version {version}' if version else ''}, not "
            f"{qualified}.{tag}{f' ({entry_dir.name})' if version else ''} (was the folder moved by hand?)"
        )
    classes, labels = config.get("num_classes"), config.get("labels") or []
    kwargs_classes = config["model_kwargs"].get("num_classes", classes)
    if (labels and len(labels) != classes) or kwargs_classes != classes:
        raise records.RecordError(
            f"{entry_dir / CONFIG_FILE} disagrees with itself: num_classes {classes!r}, {len(labels)} labels, "
            f"model_kwargs num_classes {records.shown(kwargs_classes)}"
        )
    metrics = records.load(entry_dir / METRICS_FILE, METRICS_SPEC, missing={})
    return PublishedEntry(qualified, tag, entry_dir, config, metrics, version or 1)


def weights_metadata(entry: PublishedEntry, description: str | None = None) -> dict[str, Any]:
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
        "description": description,
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


def _try_recover(tag_path: Path) -> None:
    """Recover without waiting: a writer holding the lock is mid-swap and will finish it."""
    try:
        with file_lock(lock_path(tag_path), timeout=0):
            recover(tag_path)
    except (LockBusy, OSError):
        pass


def scan(on_error: Callable[[Path, BaseException], None] | None = warn_skipped,
         every_version: bool = False) -> list[PublishedEntry]:  # fmt: skip
    """Every tag's current version (with ``every_version``, every version), sorted by model, tag and version,
    reading only JSON; a broken one goes to ``on_error``. Tag folders written before versions are migrated
    on the way where the registry can be written."""
    entries, migrated = [], 0
    for plugin_dir in subdirs(registry_root()):
        for model_dir in subdirs(plugin_dir):
            names = set(os.listdir(model_dir))
            for name in names:
                if name.startswith(".") and name.endswith(".old") and name[1:-4] not in names:
                    _try_recover(model_dir / name[1:-4])
            for path in subdirs(model_dir):
                state = read_tag(path)
                if state.legacy and _migrate_when_whole(path):
                    state, migrated = read_tag(path), migrated + 1
                for number, folder in state.versions.items():
                    if number != state.current and not every_version:
                        continue
                    try:
                        entry = read_entry(folder)
                    except (OSError, ValueError) as e:
                        if on_error is not None:
                            on_error(folder, e)
                        continue
                    entry.current = number == state.current
                    entries.append(entry)
    if migrated:
        print(f"zoo: note: {migrated} registry tag(s) now keep numbered versions (each moved into v1/; nothing "
              "changed but the layout)", file=sys.stderr)  # fmt: skip
    return entries


def list_entries() -> list[PublishedEntry]:
    """Every tag's current version (broken ones are reported on stderr and left out)."""
    return scan()


def get(model_name: str, tag: str) -> PublishedEntry:
    """The weights ``model_name``.``tag`` names: a tag (its current version), an alias (the version it names)
    or a version's ``TAG--vN``; UnknownNameError (with close names) when there is none."""
    plugin, model = qualify(model_name)
    check_tag_name(tag)
    tag, version = locate(plugin, model, tag)
    return get_version(f"{plugin}:{model}", tag, version)


def check_tag_name(tag: str) -> None:
    from zoo_core.plugin_api import check_tag

    check_tag(tag)  # the one rule, checked before anything touches the disk


def get_version(model_name: str, tag: str, version: int | None = None) -> PublishedEntry:
    """Version ``version`` of a tag (None: the one the tag means)."""
    plugin, model = qualify(model_name)
    path = tag_dir(plugin, model, tag)
    if not path.is_dir() and aside_dir(path).is_dir():
        _try_recover(path)
    state = read_tag(path)
    if not state.versions:
        _unknown(plugin, model, tag)
    number = state.current if version is None else version
    if number not in state.versions:
        raise UnknownNameError("version", f"{plugin}:{model}.{tag}@{version}",
                               [f"{plugin}:{model}.{tag}@{n}" for n in list(state.versions)[-3:]])  # fmt: skip
    folder = state.versions[number]
    try:
        entry = read_entry(folder)
    except records.NewerFormatError as e:  # not broken: this zoo is too old to read it
        raise WeightsError(str(e)) from None
    except (OSError, ValueError) as e:
        hint = "publish it again or `zoo registry remove` it"
        raise WeightsError(f"{folder}: broken entry ({e}); {hint}") from None
    entry.current = number == state.current
    return entry


def _unknown(plugin: str, model: str, tag: str) -> None:
    import difflib

    model_dir = registry_root() / plugin / model
    names = [p.name for p in subdirs(model_dir)] + sorted(read_aliases(model_dir))
    close = difflib.get_close_matches(tag, names, n=3, cutoff=0.5) or names[:4]  # else: the tags there are
    raise UnknownNameError("registry entry", f"{plugin}:{model}.{tag}", [f"{plugin}:{model}.{t}" for t in close])


def versions_of(model_name: str, tag: str) -> tuple[TagState, list[PublishedEntry]]:
    """A tag's state and every version that reads (broken ones are left out), oldest first."""
    plugin, model = qualify(model_name)
    check_tag_name(tag)
    state = read_tag(tag_dir(plugin, model, tag))
    if not state.versions:
        _unknown(plugin, model, tag)
    entries = []
    for number, folder in state.versions.items():
        try:
            entry = read_entry(folder)
        except (OSError, ValueError):
            continue
        entry.current = number == state.current
        entries.append(entry)
    return state, entries


# -- loading -----------------------------------------------------------------------------------------------


def load_published(entry_dir: str | os.PathLike[str], model: Any) -> None:
    """The catalogue's loader for a version: reads its config.json, then loads the weights after checking their
    sha256, format, keys and shapes, holding the tag's lock shared so that no removal takes them meanwhile."""
    from zoo_registry.weights_file import load_weights

    entry_dir = Path(entry_dir)
    if not (entry_dir / CONFIG_FILE).exists() and (version_dir(entry_dir, 1) / CONFIG_FILE).exists():
        entry_dir = version_dir(entry_dir, 1)  # registered before another process moved it into v1/
    try:
        entry = read_entry(entry_dir)
    except (OSError, ValueError) as e:
        raise WeightsError(f"{entry_dir / CONFIG_FILE}: cannot read the entry ({e})") from None
    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(lock_path(entry.tag_path), shared=True))
        except OSError:  # a read-only registry: nobody can be removing the version either
            pass
        if not entry_dir.is_dir():
            raise WeightsError(f"{entry.version_ref} was removed while it was being loaded ({entry_dir})")
        load_weights(model, entry.weights_path, entry.sha256)


# -- writing -----------------------------------------------------------------------------------------------


def _json_copy(what: str, value: Any, lenient: bool = False) -> Any:
    try:
        return json.loads(json.dumps(value, default=str if lenient else None))
    except (TypeError, ValueError) as e:
        raise UsageError(f"{what} must be JSON-serialisable ({e})") from None


_fsync_dir = fsync_dir


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
    lineage: dict[str, Any] | None

    @property
    def qualified(self) -> str:
        return f"{self.plugin}:{self.name}"


def _check_publish(model_name: str, tag: str, model_kwargs: dict[str, Any], labels: list[str],
                   preprocessing: dict[str, Any], metrics: dict[str, Any] | None,
                   training: dict[str, Any] | None, lineage: dict[str, Any] | None) -> _Checked:  # fmt: skip
    plugin, name = qualify(model_name)
    qualified = f"{plugin}:{name}"
    check_new_name(tag)
    # The published weights replace any the builder would download, so never ask it for them.
    model_kwargs = _json_copy("model_kwargs", {k: v for k, v in model_kwargs.items() if k != "pretrained"})
    preprocessing = _json_copy("preprocessing", dict(preprocessing or {}))
    metrics = _json_copy("metrics", dict(metrics or {}))
    training = _json_copy("training", training, lenient=True) if training is not None else None
    lineage = _json_copy("lineage", lineage, lenient=True) if lineage is not None else None
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
    aliased = read_aliases(registry_root() / plugin / name).get(tag)
    if aliased is not None:
        raise UsageError(f"{qualified}.{tag} is an alias of {qualified}.{aliased[0]}@{aliased[1]}; publish under "
                         f"another tag, or delete the alias first (`zoo registry alias {qualified}.{tag} "
                         "--delete`)")  # fmt: skip
    return _Checked(plugin, name, tag, catalogue_entry, model_kwargs, labels, num_classes, checked["preprocessing"],
                    metrics, training, lineage)  # fmt: skip


def _stage(c: _Checked) -> Path:
    """A fresh staging folder for a version of the tag."""
    root = registry_root()
    (root / ".staging").mkdir(parents=True, exist_ok=True)
    _clean_stale(root)
    staging = Path(tempfile.mkdtemp(dir=root / ".staging", prefix=f"{c.plugin}-{c.name}-{c.tag}-"))
    os.chmod(staging, 0o755)  # mkdtemp makes it private; a published entry is meant to be read
    return staging


def _lineage_record(c: _Checked, made_by: str, extra: dict[str, Any]) -> dict[str, Any]:
    """What the version came from: the caller's record, else what its training record and provenance say."""
    from zoo_registry.lineage import from_training

    lineage = dict(c.lineage) if c.lineage else from_training(c.qualified, c.training, extra)
    lineage.setdefault("made_by", made_by)
    return lineage


def _finish(c: _Checked, staging: Path, num_params: int | None, made_by: str,
            extra: dict[str, Any] | None = None) -> PublishedEntry:  # fmt: skip
    """Write config, metrics and card next to the staged weights, then rename them in as the tag's next version
    and point the tag at it."""
    import torch

    from zoo_core import __version__
    from zoo_registry.blobs import adopt
    from zoo_registry.model_card import render
    from zoo_registry.weights_file import sha256_file

    weights = staging / WEIGHTS_FILE
    sha256 = sha256_file(weights)
    adopt(weights, sha256)  # identical weights share one file (outside the lock: it may hash a stored file)
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
        "sha256": sha256,
        "size_bytes": weights.stat().st_size,
        "num_params": num_params,
        "zoo_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "created": utc_now(),
        "training": c.training,
        **(extra or {}),
    }
    if num_params is None:  # weights from elsewhere that did not say: better absent than wrong
        del config["num_params"]
    config["lineage"] = {**_lineage_record(c, made_by, extra or {}), "zoo_version": config["zoo_version"],
                         "torch_version": config["torch_version"]}  # fmt: skip
    path = tag_dir(c.plugin, c.name, c.tag)
    with file_lock(lock_path(path)):
        recover(path)
        state = read_tag(path)
        if state.legacy:
            state = _migrate(path)
        config["version"] = number = state.next_version
        _write_text(staging / CONFIG_FILE, _dump(config))
        _write_text(staging / METRICS_FILE, _dump(c.metrics))
        _write_text(staging / CARD_FILE, render(config, c.metrics, model_ref(c.qualified)))
        fsync_dir(staging)
        _place(staging, path, number)
    refresh_weights()
    return PublishedEntry(c.qualified, c.tag, version_dir(path, number), config, c.metrics, number)


def _place(staging: Path, path: Path, number: int) -> None:
    """Rename the staged version in as version ``number`` of the tag folder ``path`` and point the tag at it
    (the caller holds the tag's lock). A new tag appears in one rename, version and pointer together."""
    if path.is_dir():
        target = version_dir(path, number)
        os.rename(staging, target)
        try:
            fsync_dir(path)
            write_pointer(path, number, number)  # a kill before this line leaves the previous version current
        except BaseException:
            with contextlib.suppress(OSError):  # a publish that fails (a full disk) leaves no version behind
                os.rename(target, staging)
            raise
        return
    holder = Path(tempfile.mkdtemp(dir=staging.parent, prefix=f"{path.name}-"))
    try:
        os.chmod(holder, 0o755)
        os.rename(staging, version_dir(holder, number))
        write_pointer(holder, number, number)
        fsync_dir(holder)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.rename(holder, path)
        fsync_dir(path.parent)
    finally:
        if holder.exists():
            shutil.rmtree(holder, ignore_errors=True)


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
    lineage: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> PublishedEntry:
    """Publish ``model``'s weights as the next version of ``model_name``.``tag``, which then means them.

    ``model_kwargs`` must rebuild the model (checked before anything is written). ``lineage`` says what the
    weights came from (``zoo_registry.lineage``; by default what ``training`` says). Earlier versions stay:
    ``overwrite`` is accepted for older callers and changes nothing. The process's catalogue registers the new
    version at once, so ``create_model(name, pretrained=tag)`` sees it.
    """
    from zoo_registry.weights_file import save_weights, state_tensors

    del overwrite  # every publish is a new version; nothing is replaced
    c = _check_publish(model_name, tag, model_kwargs, labels, preprocessing, metrics, training, lineage)
    tensors = state_tensors(model)
    _check_rebuild(c.catalogue_entry, tag, c.model_kwargs, {k: tuple(v.shape) for k, v in tensors.items()})
    staging = _stage(c)
    try:
        # Nothing but the tensors and their format in the file (safetensors orders further metadata keys at
        # random): the same weights, under any tag, are the same bytes, stored once.
        save_weights(tensors, staging / WEIGHTS_FILE)
        num_params = sum(p.numel() for p in model.parameters())
        return _finish(c, staging, num_params, "train" if training else "publish")
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
    lineage: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> PublishedEntry:
    """Publish an existing safetensors file byte for byte (weights fetched from elsewhere, say the Hub) as the
    next version of ``model_name``.``tag``.

    The file is checked like ``publish`` checks a model (it must fit the model ``model_kwargs`` build) and
    copied, never re-serialised, so its sha256 stays what its source says. ``provenance`` records where it
    came from (``PROVENANCE_KEYS``: ``source``, ``origin``, ``revision``, ``hf_hub_id``, ``license``,
    ``base_model``); these become the tag's weights-schema fields. ``lineage`` as for ``publish``.
    """
    from zoo_registry.weights_file import tensor_shapes

    del overwrite
    provenance = {k: v for k, v in (provenance or {}).items() if v is not None}
    unknown = set(provenance) - set(PROVENANCE_KEYS)
    if unknown:
        raise UsageError(f"unknown provenance field(s) {', '.join(sorted(unknown))}")
    c = _check_publish(model_name, tag, model_kwargs, labels, preprocessing, metrics, training, lineage)
    _check_rebuild(c.catalogue_entry, tag, c.model_kwargs, tensor_shapes(weights))
    staging = _stage(c)
    try:
        shutil.copyfile(weights, staging / WEIGHTS_FILE)
        os.chmod(staging / WEIGHTS_FILE, 0o644)
        with open(staging / WEIGHTS_FILE, "rb") as f:
            os.fsync(f.fileno())
        return _finish(c, staging, num_params, "import", _json_copy("provenance", provenance))
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


# -- tags written before versions ------------------------------------------------------------------------------


def _migrate_when_whole(path: Path) -> bool:
    """Move a tag folder written before versions into ``v1/`` now, if it reads, its weights have the size
    recorded and nobody holds its lock; anything else is left for ``zoo doctor`` (it still reads as version 1)."""
    try:
        entry = read_entry(path)
        if entry.weights_path.stat().st_size != entry.config.get("size_bytes", -1):
            return False
        with file_lock(lock_path(path), timeout=0):
            recover(path)
            if read_tag(path).legacy:
                _migrate(path)
        return True
    except (OSError, ValueError, LockBusy):  # broken, busy, or a registry we may only read
        return False


def _migrate(path: Path) -> TagState:
    """Rewrite the tag folder ``path`` (written before versions; the caller holds its lock) as version 1 of
    the tag, losing nothing: its files are hard linked into a staged folder (copied where links fail), the
    config gains its version number, and the staged folder replaces the old one in two renames (a kill between
    them leaves the old one aside, which the next reader renames back)."""
    from zoo_registry.blobs import adopt

    root = registry_root()
    (root / ".staging").mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root / ".staging", prefix=f"migrate-{path.name}-"))
    try:
        os.chmod(staging, 0o755)
        first = version_dir(staging, 1)
        shutil.copytree(path, first, copy_function=_link_or_copy)
        try:
            config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = None  # a broken entry moves as it is; zoo doctor reports it in its new place
        if isinstance(config, dict):
            config["version"] = 1
            atomic_write_text(first / CONFIG_FILE, _dump(config))  # a new file: the old one is not touched
            sha256 = config.get("sha256")
            if isinstance(sha256, str) and (first / WEIGHTS_FILE).is_file():
                adopt(first / WEIGHTS_FILE, sha256)
        write_pointer(staging, 1, 1)
        fsync_dir(first)
        aside = aside_dir(path)
        os.rename(path, aside)
        os.rename(staging, path)
        fsync_dir(path.parent)
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return read_tag(path)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


# -- changing what a version records -------------------------------------------------------------------------


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in new.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def _rewrite(model_name: str, tag: str, change: Callable[[PublishedEntry], PublishedEntry]) -> PublishedEntry:
    """Apply ``change`` to the version ``model_name``.``tag`` names and write its JSON files and card again,
    atomically, under the tag's lock (the weights are not touched)."""
    from zoo_registry.model_card import render

    entry = get(model_name, tag)  # an unknown entry fails here, before any lock file exists
    with file_lock(lock_path(entry.tag_path)):
        recover(entry.tag_path)
        entry = get_version(entry.model_name, entry.tag, entry.version)  # again: it may have changed meanwhile
        if entry.config.get("version") is None:  # written before versions: move it into v1/ first
            _migrate(entry.tag_path)
            entry = get_version(entry.model_name, entry.tag, 1)
        new = change(entry)
        if new.config != entry.config:
            atomic_write_text(new.path / CONFIG_FILE, _dump(new.config))
        if new.metrics != entry.metrics:
            atomic_write_text(new.path / METRICS_FILE, _dump(new.metrics))
        atomic_write_text(new.path / CARD_FILE, render(new.config, new.metrics, model_ref(new.model_name)))
    refresh_weights()
    return new


def update_metrics(model_name: str, tag: str, metrics: dict[str, Any]) -> None:
    """Merge ``metrics`` (nested dicts merge key by key) into the version's metrics.json and its model card."""
    metrics = _json_copy("metrics", dict(metrics))

    def merged(entry: PublishedEntry) -> PublishedEntry:
        return PublishedEntry(entry.model_name, entry.tag, entry.path, entry.config, _merge(entry.metrics, metrics),
                              entry.version, entry.current)  # fmt: skip

    _rewrite(model_name, tag, merged)


def record_push(model_name: str, tag: str, record: dict[str, Any]) -> PublishedEntry:
    """Record in the version's config.json that it was pushed (``record``: repo, revision, commit, ...).

    One record per repo and revision: pushing there again replaces it."""
    record = _json_copy("push record", dict(record))

    def pushed(entry: PublishedEntry) -> PublishedEntry:
        config = dict(entry.config)
        pushes = [p for p in config.get("pushed") or [] if isinstance(p, dict)
                  and (p.get("repo"), p.get("revision")) != (record.get("repo"), record.get("revision"))]  # fmt: skip
        config["pushed"] = [*pushes, record]
        return PublishedEntry(entry.model_name, entry.tag, entry.path, config, entry.metrics, entry.version,
                              entry.current)  # fmt: skip

    return _rewrite(model_name, tag, pushed)


def record_export(model_name: str, tag: str, record: dict[str, Any]) -> PublishedEntry:
    """Record an export made from the version (``record``: format, variant, path, sha256, ...) in its lineage."""
    record = _json_copy("export record", dict(record))

    def exported(entry: PublishedEntry) -> PublishedEntry:
        config = dict(entry.config)
        lineage = dict(config.get("lineage") or {})
        kept = [e for e in lineage.get("exports") or [] if isinstance(e, dict) and e.get("variant") != record.get(
            "variant")]  # fmt: skip
        lineage["exports"] = [*kept, record]
        config["lineage"] = lineage
        return PublishedEntry(entry.model_name, entry.tag, entry.path, config, entry.metrics, entry.version,
                              entry.current)  # fmt: skip

    return _rewrite(model_name, tag, exported)


# -- removing ------------------------------------------------------------------------------------------------


def discard(folder: Path) -> None:
    """Take ``folder`` out of sight in one rename, then delete it where no one looks (the caller holds its
    tag's lock)."""
    root = registry_root()
    (root / ".trash").mkdir(parents=True, exist_ok=True)
    trash = Path(tempfile.mkdtemp(dir=root / ".trash"))
    os.rename(folder, trash / folder.name)
    fsync_dir(folder.parent)
    shutil.rmtree(trash, ignore_errors=True)


def remove_tag(model_name: str, tag: str) -> None:
    """Delete the tag ``model_name``.``tag`` with every version, and the aliases naming them
    (UnknownNameError when there is none). ``zoo_registry.versions.remove`` also takes one version or an alias."""
    from zoo_registry.blobs import prune
    from zoo_registry.layout import aliases_lock, write_aliases

    plugin, name = qualify(model_name)
    check_tag_name(tag)
    path = tag_dir(plugin, name, tag)
    if not path.is_dir() and not aside_dir(path).is_dir():
        get(f"{plugin}:{name}", tag)  # unknown: the error suggests close tags, before any lock file exists
    with file_lock(lock_path(path)):  # a broken entry (unreadable config) is removed all the same
        recover(path)
        if not path.is_dir():  # removed by another process while we waited
            get(f"{plugin}:{name}", tag)
        discard(path)
        with file_lock(aliases_lock(path.parent)):
            aliases = read_aliases(path.parent)
            write_aliases(path.parent, {k: v for k, v in aliases.items() if v[0] != tag})
    prune()
    refresh_weights()


# -- the default tag of a model --------------------------------------------------------------------------------

DEFAULT_FILE = ".default"  # <registry>/<plugin>/<model>/.default holds the tag `pretrained=True` means


def get_default(model_name: str) -> str | None:
    """The tag (or alias) set with ``set_default`` for ``model_name``, or None (a stale one, whose tag is gone,
    too)."""
    plugin, name = qualify(model_name)
    model_dir = registry_root() / plugin / name
    tag = read_default(model_dir)
    return tag if tag and ((model_dir / tag).is_dir() or tag in read_aliases(model_dir)) else None


def read_default(model_dir: Path) -> str | None:
    """The tag a model folder's ``.default`` names; None when there is no file, or it cannot be read or
    names no valid tag."""
    try:
        tag = (model_dir / DEFAULT_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return tag if TAG_RE.match(tag) else None


def set_default(model_name: str, tag: str | None) -> None:
    """Make ``tag`` (a published tag or an alias) the default weights of ``model_name``; None clears it."""
    plugin, name = qualify(model_name)
    path = registry_root() / plugin / name / DEFAULT_FILE
    if tag is None:
        path.unlink(missing_ok=True)
    else:
        entry = get(f"{plugin}:{name}", tag)  # an unknown entry is an error, with close tags
        if tag != entry.tag and tag not in read_aliases(path.parent):
            raise UsageError(f"a default is a tag or an alias, not one version; make an alias of it: "
                             f"zoo registry alias {name}.NAME {name}.{entry.tag}@{entry.version}")  # fmt: skip
        atomic_write_text(path, tag + "\n")
    refresh_weights()
