"""Bounded waits on the Hub: no call to the Hub hangs, whatever the server does.

huggingface_hub's HTTP client waits forever by default (``timeout=None``), and its retries (up to five, with
waits of 1 to 8 s, and a second round of metadata requests at 60 s each when a file is not cached) turn one
server that accepts connections and never answers into minutes of waiting. zoo therefore runs each Hub call
inside ``bounded(seconds)``: a transport wrapped around the client's own (``set_client_factory``, so proxies and
certificates configured for huggingface_hub still apply) gives every request connect, read, write and pool
timeouts of ``seconds``, and holds a deadline across the library's retries:

- a metadata call (``transfer=False``) ends ``seconds`` after it began, however many retries it has left;
- a transfer (``transfer=True``: uploads and downloads of weights) ends only when no byte has moved for
  ``seconds``, so a large file on a slow link is not cut off by its size.

When the deadline passes, the request raises ``HubTimeoutError``. It derives from huggingface_hub's
``OfflineModeIsEnabled`` on purpose: that is the one network failure the library neither retries nor sleeps
over, and on which ``hf_hub_download`` still answers from its cache. ``zoo_registry.hub`` makes it one line.
Requests made outside ``bounded`` (timm's downloads, say) pass through untouched.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from huggingface_hub.errors import OfflineModeIsEnabled
from huggingface_hub.utils import _http, set_client_factory

from zoo_core.plugin_api import UsageError

ENV = "ZOO_HUB_TIMEOUT"
DEFAULT_TIMEOUT = 30.0


def timeout_seconds(value: float | str | None = None) -> float:
    """The timeout to use: ``value`` (``--timeout``) if given, else ``$ZOO_HUB_TIMEOUT``, else 30 s."""
    source = "--timeout"
    if value is None:
        value, source = os.environ.get(ENV) or None, ENV
    if value is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"{source}={value!r} is not a number of seconds: give a positive number such as 30")
    return seconds


class HubTimeoutError(OfflineModeIsEnabled):
    """The Hub did not answer (or, in a transfer, no byte moved) within the bounded wait."""

    def __init__(self, message: str, transfer: bool = False) -> None:
        super().__init__(message)
        self.transfer = transfer


@dataclass
class Wait:
    """One bounded Hub call: its limit, when it began, when bytes last moved, and whether it ran out."""

    seconds: float
    transfer: bool
    started: float = field(default_factory=time.monotonic)
    moved: float = 0.0
    timed_out: bool = False

    def __post_init__(self) -> None:
        self.moved = self.started

    def deadline(self) -> float:
        return (self.moved if self.transfer else self.started) + self.seconds

    def progress(self) -> None:
        self.moved = time.monotonic()

    def request_timeout(self) -> float:
        """How long one network operation of the next request may wait (raises once the deadline passed)."""
        left = self.deadline() - time.monotonic()
        if left <= 0:
            raise self.expired()
        return self.seconds if self.transfer else left

    def expired(self) -> Exception:
        self.timed_out = True
        return HubTimeoutError(f"no answer from the Hub within {self.seconds:g} s", self.transfer)


_current: Wait | None = None  # process-wide: huggingface_hub uploads from worker threads
_install_lock = threading.Lock()
_factory_wrapped: list[Any] = []  # [our factory] once installed


@contextmanager
def bounded(seconds: float, *, transfer: bool = False) -> Iterator[Wait]:
    """Bound every Hub request made inside: a metadata call to ``seconds`` in all, a transfer to ``seconds``
    without progress."""
    global _current
    _install()
    previous, _current = _current, Wait(seconds, transfer)
    try:
        yield _current
    finally:
        _current = previous


def _install() -> None:
    """Wrap the transports of the client huggingface_hub builds (once, and again if someone replaced the
    factory since)."""
    with _install_lock:
        current = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None)  # None: the library no longer says
        if _factory_wrapped and current in (None, _factory_wrapped[0]):
            return
        base = current or _http.default_client_factory

        def factory() -> Any:
            return _wrap_client(base())

        _factory_wrapped[:] = [factory]
        set_client_factory(factory)


def _wrap_client(client: Any) -> Any:
    # httpx keeps the default transport and the proxy mounts in these two attributes; every request goes
    # through one of them.
    client._transport = BoundedTransport(client._transport)
    client._mounts = {k: (v if v is None else BoundedTransport(v)) for k, v in client._mounts.items()}
    return client


class BoundedTransport(httpx2.BaseTransport):
    """An httpx transport that applies the current ``Wait`` to each request it sends."""

    def __init__(self, inner: httpx2.BaseTransport) -> None:
        self.inner = inner

    def close(self) -> None:
        self.inner.close()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        wait = _current
        if wait is None:
            return self.inner.handle_request(request)
        limit = wait.request_timeout()
        request.extensions = {**request.extensions,
                              "timeout": {"connect": limit, "read": limit, "write": limit, "pool": limit}}
        body = request.stream
        request.stream = Moving(body, wait)  # type: ignore[arg-type]
        try:
            response = self.inner.handle_request(request)
        except httpx2.TimeoutException as e:
            raise wait.expired() from e
        finally:
            request.stream = body
        wait.progress()
        response.stream = Moving(response.stream, wait)  # type: ignore[arg-type]
        return response


class Moving(httpx2.SyncByteStream):
    """A request or response body that marks progress on each chunk and turns a timeout into the wait's end."""

    def __init__(self, inner: Any, wait: Wait) -> None:
        self.inner, self.wait = inner, wait

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self.inner:
                self.wait.progress()
                yield chunk
        except httpx2.TimeoutException as e:
            raise self.wait.expired() from e

    def close(self) -> None:
        self.inner.close()
