"""``zoo train --nproc-per-node N``: the same ``zoo train`` run by torchrun in N processes per machine.

zoo starts no process of its own: it hands torchrun (``torch.distributed.run``, run in this process) the
command ``python -m zoo_core train ...`` with the user's options, and torchrun starts, watches and stops
the workers as it always does. On several machines ``--nnodes``, ``--node-rank`` and ``--rdzv-endpoint``
go to torchrun's c10d rendezvous. torchrun's verdict becomes one line: the rank that died and how; a rank
that stopped on a zoo error has printed it already, and its exit code is the command's.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shlex
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from zoo_core.plugin_api import UsageError, ZooError

# The options that start torchrun; every other option goes to the workers unchanged.
LAUNCH_OPTIONS = ("nproc_per_node", "nnodes", "node_rank", "rdzv_endpoint")
COMMAND_ENV = "ZOO_LAUNCH_COMMAND"  # the command the user typed, recorded by the run instead of the worker's
ZOO_EXIT_CODES = (1, 2, 130)  # a worker that exits with one of these has printed its own one-line error


class LaunchError(ZooError):
    """torchrun could not start the run, or a process of it died."""


@dataclass
class Launch:
    """How many processes, on how many machines, meeting where."""

    nproc_per_node: int | None = None
    nnodes: int | None = None
    node_rank: int | None = None
    rdzv_endpoint: str | None = None

    @property
    def requested(self) -> bool:
        return any(v is not None for v in (self.nproc_per_node, self.nnodes, self.node_rank, self.rdzv_endpoint))

    @property
    def processes(self) -> int:
        return 1 if self.nproc_per_node is None else self.nproc_per_node

    @property
    def machines(self) -> int:
        return 1 if self.nnodes is None else self.nnodes

    def check(self) -> None:
        """Raise UsageError for options that cannot start a run."""
        if os.environ.get("WORLD_SIZE") and os.environ.get("RANK"):
            raise UsageError("zoo is already running under torchrun (RANK and WORLD_SIZE are set): drop "
                             "--nproc-per-node, --nnodes, --node-rank and --rdzv-endpoint")  # fmt: skip
        if self.processes < 1 or self.machines < 1:
            raise UsageError("--nproc-per-node and --nnodes must be at least 1")
        if self.machines > 1 and not self.rdzv_endpoint:
            raise UsageError(f"--nnodes {self.machines} needs --rdzv-endpoint HOST:PORT: the address of one machine "
                             "of the run, the same on every machine")  # fmt: skip
        if self.node_rank is not None and not 0 <= self.node_rank < self.machines:
            raise UsageError(f"--node-rank must be in 0..{self.machines - 1}, got {self.node_rank}")
        if self.rdzv_endpoint is not None:
            host, _, port = self.rdzv_endpoint.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise UsageError(f"--rdzv-endpoint must be HOST:PORT, got {self.rdzv_endpoint!r}")

    def torchrun_args(self, worker_args: list[str]) -> list[str]:
        """torchrun's command line for ``python -m zoo_core train WORKER_ARGS``."""
        args = ["--nproc-per-node", str(self.processes), "--nnodes", str(self.machines)]
        if self.rdzv_endpoint:
            # Every machine runs the same command, so the same arguments name the same rendezvous; a machine
            # started with other options waits in another one and the run never starts (and says so).
            run_id = "zoo-" + hashlib.sha256(shlex.join(worker_args).encode()).hexdigest()[:12]
            args += ["--rdzv-backend", "c10d", "--rdzv-endpoint", self.rdzv_endpoint, "--rdzv-id", run_id]
            if self.node_rank is not None:
                args += ["--node-rank", str(self.node_rank)]
        else:
            args.append("--standalone")  # one machine: torchrun picks a free local port
        return [*args, "-m", "zoo_core", "train", *worker_args]


def launch(launch: Launch, worker_args: list[str], command: str, info: Any = None) -> int:
    """Run ``zoo train WORKER_ARGS`` under torchrun as ``launch`` says; return the run's exit code (0, or
    the code of the zoo error a rank printed). A rank that died is a LaunchError."""
    launch.check()
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.run import get_args_parser, run

    argv = launch.torchrun_args(worker_args)
    parser = get_args_parser()
    parser.allow_abbrev = False  # a worker's option (--log) must not read as an abbreviation of torchrun's (--log-dir)
    # One machine's cores shared out among its processes (torchrun alone would give each one thread).
    threads = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 1) // launch.processes))
    if info is not None:
        where = f"; rendezvous at {launch.rdzv_endpoint}" if launch.rdzv_endpoint else ""
        info(f"starting {launch.processes} process(es) on this machine, {launch.machines} machine(s) in all, "
             f"{threads} CPU thread(s) each{where}: python -m torch.distributed.run {shlex.join(argv)}")  # fmt: skip
    try:
        # torchrun hands its own environment to the workers.
        with _quiet_torchrun(), _environment(OMP_NUM_THREADS=threads, **{COMMAND_ENV: command}):
            run(parser.parse_args(argv))
    except ChildFailedError as e:
        return _verdict(e)
    except SignalException:  # Ctrl-C or a scheduler's SIGTERM: torchrun stopped the workers, and rank 0 said
        return 130  # how to continue the run
    except RendezvousError as e:
        from zoo_core.plugin_api import brief

        cause = f": {brief(e.__cause__)}" if e.__cause__ is not None else ""
        raise LaunchError(f"the rendezvous at {launch.rdzv_endpoint or 'localhost'} failed ({brief(e)}{cause}); "
                          f"start the same zoo train command with --nnodes {launch.machines} and the same "
                          "--rdzv-endpoint on every machine") from None  # fmt: skip
    return 0


def _verdict(error: Any) -> int:
    """The exit code of a run torchrun saw fail, or a LaunchError naming the rank that died."""
    # torchrun stops the other workers with SIGTERM once one has failed: they are not the cause. (The
    # failures' timestamps cannot order them: torchrun stamps them all when it collects them.)
    died = sorted((rank, f) for rank, f in error.failures.items()
                  if f.exitcode != -signal.SIGTERM and f.exitcode not in ZOO_EXIT_CODES)  # fmt: skip
    if not died:
        rank, failure = error.get_first_failure()
        if failure.exitcode > 0:
            return int(failure.exitcode)  # the rank printed its zoo error
        died = [(rank, failure)]
    rank, failure = died[0]
    how = f"was killed by {failure.signal_name()}" if failure.exitcode < 0 else f"exited with code {failure.exitcode}"
    raise LaunchError(f"rank {rank} (local rank {failure.local_rank}, pid {failure.pid}) {how} and the run stopped; "
                      "continue it with the same command and --resume")  # fmt: skip


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``values`` in ``os.environ`` for the block, then the environment as it was."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _quiet_torchrun() -> Iterator[None]:
    """Keep torchrun's own log lines (its warnings, its account of failed workers) off the terminal: zoo says
    in one line what happened. ``LOGLEVEL`` set in the environment keeps them."""
    if os.environ.get("LOGLEVEL"):
        yield
        return
    # torch gives "torch.distributed" a stderr handler of its own and stops propagation there: swap its
    # handlers for a null one while torchrun runs.
    logger = logging.getLogger("torch.distributed")
    saved = (logger.handlers[:], logger.propagate)
    logger.handlers[:] = [logging.NullHandler()]
    logger.propagate = False
    try:
        yield
    finally:
        logger.handlers[:], logger.propagate = saved
        sys.stderr.flush()
