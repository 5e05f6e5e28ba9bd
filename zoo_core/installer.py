"""``zoo install`` and ``zoo uninstall``: pip, run by zoo's own interpreter, for plugin distributions.

Neither imports a plugin nor reads the catalogue cache, so a broken plugin can always be removed or replaced.
They read only installed metadata (``importlib.metadata``) to say which plugins came or went, and drop the
catalogue cache files of those plugins so that the next command sees the change.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from zoo_core.catalogue_cache import drop_cached
from zoo_core.entry_points import ENTRY_POINT_GROUP
from zoo_core.errors import UsageError, ZooError
from zoo_core.plugins import ZOO_DIST


class PipError(ZooError):
    """pip itself failed; its own messages are already on the terminal."""


@dataclass
class InstalledDist:
    """One installed distribution, as its metadata tells (nothing of it is imported)."""

    name: str
    version: str
    plugins: list[str] = field(default_factory=list)  # the names of its ``zoo.plugins`` entry points
    stamp: int = 0  # when its metadata was written: a reinstall of the same version changes it


def installed() -> dict[str, InstalledDist]:
    """Every installed distribution by canonical name; the first one on sys.path wins, as for imports."""
    importlib.invalidate_caches()  # pip just changed site-packages under this process's feet
    found: dict[str, InstalledDist] = {}
    for dist in md.distributions(path=_search_path()):
        name = dist.metadata["Name"]
        if not name or canonicalize_name(name) in found:
            continue
        plugins = [ep.name for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        found[canonicalize_name(name)] = InstalledDist(name, dist.version, plugins, _stamp(dist))
    return found


def _search_path() -> list[str]:
    """sys.path, then the folders pip installs into that it lacks. A site-packages folder that did not exist
    when this process started is not on sys.path (removing a venv's last distribution removes the folder, and
    the next install makes it again), yet what pip puts there is installed for the next command."""
    import site
    import sysconfig

    scheme = sysconfig.get_paths()
    targets = [scheme["purelib"], scheme["platlib"]]
    if site.ENABLE_USER_SITE:  # pip installs with --user where site-packages cannot be written
        targets.append(site.getusersitepackages())
    return [*sys.path, *(p for p in dict.fromkeys(targets) if p not in sys.path)]


def _stamp(dist: md.Distribution) -> int:
    path = getattr(dist, "_path", None)  # PathDistribution's metadata folder; other kinds have none
    try:
        return os.stat(path).st_mtime_ns if path is not None else 0
    except OSError:
        return 0


def pip(args: Sequence[str]) -> None:
    """Run pip in zoo's interpreter with the terminal attached (its progress, its questions)."""
    if importlib.util.find_spec("pip") is None:
        raise PipError(f"zoo's Python ({sys.executable}) has no pip; add it with: {sys.executable} -m ensurepip")
    cmd = [sys.executable, "-m", "pip", *args]
    try:
        rc = subprocess.call(cmd)
    except OSError as e:
        raise PipError(f"cannot run {' '.join(cmd[:3])}: {e.strerror or e}") from None
    if rc != 0:
        raise PipError(f"pip {args[0]} failed (exit {rc}); its messages above say why")


# -- install -----------------------------------------------------------------------------------------


# pip takes these archives as files; a spec ending so is a path even without a separator
ARCHIVES = (".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tar")


def looks_like_path(spec: str) -> bool:
    """Whether pip would read ``spec`` as a file or folder rather than a requirement (a name, ``name==1.0``)."""
    if "://" in spec:
        return False
    separators = [os.sep, *([os.altsep] if os.altsep else [])]
    return spec.startswith((".", "/", "~")) or any(s in spec for s in separators) or spec.endswith(ARCHIVES)


def _local(spec: str) -> Path | None:
    """The absolute file or folder a spec names when it looks like a path, else None (a name, a URL)."""
    if not looks_like_path(spec):
        return None
    # absolute, because pip reads `./x` handed over as `x` (what str(Path("./x")) gives) as a package name;
    # abspath rather than resolve(): a symlinked wheel must keep its own file name, which pip parses
    path = Path(os.path.abspath(os.path.expanduser(spec)))
    if not path.exists():
        raise UsageError(f"{spec}: no such file or folder")
    return path


def _editable_folder(spec: str) -> Path:
    folder = Path(os.path.abspath(os.path.expanduser(spec)))
    if not folder.is_dir():
        raise UsageError(f"-e {spec}: no such folder")
    _check_project(folder, spec)
    return folder


def _check_project(folder: Path, spec: str) -> None:
    if not ((folder / "pyproject.toml").is_file() or (folder / "setup.py").is_file()):
        raise UsageError(f"{spec}: not a Python project (it has no pyproject.toml or setup.py)")


def build_requirements_met(folder: Path) -> bool:
    """Whether the project's ``[build-system] requires`` are all installed here, so pip can build it without
    downloading a build environment (offline too)."""
    try:
        import tomllib  # type: ignore[import-not-found, unused-ignore]
    except ImportError:  # Python 3.10: no TOML reader in the standard library
        return False
    from zoo_core.requirements import unmet

    try:
        with open(folder / "pyproject.toml", "rb") as f:
            requires = tomllib.load(f).get("build-system", {}).get("requires")
    except (OSError, ValueError):
        return False
    if not isinstance(requires, list) or not requires:
        return False  # pip's default build backend: let pip decide
    return not unmet([str(r) for r in requires])


@dataclass
class Change:
    """A distribution that an install or uninstall added, changed or removed."""

    name: str
    old: str | None
    new: str | None
    plugins: list[str]

    def describe(self) -> str:
        plugins = ", ".join(f"'{p}'" for p in self.plugins)
        if self.new is None:
            what = f"removed {self.name} {self.old}"
        elif self.old is None:
            what = f"installed {self.name} {self.new}"
        elif self.old == self.new:
            what = f"reinstalled {self.name} {self.new}"
        else:
            what = f"updated {self.name} {self.old} -> {self.new}"
        if not plugins:
            return what + (" (not a zoo plugin: it declares no zoo.plugins entry point)" if self.new else "")
        return f"{what}: plugin {plugins}" if len(self.plugins) == 1 else f"{what}: plugins {plugins}"


def _changes(before: dict[str, InstalledDist], after: dict[str, InstalledDist]) -> list[Change]:
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is not None and new is not None and (old.version, old.stamp) == (new.version, new.stamp):
            continue
        plugins = sorted({*(old.plugins if old else []), *(new.plugins if new else [])})
        name = (new or old).name  # type: ignore[union-attr]
        changes.append(Change(name, old.version if old else None, new.version if new else None, plugins))
    return changes


def install(
    specs: Sequence[str] = (), editable: Sequence[str] = (), *, upgrade: bool = False, no_deps: bool = False,
    build_isolation: bool | None = None,
) -> list[Change]:  # fmt: skip
    """``pip install`` the specs (names, paths, URLs) and editable folders; the distributions that changed.

    ``build_isolation=None`` builds local projects with what is installed when their build requirements are
    all met (no download, works offline) and leaves pip's isolated build otherwise.
    """
    if not specs and not editable:
        raise UsageError("give what to install: a name, a path, a URL or -e PATH")
    paths = [_local(spec) for spec in specs]
    editable_folders = [_editable_folder(spec) for spec in editable]
    folders = list(editable_folders)
    for spec, path in zip(specs, paths, strict=True):
        if path is not None and path.is_dir():
            _check_project(path, spec)
            folders.append(path)
    if build_isolation is None:  # wheels need no build; a name, URL or sdist may need anything
        only_local = all(p is not None and (p.is_dir() or p.suffix == ".whl") for p in paths)
        build_isolation = not (only_local and all(build_requirements_met(f) for f in folders))
    args = ["install"]
    if upgrade:
        args.append("--upgrade")
    if no_deps:
        args.append("--no-deps")
    if not build_isolation:
        args.append("--no-build-isolation")
    args += [str(p) if p is not None else spec for spec, p in zip(specs, paths, strict=True)]
    for folder in editable_folders:
        args += ["-e", str(folder)]
    before = installed()
    pip(args)
    changes = _changes(before, installed())
    drop_cached(p for c in changes for p in c.plugins)
    return changes


# -- uninstall ---------------------------------------------------------------------------------------


def resolve_dists(names: Sequence[str], dists: dict[str, InstalledDist]) -> list[InstalledDist]:
    """Distributions to remove, named by distribution or by plugin name (``example`` -> ``zoo-example``)."""
    by_plugin = {p: d for d in dists.values() for p in d.plugins}
    chosen: dict[str, InstalledDist] = {}
    for name in names:
        dist = dists.get(canonicalize_name(name)) or by_plugin.get(name)
        if dist is None:
            raise UsageError(f"'{name}' is neither an installed distribution nor a plugin; `zoo plugins` lists "
                             "plugins with their distributions")  # fmt: skip
        if canonicalize_name(dist.name) == ZOO_DIST:
            raise UsageError("zoo uninstall removes plugins, not zoo itself (that is: python -m pip uninstall zoo)")
        if not dist.plugins:  # pip's job, not zoo's: a library other packages may need
            raise UsageError(f"{dist.name} is not a zoo plugin (it declares no zoo.plugins entry point); remove it "
                             "with pip if you mean to")  # fmt: skip
        chosen[canonicalize_name(dist.name)] = dist
    return list(chosen.values())


def uninstall(names: Sequence[str], *, yes: bool = False) -> list[Change]:
    """``pip uninstall`` the distributions (or plugins) named; the distributions that went."""
    if not names:
        raise UsageError("give the distributions or plugins to remove")
    before = installed()
    targets = resolve_dists(names, before)
    pip(["uninstall", *(["-y"] if yes else []), *(d.name for d in targets)])
    changes = _changes(before, installed())
    drop_cached(p for c in changes for p in c.plugins)
    return changes


def describe(changes: list[Change], verb: str) -> list[str]:
    """The lines ``zoo install`` / ``zoo uninstall`` print."""
    if not changes:
        return [f"zoo: nothing was {verb}"]
    lines = [f"zoo: {c.describe()}" for c in changes]
    added = [p for c in changes if c.new for p in c.plugins]
    if added:
        lines.append(f"zoo: next: `zoo plugins --check`, `zoo list --plugin {added[0]}`")
    return lines
