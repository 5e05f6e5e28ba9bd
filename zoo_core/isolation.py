"""The one place where plugin-supplied code runs: whatever it raises, ``SystemExit`` included, becomes that
plugin's ``PluginError`` (one line), except errors zoo itself defines, which keep their message and exit code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from zoo_core.errors import PluginError, ZooError

T = TypeVar("T")


def one_line(exc: BaseException, limit: int = 400) -> str:
    """``Type: message`` on one line, shortened to ``limit`` characters."""
    text = " ".join(str(exc).split())
    msg = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return msg if len(msg) <= limit else msg[: limit - 3] + "..."


def run_plugin_code(
    plugin: str, what: str, fn: Callable[..., T], *args: Any, passthrough: tuple[type[BaseException], ...] = (),
    **kwargs: Any,
) -> T:  # fmt: skip
    """``fn(*args, **kwargs)``; a failure is ``PluginError("plugin 'P' failed <what>: ...")``.

    ``KeyboardInterrupt`` and the ``passthrough`` types (say, out-of-memory errors the caller reports
    itself) propagate unchanged.
    """
    try:
        return fn(*args, **kwargs)
    except (ZooError, KeyboardInterrupt, *passthrough):
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin's bug must not become zoo's traceback
        raise PluginError(f"plugin '{plugin}' failed {what}: {one_line(e)}") from e
