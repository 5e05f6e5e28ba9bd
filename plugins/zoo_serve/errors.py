"""The app's answers to what went wrong: an HTTP status per kind of error, and one line of text."""

from __future__ import annotations

from zoo_core.plugin_api import UnknownNameError, UsageError, ZooError, first_line


class NotFound(UsageError):
    """A page or a name the app does not have."""


class TooLarge(UsageError):
    """An upload over the size or pixel limit."""


def status_of(error: BaseException) -> int:
    """The HTTP status that says what ``error`` means to the client."""
    if isinstance(error, TooLarge):
        return 413
    if isinstance(error, (NotFound, UnknownNameError)):
        return 404
    if isinstance(error, UsageError):
        return 400
    return 500


def message_of(error: BaseException) -> str:
    """What went wrong as one line: a ZooError's own message, anything else by its type and first line."""
    return first_line(error) if isinstance(error, ZooError) else first_line(error, typed=True)
