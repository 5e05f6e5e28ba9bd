"""Running a verified export where an eager model ran: a ``torch.nn.Module`` over an onnxruntime session.

``OnnxModule`` takes and gives torch tensors, so ``zoo predict``, ``zoo eval`` and ``zoo benchmark`` use it
unchanged (``verified.runtime_model`` finds the registered export of a model's weights, making and verifying
one when there is none, and wraps it). This module imports nothing else of zoo_export but ``extra``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo_core.plugin_api import UsageError

RUNTIMES = ("torch", "onnxruntime")


def session(path: str | Path, threads: int | None = None, provider: str = "CPUExecutionProvider") -> Any:
    """An onnxruntime session on ``path``: ``threads`` intra-op threads (default: torch's), all graph
    optimisations, warnings only."""
    import onnxruntime as ort
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # idle threads that spin steal the cores from whatever runs next (eager torch, another session): no spinning
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=[provider])


def _torch_module() -> type:
    import torch

    class OnnxModule(torch.nn.Module):
        """An ONNX file run by onnxruntime, as a module: float tensors in, logits out (on the CPU)."""

        def __init__(self, path: str | Path, threads: int | None = None,
                     provider: str = "CPUExecutionProvider") -> None:  # fmt: skip
            super().__init__()
            self.path = Path(path)
            self.session = session(path, threads, provider)
            self.provider = self.session.get_providers()[0]
            first = self.session.get_inputs()[0]
            self.input_name = first.name
            batch = first.shape[0]
            self.fixed_batch = batch if isinstance(batch, int) else None
            self.zoo_runtime = {"runtime": "onnxruntime", "provider": self.provider, "file": str(self.path)}

        def run(self, x: Any) -> Any:
            """numpy N x C x H x W float32 -> numpy logits."""
            return self.session.run(None, {self.input_name: x})[0]

        def forward(self, x: Any) -> Any:
            import numpy as np

            array = x.detach().to("cpu", torch.float32).contiguous().numpy()
            n = array.shape[0]
            size = self.fixed_batch
            if size is None or size == n:
                return torch.from_numpy(self.run(array))
            outs = []  # a fixed-batch export: run in its batches, the last one padded and cut back
            for start in range(0, n, size):
                chunk = array[start:start + size]
                short = size - chunk.shape[0]
                if short:
                    chunk = np.concatenate([chunk, np.repeat(chunk[:1], short, axis=0)])
                outs.append(self.run(chunk)[: size - short])
            return torch.from_numpy(np.concatenate(outs))

    return OnnxModule


_CLASS: type | None = None


def onnx_module(path: str | Path, threads: int | None = None, provider: str = "CPUExecutionProvider") -> Any:
    """An ``OnnxModule`` (a ``torch.nn.Module``) running ``path`` in onnxruntime."""
    global _CLASS
    from zoo_export.extra import require

    require("onnxruntime")
    if _CLASS is None:
        _CLASS = _torch_module()
    return _CLASS(path, threads, provider)


def provider_for(device: Any) -> str:
    """The onnxruntime provider for a torch device; a device it cannot use is a one-line error."""
    import onnxruntime as ort

    kind = getattr(device, "type", str(device).split(":")[0])
    if kind == "cpu":
        return "CPUExecutionProvider"
    if kind == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        return "CUDAExecutionProvider"
    raise UsageError(f"--runtime onnxruntime has no provider for {device} here (it has "
                     f"{', '.join(ort.get_available_providers())}); use --device cpu")  # fmt: skip


def check_runtime(runtime: str, int8: bool, img_size: int | None = None) -> None:
    """Refuse option combinations that cannot work, before anything loads."""
    if runtime not in RUNTIMES:
        raise UsageError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if int8 and runtime != "onnxruntime":
        raise UsageError("--int8 runs the int8 ONNX export: add --runtime onnxruntime")
    if runtime == "onnxruntime":
        from zoo_export.extra import require

        require("onnx", "onnxruntime")
        if img_size is not None:
            raise UsageError("--runtime onnxruntime runs the export at the weights' own input size; drop --img-size")
