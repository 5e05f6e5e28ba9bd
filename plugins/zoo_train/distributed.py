"""The training plugin's side of a distributed run (``zoo_core.distributed`` holds the process group).

Rank 0 alone reads and writes the run (``run.json``, checkpoints, the registry) and hands what the other
ranks need to them as JSON or bytes, so no other machine needs the same ``ZOO_HOME``. Every rank evaluates
its own share of a split and the counts are summed: the result is the single-process one, sample for
sample. BatchNorm statistics, which each rank gathers from its own share of the data, are averaged over
the ranks before any evaluation (as timm's ``distribute_bn`` does), and the weights are checked to be the
same on every rank before rank 0 publishes them.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from zoo_core.plugin_api import Distributed, TrainingError, UsageError, ZooError

T = TypeVar("T")


class FollowerError(ZooError):
    """The error rank 0 met and reported, raised again on the other ranks, which print nothing."""

    report = False

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def shared(error: ZooError, dist: Distributed) -> ZooError:
    """``error``, which every rank raises alike (it follows from reduced values): printed by rank 0 only."""
    if not dist.is_main:
        error.report = False
    return error


def on_main(dist: Distributed, fn: Callable[[], T], share: Callable[[T], Any] | None = None) -> Any:
    """``fn()`` on rank 0; every other rank gets its result (JSON-able, or made so by ``share``). When it
    fails, every rank fails with its error (printed once, by rank 0) instead of waiting for an answer
    that never comes."""
    if not dist.enabled:
        return fn()
    if dist.is_main:
        try:
            result = fn()
        except ZooError as e:
            dist.broadcast_json({"error": str(e), "exit_code": e.exit_code})
            raise
        except BaseException as e:
            dist.broadcast_json({"error": f"rank 0 failed: {type(e).__name__}", "exit_code": 1})
            raise
        dist.broadcast_json({"result": share(result) if share else result})
        return result
    answer = dist.broadcast_json()
    if "error" in answer:
        raise FollowerError(answer["error"], int(answer["exit_code"]))
    return answer["result"]


def check_world(trainer: Any, dist: Distributed, config: Any, device_spec: str | None) -> None:
    """Refuse what cannot run distributed, before any work: a trainer that does not declare it,
    ``--sync-bn`` on a CPU."""
    if dist.world_size > 1 and not trainer.metadata.get("distributed"):
        raise UsageError(f"trainer {trainer.qualified} does not support distributed training (it does not "
                         "register with distributed=True); run it in one process")  # fmt: skip
    if config.sync_bn:
        from zoo_core.plugin_api import resolve_device

        if resolve_device(device_spec or "auto").type != "cuda":
            raise UsageError(SYNC_BN_NEEDS_CUDA)


SYNC_BN_NEEDS_CUDA = ("--sync-bn needs CUDA devices; on CPUs zoo averages BatchNorm statistics over the ranks "
                      "before each evaluation instead")  # fmt: skip


def sync_batchnorm(model: Any, dist: Distributed, device: Any, wanted: bool) -> Any:
    """With ``--sync-bn`` on CUDA and several ranks, BatchNorm layers become SyncBatchNorm (batch statistics
    over the global batch; the parameters stay the same objects, so optimisers and frozen lists hold)."""
    if not wanted:
        return model
    if device.type != "cuda":
        raise UsageError(SYNC_BN_NEEDS_CUDA)
    if not dist.enabled:
        return model  # one process: plain BatchNorm already sees the whole batch
    import torch

    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)


def average_norm_stats(model: Any, dist: Distributed) -> None:
    """Average the running statistics of every BatchNorm-like layer over the ranks (in place)."""
    if not dist.enabled:
        return
    import torch

    buffers = [buf for module in model.modules() if isinstance(module, torch.nn.modules.batchnorm._NormBase)
               for buf in (module.running_mean, module.running_var) if buf is not None]  # fmt: skip
    if not buffers:
        return
    flat = torch.cat([b.detach().reshape(-1).float() for b in buffers])
    dist.all_reduce(flat, "mean")  # one collective for the whole model, on the training device
    offset = 0
    with torch.no_grad():
        for buf in buffers:
            mean = flat[offset : offset + buf.numel()].view_as(buf)
            if not torch.equal(buf, mean):  # an unchanged buffer keeps its version: see evaluate_sharded
                buf.copy_(mean)
            offset += buf.numel()


def check_same_weights(model: Any, dist: Distributed, trainer: str) -> None:
    """Raise TrainingError unless every rank holds bit-identical parameters (a trainer that forgot to
    average its gradients would publish rank 0's model as if it were the run's)."""
    if not dist.enabled:
        return
    import torch

    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes())
    mine = torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8)
    if not all(torch.equal(mine, other) for other in dist.all_gather(mine)):
        raise shared(TrainingError(
            f"trainer {trainer} left different weights on different ranks: it does not average gradients "
            "(train through job.distributed.wrap(job.model)); nothing was published"), dist)  # fmt: skip


def evaluate_sharded(model: Any, split: Any, pipeline: Any, labels: list[str], dist: Distributed,
                     **kwargs: Any) -> dict[str, Any]:  # fmt: skip
    """``evaluation.evaluate`` of the whole split, each rank predicting its own share: the predictions are
    gathered back into the split's order, the padding that equal-sized messages need is dropped, and every
    rank gets the report one process would have made.

    The last report is remembered with what it was made from (the model, split and pipeline objects, each
    weight's version counter, which any in-place write bumps, and its sum): the final test of a run whose
    validation split is the test split reuses the last epoch's instead of predicting it again."""
    import copy

    import torch

    objects = (model, split.pixels, split.labels, pipeline)  # compared by identity
    tensors = [t.detach() for t in (*model.parameters(), *model.buffers())]
    # A write through ``.data`` bumps no version counter: each tensor's sum catches those too.
    sums = torch.stack([t.double().sum() for t in tensors]).tolist() if tensors else []
    versions = tuple((t._version, t.data_ptr()) for t in tensors)
    protocol = {**_evaluate_defaults(), **kwargs}  # an omitted option is its default: the same protocol, one key
    key = (versions, tuple(sums), len(split), tuple(labels), tuple(sorted(protocol.items())))
    last = _last_report
    if last and last["key"] == key and all(r() is o for r, o in zip(last["refs"], objects, strict=True)):
        return copy.deepcopy(last["report"])
    report = _evaluate_sharded(model, split, pipeline, labels, dist, **kwargs)
    _last_report.update(key=key, refs=[weakref.ref(o) for o in objects], report=copy.deepcopy(report))
    return report


_last_report: dict[str, Any] = {}


def _evaluate_defaults() -> dict[str, Any]:
    """``evaluation.evaluate``'s keyword options with their defaults."""
    import inspect

    from zoo_train.evaluation import evaluate

    params = inspect.signature(evaluate).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _evaluate_sharded(model: Any, split: Any, pipeline: Any, labels: list[str], dist: Distributed,
                      **kwargs: Any) -> dict[str, Any]:  # fmt: skip
    from zoo_train.evaluation import accuracy_report, evaluate, predict

    if not dist.enabled:
        return evaluate(model, split, pipeline, labels, **kwargs)
    import torch

    from zoo_core.plugin_api import shard_indices

    n, world = len(split), dist.world_size
    k = min(5, len(labels))
    part = _share(split, dist, shard_indices)
    per_rank = -(-n // world)
    rows = torch.full((per_rank, k + 1), -1, dtype=torch.long)
    if len(part):
        top, truth = predict(model, part, pipeline, k=k, **kwargs)
        rows[: len(part), : top.shape[1]] = top
        rows[: len(part), k] = truth
    # Rank r's j-th sample is the split's sample j * world + r: interleaving the shares restores the order,
    # and the padded rows all land past n.
    ordered = torch.stack(dist.all_gather(rows), dim=1).reshape(per_rank * world, k + 1)[:n]
    if bool((ordered[:, k] < 0).any()):
        raise TrainingError("distributed evaluation lost samples: the ranks disagree about the split")
    return accuracy_report(ordered[:, :k], ordered[:, k], labels)


def _read(path: Path) -> bytes:
    """The file's bytes; an unreadable one gives no bytes, which every rank then fails to load alike."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _share(split: Any, dist: Distributed, shard_indices: Callable[..., Any]) -> Any:
    index = shard_indices(len(split), dist.rank, dist.world_size, pad=False)
    return split.subset(index.to(split.pixels.device))


def restore_checkpoint(path: Path, model: Any, optimizer: Any, dist: Distributed) -> dict[str, Any] | None:
    """The saved state after loading ``path`` into ``model`` and ``optimizer`` on every rank, or None when
    there is no checkpoint yet. Only rank 0 reads the file; the others get its bytes."""
    from zoo_train.checkpoint import load_checkpoint

    if not dist.enabled:
        return load_checkpoint(path, model, optimizer) if path.is_file() else None
    if not on_main(dist, lambda: path.is_file()):  # one answer for all, so every rank makes the same calls
        return None
    payload = dist.broadcast_bytes(_read(path) if dist.is_main else None)
    try:
        return load_checkpoint(path, model, optimizer, data=payload)
    except ZooError as e:  # the same bytes everywhere: the same error everywhere
        raise shared(e, dist) from None
