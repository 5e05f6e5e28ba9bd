"""Which declared requirements (``Requires-Dist``, ``[build-system] requires``) the installed packages do not
meet, read from metadata only: nothing is imported, nothing is downloaded."""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Unmet:
    """A requirement that what is installed does not satisfy."""

    requirement: str
    installed: str | None  # the installed version, or None when the package is missing

    def describe(self) -> str:
        have = f"installed: {self.installed}" if self.installed else "not installed"
        return f"{self.requirement} ({have})"


def unmet(requirements: Iterable[str]) -> list[Unmet]:
    """The requirements (PEP 508 strings) that apply here and are missing or of the wrong version.

    Requirements behind an extra (``; extra == "dev"``) or a marker that does not hold on this machine are
    skipped; pre-releases count as matching, as an installed pre-release is what the user chose.
    """
    from packaging.markers import UndefinedEnvironmentName
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion

    found = []
    for text in requirements:
        try:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
        except (InvalidRequirement, UndefinedEnvironmentName):
            found.append(Unmet(f"{text} (unreadable requirement)", None))
            continue
        try:
            version = md.version(req.name)
        except md.PackageNotFoundError:
            found.append(Unmet(str(req), None))
            continue
        try:
            ok = not req.specifier or req.specifier.contains(version, prereleases=True)
        except InvalidVersion:
            ok = False
        if not ok:
            found.append(Unmet(str(req), version))
    return found
