"""Where the registry keeps things, and the two small files that give a tag its versions and a model its aliases.

```
registry/
  <plugin>/<model>/
    .default                 the tag (or alias) ``pretrained=True`` means
    .aliases.json            {"aliases": {"champion": {"tag": "r", "version": 1}}}
    <tag>/
      tag.json               {"current": 2, "last": 3}: the version the tag means, the highest number given
      v1/ v2/ ...            one folder per version: config.json, metrics.json, README.md, model.safetensors
  .weights/<sha256>.safetensors   every version's weights by content (hard links: one copy per content)
  .staging/ .trash/ .locks/ .quarantine/
```

A tag folder written before versions existed holds the entry's files itself (``<tag>/config.json``); it reads
as version 1 until ``store`` migrates it. Version folders never change once renamed into place, except for
metrics and push records added by atomic writes, so a reader needs no lock to read one; writers of a tag hold
its lock (``.locks/<plugin>/<model>/<tag>.lock``), and the aliases of a model have a lock of their own, always
taken after a tag's.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from zoo_core.plugin_api import TAG_MAX, UsageError, atomic_write_json, check_tag, records, registry_dir

CONFIG_FILE = "config.json"
TAG_FILE = "tag.json"
ALIASES_FILE = ".aliases.json"
BLOB_DIR = ".weights"
VERSION_DIR_RE = re.compile(r"^v([1-9][0-9]{0,8})$")
VERSION_TAG_RE = re.compile(r"--v([1-9][0-9]{0,8})$")  # the catalogue's name of a version: TAG--vN
MAX_VERSION = 10**9 - 1

TAG_SPEC = records.obj({
    "schema": records.version(1),
    "current": records.integer(1, MAX_VERSION, required=True),
    "last": records.integer(1, MAX_VERSION, required=True),
})  # fmt: skip
ALIASES_SPEC = records.obj({
    "schema": records.version(1),
    "aliases": records.obj(others=records.obj({
        "tag": records.string(TAG_MAX, min_len=1, required=True),
        "version": records.integer(1, MAX_VERSION, required=True),
    }), max_len=10_000, required=True),
})  # fmt: skip


def registry_root() -> Path:
    return registry_dir()


def tag_dir(plugin: str, model: str, tag: str) -> Path:
    return registry_root() / plugin / model / tag


def version_dir(tag_path: Path, version: int) -> Path:
    return tag_path / f"v{version}"


def aside_dir(tag_path: Path) -> Path:
    """Where a tag folder waits while it is swapped for its migrated form (or, before versions, replaced)."""
    return tag_path.parent / f".{tag_path.name}.old"


def lock_path(tag_path: Path) -> Path:
    """The lock of a tag (``tag_path`` is ``<root>/<plugin>/<model>/<tag>``)."""
    root = tag_path.parent.parent.parent
    return root / ".locks" / tag_path.parent.parent.name / tag_path.parent.name / f"{tag_path.name}.lock"


def aliases_lock(model_dir: Path) -> Path:
    # a tag never starts with '.', so this lock is no tag's
    return model_dir.parent.parent / ".locks" / model_dir.parent.name / model_dir.name / ".aliases.lock"


def subdirs(path: Path) -> list[Path]:
    """Visible sub-folders, sorted; dot-folders are zoo's own (staging, locks, folders set aside)."""
    try:
        with os.scandir(path) as it:
            return sorted(Path(e.path) for e in it if not e.name.startswith(".") and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def fsync_dir(path: Path) -> None:
    if os.name == "nt":  # directories cannot be opened for fsync there
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def recover(tag_path: Path) -> None:
    """Finish a swap that was killed between its two renames (the caller holds the tag's lock)."""
    aside = aside_dir(tag_path)
    if aside.is_dir():
        if tag_path.is_dir():  # the new folder made it in; only the delete of the old one was lost
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(aside, tag_path)


# -- version names ------------------------------------------------------------------------------------------


def version_tag(tag: str, version: int) -> str:
    """The catalogue's tag for version ``version`` of ``tag`` that is not current: ``TAG--vN`` (a tag too long
    for the suffix is shortened, with a digest of it to keep it unique)."""
    suffix = f"--v{version}"
    if len(tag) + len(suffix) <= TAG_MAX:
        return tag + suffix
    digest = hashlib.sha256(tag.encode()).hexdigest()[:8]
    return f"{tag[: TAG_MAX - len(suffix) - 9]}-{digest}{suffix}"


def split_version_tag(name: str) -> tuple[str, int] | None:
    """``TAG--vN`` -> (the name before the suffix, N); None for any other name."""
    m = VERSION_TAG_RE.search(name)
    return (name[: m.start()], int(m.group(1))) if m else None


def check_new_name(name: str, what: str = "tag") -> None:
    """A tag or alias the registry may create: the name rule, and not a version's name."""
    check_tag(name, what)
    if VERSION_TAG_RE.search(name):
        raise UsageError(f"invalid {what} {name!r}: names ending in --vN are how zoo lists versions "
                         "(MODEL.TAG@N); choose another")  # fmt: skip


# -- a tag's versions ---------------------------------------------------------------------------------------


@dataclass
class TagState:
    """A tag folder's versions and which one the tag means."""

    path: Path
    versions: dict[int, Path] = field(default_factory=dict)  # number -> folder, ascending
    current: int | None = None
    last: int = 0  # the highest number ever given (a removed version's number is never given again)
    legacy: bool = False  # written before versions: the folder is version 1 itself
    pointer_problem: str | None = None  # tag.json missing or unreadable (the newest version is taken)

    @property
    def next_version(self) -> int:
        return max([self.last, *self.versions]) + 1

    @property
    def current_dir(self) -> Path | None:
        return self.versions.get(self.current) if self.current is not None else None


def read_tag(path: Path) -> TagState:
    """The versions of the tag folder ``path`` (none when it is missing or empty)."""
    state = TagState(path)
    if (path / CONFIG_FILE).is_file():
        return TagState(path, {1: path}, 1, 1, legacy=True)
    for child in subdirs(path):
        m = VERSION_DIR_RE.match(child.name)
        if m:
            state.versions[int(m.group(1))] = child
    state.versions = dict(sorted(state.versions.items()))
    if not state.versions:
        return state
    try:
        pointer = records.load(path / TAG_FILE, TAG_SPEC)
        state.current, state.last = pointer["current"], pointer["last"]
        if state.current not in state.versions:
            state.pointer_problem = f"{TAG_FILE} names version {state.current}, which is gone"
    except FileNotFoundError:
        state.pointer_problem = f"{TAG_FILE} is missing"
    except (OSError, ValueError) as e:
        state.pointer_problem = f"{TAG_FILE} is unreadable ({e})"
    if state.pointer_problem:  # a publish killed before its first pointer, or a damaged one: the newest stands
        state.current = max(state.versions)
    return state


def write_pointer(path: Path, current: int, last: int) -> None:
    """Make ``current`` the version the tag means (the caller holds the tag's lock)."""
    atomic_write_json(path / TAG_FILE, {"schema": 1, "current": current, "last": max(last, current)})


# -- a model's aliases --------------------------------------------------------------------------------------


def read_aliases(model_dir: Path) -> dict[str, tuple[str, int]]:
    """alias -> (tag, version) of a model folder; an unreadable file counts as none (``zoo doctor`` says so)."""
    try:
        data = records.load(model_dir / ALIASES_FILE, ALIASES_SPEC)
    except (OSError, ValueError):
        return {}
    return {name: (target["tag"], target["version"]) for name, target in data["aliases"].items()}


def write_aliases(model_dir: Path, aliases: dict[str, tuple[str, int]]) -> None:
    """Replace a model's aliases (the caller holds its aliases lock); none left removes the file."""
    path = model_dir / ALIASES_FILE
    if not aliases:
        path.unlink(missing_ok=True)
        return
    atomic_write_json(path, {"schema": 1, "aliases": {name: {"tag": tag, "version": version}
                                                      for name, (tag, version) in sorted(aliases.items())}})
