"""Advisory inter-process locks on a lock file (``flock`` on POSIX, ``msvcrt.locking`` on Windows)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zoo_core.errors import ZooError


class LockBusy(Exception):
    """A non-blocking lock attempt found the lock held by another process."""


def _try_lock(fd: int, shared: bool) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: no shared mode, an exclusive lock on the first byte
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout: float | None = 300.0) -> Iterator[None]:
    """Hold a lock on ``path`` (created if missing) for the ``with`` block.

    ``timeout=0`` raises LockBusy at once when the lock is held; otherwise WeightsError after ``timeout``
    seconds. The lock file is never deleted: deleting it would let two processes lock different files.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.005
        while not _try_lock(fd, shared):
            if timeout == 0:
                raise LockBusy(str(path))
            if deadline is not None and time.monotonic() > deadline:
                raise ZooError(f"{path}: still locked by another zoo process after {timeout:.0f}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
