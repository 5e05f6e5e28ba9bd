"""Errors a user can cause: one family, each with a message that says what to do."""

from __future__ import annotations


class ZooError(Exception):
    """Base of every error zoo reports to a user; the CLI prints it as one line: ``zoo: <label>: <message>``."""

    exit_code = 1
    label = "error"
    # False when another process of the same distributed run prints this very error (rank 0 does).
    report = True


class UsageError(ZooError):
    """The command line or arguments were wrong."""

    exit_code = 2


class UnknownNameError(UsageError):
    """A model, dataset, trainer or tag that the catalogue does not have."""

    def __init__(self, kind: str, name: str, suggestions: list[str] | None = None) -> None:
        self.kind, self.name, self.suggestions = kind, name, list(suggestions or [])
        hint = f"; did you mean {' or '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown {kind} '{name}'{hint}")


class PluginError(ZooError):
    """A plugin failed to load or to register (raised only with ZOO_STRICT_PLUGINS=1)."""


class DeviceError(UsageError):
    """The requested device or precision is not available here."""


class WeightsError(ZooError):
    """Weights that cannot be downloaded, read or loaded into a model."""


class Interrupted(ZooError):
    """The user stopped a command (Ctrl-C); the message says how to carry on."""

    exit_code = 130
    label = "interrupted"
