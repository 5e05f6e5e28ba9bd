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


def first_line(
    exc: BaseException, *, typed: bool = False, limit: int | None = 400, whole: bool = False
) -> str:  # fmt: skip
    """What went wrong, as one line: the message's first line, else the exception's type name.

    Exceptions often carry a summary line and pages of detail (torch's size mismatches, CUDA's advice), so
    the first line is the one a user needs. A first line that ends in ``:`` only introduces what follows
    (``Error(s) in loading state_dict for Net:``), so the next line comes with it. ``whole`` joins every
    line instead, for errors whose reason comes later (pluggy names the bad argument on its third line; the
    Hub's answers explain themselves after the status). ``typed`` puts ``Type: `` in front; ``limit`` shortens
    the result to that many characters, ``...`` included.
    """
    lines = [" ".join(line.split()) for line in str(exc).splitlines()]
    lines = [line for line in lines if line]
    if whole or (len(lines) > 1 and lines[0].endswith(":")):
        text = " ".join(lines if whole else lines[:2])
    else:
        text = lines[0] if lines else ""
    name = type(exc).__name__
    text = (f"{name}: {text}" if text else name) if typed else text or name
    return text if limit is None or len(text) <= limit else text[: max(limit - 3, 0)] + "..."
