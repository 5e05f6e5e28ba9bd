"""``zoo plugins --check``: what is wrong with the installed plugins, and which names they share.

Problems (exit 1): an entry point that cannot be imported or whose name is taken, a hook that raised or
registered something invalid, a distribution whose declared requirements are not met here. Notes: names
that several plugins register, with the plugin a bare name means. Third-party plugins are loaded afresh (their
cache dropped, every hook called); zoo's own come from the cache when it is fresh.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from zoo_core import hookspecs
from zoo_core.catalogue_cache import drop_cached
from zoo_core.entry_points import find_entry_points
from zoo_core.plugins import ZOO_DIST, PluginHost, PluginInfo
from zoo_core.requirements import unmet

KINDS = ("model", "dataset", "trainer", "command", "recipe")


@dataclass
class Finding:
    """One thing ``--check`` reports; ``problem`` findings make it exit 1."""

    problem: bool
    kind: str  # entry point | hook | requirement | name clash
    plugin: str
    message: str

    def line(self) -> str:
        return f"{'problem' if self.problem else 'note':<8} {self.kind:<12} {self.message}"


@dataclass
class CheckReport:
    plugins: list[dict[str, Any]]
    findings: list[Finding]
    clashes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.problem]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": not self.problems, "plugins": self.plugins, "findings": [asdict(f) for f in self.findings],
                "clashes": self.clashes}  # fmt: skip


@contextmanager
def _lenient() -> Iterator[None]:
    """Every plugin is checked even under ZOO_STRICT_PLUGINS (which would stop at the first failure)."""
    saved = os.environ.pop("ZOO_STRICT_PLUGINS", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["ZOO_STRICT_PLUGINS"] = saved


def _who(info: PluginInfo) -> str:
    return f"plugin '{info.name}' ({info.dist or 'no distribution'} {info.version or ''})".replace(" )", ")")


def _failures(info: PluginInfo) -> list[Finding]:
    hooks = {n for n in dir(hookspecs) if n.startswith("zoo_")}
    found = []
    for error in info.errors:
        where, sep, message = error.partition(": ")
        if sep and where == "import":
            found.append(Finding(True, "entry point", info.name, f"{_who(info)}: cannot import {info.module}: "
                                                                  f"{message}"))  # fmt: skip
        elif sep and where in hooks:
            found.append(Finding(True, "hook", info.name, f"{_who(info)}: {where} failed: {message}"))
        elif "already taken" in error:
            found.append(Finding(True, "entry point", info.name, f"{_who(info)}: {error}"))
        else:
            found.append(Finding(True, "plugin", info.name, f"{_who(info)}: {error}"))
    return found


def _requirements(host: PluginHost, infos: list[PluginInfo]) -> list[Finding]:
    found = []
    seen: set[str] = set()
    for info in infos:
        if not info.dist or info.dist in seen or host.infos.get(info.name) is not info:
            continue  # (the last: a second distribution declaring a taken name, reported as such)
        seen.add(info.dist)
        requires = host.requires(info.name)
        plugins = ", ".join(f"'{i.name}'" for i in infos if i.dist == info.dist)
        for miss in unmet(requires):
            found.append(Finding(True, "requirement", info.name,
                                 f"{info.dist} {info.version} (plugin {plugins}) needs {miss.describe()}"))  # fmt: skip
    return found


def _clashes(host: PluginHost) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Every name that several plugins register, and the notes: third-party ones one by one, clashes among
    zoo's own plugins (torchvision and timm share many architectures) counted."""
    catalogue = host.catalogue
    builtin = {i.name for i in host.plugin_list if i.builtin}
    clashes, notes = [], []
    counted: dict[tuple[str, tuple[str, ...]], int] = {}
    for kind in KINDS:
        by_name: dict[str, list[str]] = {}
        for entry in catalogue.all(kind):  # sorted by name, then precedence
            by_name.setdefault(entry.name, []).append(entry.plugin)
        for name, plugins in by_name.items():
            if len(plugins) < 2:
                continue
            means = catalogue.bare(kind)[name].qualified
            clashes.append({"kind": kind, "name": name, "plugins": plugins, "bare": means})
            if set(plugins) <= builtin:
                counted[(kind, tuple(plugins))] = counted.get((kind, tuple(plugins)), 0) + 1
            else:
                notes.append(Finding(False, "name clash", plugins[-1], f"{kind} '{name}' is registered by "
                                     f"{', '.join(plugins)}; a bare '{name}' means {means}"))  # fmt: skip
    for (kind, plugins), n in counted.items():
        notes.append(Finding(False, "name clash", plugins[0], f"{', '.join(plugins)} share {n} {kind} name"
                             f"{'s' if n != 1 else ''}; a bare name means {plugins[0]}'s"))  # fmt: skip
    return clashes, notes


def check_plugins() -> CheckReport:
    """Load every plugin (third-party ones afresh) and report what is wrong with them."""
    drop_cached({ep.name for ep in find_entry_points(use_cache=False) if ep.dist != ZOO_DIST})  # their hooks run now
    with _lenient():
        host = PluginHost()
        host.load()
    findings = [f for info in host.plugin_list for f in _failures(info)]
    findings += _requirements(host, host.plugin_list)
    clashes, notes = _clashes(host)
    plugins = [{"name": i.name, "dist": i.dist, "version": i.version, "status": i.status, "errors": i.errors}
               for i in host.plugin_list]  # fmt: skip
    return CheckReport(plugins, findings + notes, clashes)


def report_lines(report: CheckReport) -> list[str]:
    """What ``zoo plugins --check`` prints."""
    statuses = [p["status"] for p in report.plugins]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in ("ok", "error", "disabled") if statuses.count(s))
    lines = [f"checked {len(statuses)} plugins: {counts}"]
    lines += [f.line() for f in report.findings]
    n = len(report.problems)
    lines.append(f"{n} problem{'s' if n != 1 else ''}" if n else "no problems")
    return lines
