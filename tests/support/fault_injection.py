"""Faults injected into zoo's file writes from outside zoo's code: a kill -9, a full disk or a refused permission
at the Nth file-system step under the folders a test watches.

zoo's code has no hook for this. ``install`` wraps the functions of ``os``, ``io``/``builtins`` and ``shutil``
that every write goes through (zoo looks them up as module attributes when it calls them), and counts the steps
that touch a watched folder: ``open`` (a file opened or created for writing), ``write`` (the first write to
such a file), ``fsync``, ``rename`` (``os.rename``/``os.replace``), ``mkdir``, ``delete`` (``os.unlink``,
``shutil.rmtree``), ``copy`` (``shutil.copyfile``) and ``link``. safetensors' ``save_file`` writes from compiled
code: it is one ``write`` step, and fails the way safetensors fails (a ``SafetensorError`` that names the OS error).

In a child process: ``python -m fault_injection ZOO-ARGS...`` with ``tests/support`` on ``PYTHONPATH`` and the
fault in ``ZOO_TEST_FAULT`` (JSON, see ``Fault``) runs ``zoo ZOO-ARGS...``. In the test's own process:
``with injected(Fault(...)):``. ``trace`` records every step (one JSON line each: its number, kind, absolute path
and, for a rename, the destination) without changing anything.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

ENV = "ZOO_TEST_FAULT"
OPS = ("open", "write", "fsync", "rename", "mkdir", "delete", "copy", "link")
ERRORS = {"enospc": errno.ENOSPC, "eacces": errno.EACCES}


@dataclass
class Fault:
    """What to do (``trace``, ``kill``, ``enospc``, ``eacces``) at which step under ``roots``.

    ``at`` counts the steps of the kinds in ``ops`` (all kinds when empty) from 1; with ``repeat`` every later
    step fails too (a folder that stays full or read-only). ``trace`` is a file (outside the roots) that gets one
    JSON line per step seen, whatever the action."""

    action: str
    roots: list[str]
    at: int = 0
    ops: list[str] = field(default_factory=list)
    trace: str | None = None
    repeat: bool = False

    def to_env(self) -> str:
        return json.dumps(asdict(self))


class _Injector:
    def __init__(self, fault: Fault) -> None:
        if fault.action not in ("trace", "kill", *ERRORS):
            raise ValueError(f"unknown fault action {fault.action!r}")
        unknown = set(fault.ops) - set(OPS)
        if unknown:
            raise ValueError(f"unknown step kinds {sorted(unknown)}")
        self.fault = fault
        self.roots = [os.path.realpath(r) for r in fault.roots]
        self.count = 0
        self.busy = False  # our own bookkeeping (the trace file) is not a step

    @staticmethod
    def full_path(path: Any) -> str | None:
        """The absolute path of a path or a file descriptor (None when it has none)."""
        if isinstance(path, int):
            try:
                path = os.readlink(f"/proc/self/fd/{path}")
            except OSError:
                return None
        try:
            return os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return None

    def watched(self, path: Any) -> str | None:
        """``path`` relative to the watched root it lies under, else None."""
        full = self.full_path(path)
        if full is None:
            return None
        for root in self.roots:
            if full == root or full.startswith(root + os.sep):
                return os.path.relpath(full, root)
        return None

    def step(self, op: str, path: Any, dest: Any = None) -> None:
        """Called before each step: count it, record it, and strike when it is the chosen one."""
        if self.busy:
            return
        rel = self.watched(path)
        if rel is None and dest is not None:
            rel = self.watched(dest)
        if rel is None or (self.fault.ops and op not in self.fault.ops):
            return
        self.count += 1
        if self.fault.trace:
            self.busy = True
            try:
                to = self.full_path(dest) if dest is not None else None
                line = {"n": self.count, "op": op, "path": self.full_path(path), "to": to}
                with _REAL["open"](self.fault.trace, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
            finally:
                self.busy = False
        if self.count != self.fault.at and not (self.fault.repeat and self.count > self.fault.at > 0):
            return
        if self.fault.action == "kill":
            sys.stdout.flush()
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        if self.fault.action in ERRORS:
            code = ERRORS[self.fault.action]
            raise OSError(code, os.strerror(code), self.full_path(path))


class _Watched:
    """A file opened for writing under a watched root: its first write is a step."""

    def __init__(self, f: Any, path: Any, injector: _Injector) -> None:
        self._f, self._path, self._injector, self._written = f, path, injector, False

    def write(self, data: Any) -> Any:
        if not self._written:
            self._written = True
            self._injector.step("write", self._path)
        return self._f.write(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __enter__(self) -> _Watched:
        self._f.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._f.__exit__(*exc)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._f)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


_REAL: dict[str, Any] = {"open": io.open}
_ACTIVE: list[_Injector] = []
_HELD: list[Any] = []


def _writing(mode: str) -> bool:
    return any(c in mode for c in "wax+")


def _patches(injector: _Injector) -> dict[tuple[Any, str], Any]:
    """(module, name) -> the wrapper that replaces it."""
    real = {name: getattr(os, name) for name in ("open", "fsync", "rename", "replace", "mkdir", "unlink", "remove",
                                                  "link")}  # fmt: skip
    real_open, real_rmtree, real_copyfile = io.open, shutil.rmtree, shutil.copyfile
    creating = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        writing = _writing(mode) and injector.watched(file) is not None
        if writing and not isinstance(file, int):
            injector.step("open", file)
        f = real_open(file, mode, *args, **kwargs)
        return _Watched(f, file, injector) if writing else f

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & creating and kwargs.get("dir_fd") is None:
            injector.step("open", path)
        return real["open"](path, flags, *args, **kwargs)

    def fsync(fd: Any) -> None:
        injector.step("fsync", fd.fileno() if hasattr(fd, "fileno") else fd)
        real["fsync"](fd)

    def renamer(name: str) -> Any:
        def rename(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs.get("src_dir_fd") is None and kwargs.get("dst_dir_fd") is None:
                injector.step("rename", src, dst)
            real[name](src, dst, *args, **kwargs)

        return rename

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("dir_fd") is None:
            injector.step("mkdir", path)
        real["mkdir"](path, *args, **kwargs)

    def deleter(name: str) -> Any:
        def delete(path: Any, *args: Any, **kwargs: Any) -> None:
            if kwargs.get("dir_fd") is None:  # rmtree's own unlinks are part of its one step
                injector.step("delete", path)
            real[name](path, *args, **kwargs)

        return delete

    def rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        injector.step("delete", path)
        injector.busy, was = True, injector.busy  # the files inside go with the one step
        try:
            real_rmtree(path, *args, **kwargs)
        finally:
            injector.busy = was

    def copyfile(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        injector.step("copy", dst)
        injector.busy, was = True, injector.busy
        try:
            return real_copyfile(src, dst, *args, **kwargs)
        finally:
            injector.busy = was

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        injector.step("link", dst)
        real["link"](src, dst, *args, **kwargs)

    patches = {
        (io, "open"): open_, (builtins, "open"): open_, (os, "open"): os_open, (os, "fsync"): fsync,
        (os, "rename"): renamer("rename"), (os, "replace"): renamer("replace"), (os, "mkdir"): mkdir,
        (os, "unlink"): deleter("unlink"), (os, "remove"): deleter("remove"), (shutil, "rmtree"): rmtree,
        (shutil, "copyfile"): copyfile, (os, "link"): link,
    }  # fmt: skip
    try:
        import safetensors.torch as st
    except ImportError:
        return patches
    real_save_file = st.save_file

    def save_file(tensors: Any, filename: Any, *args: Any, **kwargs: Any) -> None:
        try:
            injector.step("write", filename)
        except OSError as e:  # what safetensors' Rust code raises for an I/O error
            from safetensors import SafetensorError

            raise SafetensorError(f"Error while serializing: I/O error: {e.strerror} (os error {e.errno}) at path "
                                  f'"{os.path.dirname(os.fsdecode(filename))}/.tmpXXXXXX"') from None  # fmt: skip
        real_save_file(tensors, filename, *args, **kwargs)

    patches[(st, "save_file")] = save_file
    return patches


@contextmanager
def injected(fault: Fault) -> Iterator[_Injector]:
    """The fault, in this process, for the ``with`` block."""
    injector = _Injector(fault)
    patches = _patches(injector)
    saved = {key: getattr(*key) for key in patches}
    for (module, name), wrapper in patches.items():
        setattr(module, name, wrapper)
    _ACTIVE.append(injector)
    try:
        yield injector
    finally:
        _ACTIVE.remove(injector)
        for (module, name), original in saved.items():
            setattr(module, name, original)


def install_from_env() -> None:
    """Install the fault ``ZOO_TEST_FAULT`` describes for the rest of this process."""
    text = os.environ.get(ENV)
    if text:
        held = injected(Fault(**json.loads(text)))
        held.__enter__()
        _HELD.append(held)  # the patches last as long as the context is not closed (or collected)


def read_trace(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The steps a ``trace`` recorded, in order."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


if __name__ == "__main__":
    install_from_env()
    from zoo_core.cli import main

    sys.exit(main(sys.argv[1:]))
