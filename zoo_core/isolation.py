"""The one place where plugin-supplied code runs: whatever it raises, ``SystemExit`` included, becomes that
plugin's ``PluginError`` (one line), except errors zoo itself defines, which keep their message and exit code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from zoo_core.errors import PluginError, ZooError, first_line

T = TypeVar("T")


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
        raise PluginError(f"plugin '{plugin}' failed {what}: {first_line(e, typed=True, whole=True)}") from e
