"""Training in several processes, on one machine or many, on torchrun's contract: ``env://`` (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), the process group,
and the few collectives a trainer needs.

zoo starts no process itself: ``torchrun`` does (``zoo train --nproc-per-node N`` runs it for you, SLURM's
``srun`` runs it on each node), and every process runs the same command. ``join()`` reads the environment
and, with ``WORLD_SIZE`` above 1, joins the process group with a timeout, so a rank that stops answering
ends the job with an error instead of a hang: gloo for CPU tensors, plus NCCL for CUDA tensors where CUDA is
available (``"cpu:gloo,cuda:nccl"``). Without it, ``Distributed()`` is the single process, for which every
helper below is free and does nothing.

Control messages (settings, checkpoints, counts) travel as CPU tensors over gloo and as JSON, never as
pickles; DistributedDataParallel's gradients use NCCL on GPUs. A collective that fails (a peer died, the
network went away, the timeout passed) is a ``CommunicationError``: one line naming this rank.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from zoo_core.errors import DeviceError, UsageError, ZooError

TIMEOUT_ENV = "ZOO_DIST_TIMEOUT"
# Long enough for rank 0 to publish or to decode a dataset into the cache while the others wait at a
# barrier; a dead process is noticed at once anyway (its sockets close), the timeout only ends a hung one.
DEFAULT_TIMEOUT_S = 600.0
OPS = ("sum", "mean", "max", "min")
# What gloo and NCCL say when a peer has gone; anything else a collective raises is a bug, not a lost peer.
_PEER_LOST = re.compile(r"connection (closed|reset|refused)|broken pipe|timed out|collective operation timeout|"
                        r"\bnccl\b|\bgloo\b", re.IGNORECASE)  # fmt: skip


class CommunicationError(ZooError):
    """A process of a distributed run stopped answering: it died, hung, or the network failed."""


@dataclass
class Distributed:
    """This process's place in the run; the default is a single process (every helper a no-op)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str | None = None  # "gloo" or "cpu:gloo,cuda:nccl"; None for one process
    timeout_s: float = DEFAULT_TIMEOUT_S
    owned: bool = field(default=False, repr=False)  # joined by zoo, so zoo leaves the group at the end

    @property
    def enabled(self) -> bool:
        """True with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files, publishes and reports progress."""
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        """Local rank 0: the first process of its machine (it fills that machine's caches)."""
        return self.local_rank == 0

    @property
    def nodes(self) -> int:
        return max(1, self.world_size // max(1, self.local_world_size))

    def describe(self) -> dict[str, Any]:
        """What a run records about how it was distributed."""
        return {"world_size": self.world_size, "nodes": self.nodes, "processes_per_node": self.local_world_size,
                "backend": self.backend}  # fmt: skip

    # -- devices -------------------------------------------------------------------------------------

    def device(self, spec: str | None) -> Any:
        """The torch.device this process trains on: ``spec`` (auto, cpu, cuda), with CUDA's index taken
        from ``LOCAL_RANK`` when there are several processes."""
        import torch

        from zoo_core.devices import resolve_device

        if not self.enabled:
            return resolve_device(spec or "auto")
        spec = (spec or "auto").strip().lower()
        if re.fullmatch(r"cuda:\d+", spec):
            raise UsageError(f"--device {spec}: in a distributed run each process uses cuda:LOCAL_RANK; "
                             "pass --device cuda (or auto)")  # fmt: skip
        device = resolve_device(spec)
        if device.type != "cuda":
            return device
        if self.backend is None or "nccl" not in self.backend:
            raise DeviceError("the process group has no NCCL backend for CUDA tensors; use --device cpu")
        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise DeviceError(f"rank {self.rank}: LOCAL_RANK is {self.local_rank} but this machine has {count} "
                              f"CUDA device(s); start at most {count} processes per machine")  # fmt: skip
        device = torch.device("cuda", self.local_rank)
        torch.cuda.set_device(device)
        return device

    def wrap(self, model: Any) -> Any:
        """``model`` in DistributedDataParallel (gradients averaged over the ranks in ``backward``) when
        there are several processes; the model itself otherwise. Train through the wrapper; save, evaluate
        and publish the model itself.

        Buffers are not broadcast at each step: BatchNorm statistics stay each rank's own (its share of
        the data) until they are averaged before evaluation.
        """
        if not self.enabled:
            return model
        import inspect

        from torch.nn.parallel import DistributedDataParallel

        device = next(model.parameters()).device
        # Newer torch names the option forward_sync_buffers (and deprecates the old name); buffers are still
        # made equal once, when the wrapper is built, either way.
        known = inspect.signature(DistributedDataParallel.__init__).parameters
        no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in known else {"broadcast_buffers": False}
        with self._failures("setting up DistributedDataParallel"):
            return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                           **no_sync)  # fmt: skip

    # -- collectives -------------------------------------------------------------------------------------

    def all_reduce(self, value: Any, op: str = "sum") -> Any:
        """``value`` reduced over every rank (``sum``, ``mean``, ``max``, ``min``). A number comes back as a
        float; a tensor is reduced in place on its own device (NCCL for CUDA tensors) and returned."""
        if op not in OPS:
            raise ValueError(f"op must be one of {', '.join(OPS)}, got {op!r}")
        if not self.enabled:
            return value if hasattr(value, "shape") else float(value)
        import torch
        import torch.distributed as dist

        tensor = value if torch.is_tensor(value) else torch.tensor(float(value), dtype=torch.float64)
        if op == "mean" and not tensor.is_floating_point():
            raise ValueError("op 'mean' needs a floating-point tensor")
        reduce_op = {"sum": dist.ReduceOp.SUM, "mean": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX,
                     "min": dist.ReduceOp.MIN}[op]  # fmt: skip
        with self._failures(f"all_reduce({op})"):
            dist.all_reduce(tensor, op=reduce_op)
        if op == "mean":
            tensor.div_(self.world_size)
        return tensor if torch.is_tensor(value) else float(tensor)

    def all_gather(self, tensor: Any) -> list[Any]:
        """Every rank's ``tensor`` (the same shape and dtype on every rank, on the CPU), in rank order."""
        if not self.enabled:
            return [tensor]
        import torch
        import torch.distributed as dist

        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        with self._failures("all_gather"):
            dist.all_gather(out, tensor.contiguous())
        return out

    def barrier(self) -> None:
        """Wait until every rank gets here (over gloo, whatever the training device)."""
        if self.enabled:
            import torch

            self.all_reduce(torch.zeros(1))

    def broadcast_bytes(self, data: bytes | None, src: int = 0) -> bytes:
        """Rank ``src``'s ``data`` on every rank (the others pass None)."""
        if not self.enabled:
            return data or b""
        import torch
        import torch.distributed as dist

        mine = self.rank == src
        size = torch.tensor([len(data or b"") if mine else 0], dtype=torch.int64)
        with self._failures("broadcast"):
            dist.broadcast(size, src)
            n = int(size)
            if n == 0:
                return b""
            buffer = torch.frombuffer(bytearray(data or b""), dtype=torch.uint8) if mine else \
                torch.empty(n, dtype=torch.uint8)  # fmt: skip
            dist.broadcast(buffer, src)
        return bytes(data or b"") if mine else buffer.numpy().tobytes()

    def broadcast_json(self, obj: Any = None, src: int = 0) -> Any:
        """Rank ``src``'s JSON-able ``obj`` on every rank (the others pass None)."""
        if not self.enabled:
            return obj
        payload = json.dumps(obj).encode() if self.rank == src else None
        return json.loads(self.broadcast_bytes(payload, src).decode())

    @contextlib.contextmanager
    def local_main_first(self) -> Iterator[None]:
        """Run the block on each machine's local rank 0 first, then on the other ranks (which then find
        that machine's caches filled instead of all building them at once)."""
        if not self.is_local_main:
            self.barrier()
        yield
        if self.is_local_main:
            self.barrier()

    @contextlib.contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        try:
            yield
        except RuntimeError as e:  # torch.distributed.DistError and gloo's / NCCL's own RuntimeErrors
            if peer_failure(e) is None:
                raise  # a mistake in the call (shapes, dtypes), not a lost peer
            raise CommunicationError(lost_contact(self.rank, what, e)) from None

    # -- leaving -----------------------------------------------------------------------------------------

    def close(self, wait: bool = True) -> None:
        """Leave the process group if zoo joined it: with ``wait``, once every rank is here (a run that
        ended well); without it at once (a run that failed, whose peers may be gone)."""
        if self.owned:
            import gc

            import torch.distributed as dist

            if dist.is_initialized():
                if wait:
                    with contextlib.suppress(CommunicationError):  # the run's work is done; a peer left early
                        self.barrier()
                # A DistributedDataParallel wrapper still alive in a reference cycle keeps the group's threads
                # running into interpreter shutdown, where destroying them aborts the process (SIGABRT).
                gc.collect()
                dist.destroy_process_group()
            self.owned = False


def lost_contact(rank: int, what: str, exc: BaseException) -> str:
    return (f"rank {rank}: lost contact with the other processes of this run during {what} ({brief(exc)}); "
            "a process died or stopped answering, or the network failed")  # fmt: skip


def brief(exc: BaseException | str) -> str:
    """The gist of a gloo / NCCL error: its first sentence, without the C++ source location."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h|hpp):\d+\]\s*", "", text)
    first = re.split(r"(?<=[a-z0-9\]])\. ", text, maxsplit=1)[0]
    return first if len(first) <= 160 else first[:157] + "..."


def peer_failure(exc: BaseException) -> str | None:
    """The one-line reason when ``exc`` (or what caused it) is a collective that failed, else None."""
    import torch.distributed as dist

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CommunicationError):
            return str(current)
        if isinstance(current, getattr(dist, "DistError", ())) or (
            isinstance(current, RuntimeError) and _PEER_LOST.search(str(current))
        ):
            return brief(current)
        current = current.__cause__ or current.__context__
    return None


def _env_int(name: str, default: int | None = None) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise UsageError(f"the environment variable {name}={raw!r} is not an integer") from None


def from_environment() -> dict[str, int] | None:
    """torchrun's ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and ``LOCAL_WORLD_SIZE``; None when not set."""
    world, rank = _env_int("WORLD_SIZE"), _env_int("RANK")
    if world is None and rank is None:
        return None
    if world is None or rank is None:
        raise UsageError("RANK and WORLD_SIZE must be set together (torchrun sets both); start zoo with torchrun "
                         "or `zoo train --nproc-per-node N`")  # fmt: skip
    local_rank = _env_int("LOCAL_RANK", 0)
    local_world = _env_int("LOCAL_WORLD_SIZE", world)
    assert local_rank is not None and local_world is not None
    if world < 1 or not 0 <= rank < world or not 0 <= local_rank < max(local_world, 1):
        raise UsageError(f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world} "
                         f"LOCAL_RANK={local_rank} LOCAL_WORLD_SIZE={local_world}")  # fmt: skip
    return {"rank": rank, "world_size": world, "local_rank": local_rank, "local_world_size": local_world}


def timeout_from_environment(timeout_s: float | None = None) -> float:
    """``timeout_s``, else ``$ZOO_DIST_TIMEOUT``, else the default, in seconds."""
    if timeout_s is None:
        raw = os.environ.get(TIMEOUT_ENV)
        try:
            timeout_s = float(raw) if raw else DEFAULT_TIMEOUT_S
        except ValueError:
            raise UsageError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds") from None
    if not timeout_s > 0:
        raise UsageError(f"the distributed timeout must be a positive number of seconds, got {timeout_s}")
    return float(timeout_s)


def join(timeout_s: float | None = None) -> Distributed:
    """This process's ``Distributed``: the process group already initialised (kept), else the one torchrun's
    environment describes (joined now, with ``timeout_s`` for joining and for every collective), else a
    single process."""
    env = from_environment()
    timeout = timeout_from_environment(timeout_s)
    if env is None or env["world_size"] == 1:
        import sys

        if "torch.distributed" not in sys.modules:  # nothing can have initialised a group: stay light
            return Distributed(timeout_s=timeout)
    import datetime

    import torch
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        local = env or {"local_rank": 0, "local_world_size": dist.get_world_size()}
        return Distributed(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local["local_rank"],
                           local_world_size=local["local_world_size"], backend=str(dist.get_backend()),
                           timeout_s=timeout)  # fmt: skip
    if env is None or env["world_size"] == 1:
        return Distributed(timeout_s=timeout)
    if not dist.is_available():
        raise UsageError("this build of torch has no torch.distributed; run zoo in one process")
    cuda = torch.cuda.is_available() and dist.is_nccl_available()
    backend = "cpu:gloo,cuda:nccl" if cuda else "gloo"
    if cuda and env["local_rank"] < torch.cuda.device_count():
        torch.cuda.set_device(env["local_rank"])  # before NCCL's lazy init picks a device
    where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
    try:
        dist.init_process_group(backend, init_method="env://", rank=env["rank"], world_size=env["world_size"],
                                timeout=datetime.timedelta(seconds=timeout))  # fmt: skip
    except ValueError as e:  # env:// without MASTER_ADDR / MASTER_PORT
        raise UsageError(f"cannot join the distributed run: {e}; start zoo with torchrun") from None
    except RuntimeError as e:
        raise CommunicationError(f"rank {env['rank']}: could not form the process group of {env['world_size']} at "
                                 f"{where} within {timeout:g} s ({brief(e)}); every process of the run must start "
                                 "(torchrun starts them)") from None  # fmt: skip
    return Distributed(**env, backend=backend, timeout_s=timeout, owned=True)


@contextlib.contextmanager
def joined(timeout_s: float | None = None) -> Iterator[Distributed]:
    """``join()`` for the ``with`` block; the group is left at the end if it was joined here."""
    context = join(timeout_s)
    try:
        yield context
    except BaseException:
        context.close(wait=False)
        raise
    context.close()
