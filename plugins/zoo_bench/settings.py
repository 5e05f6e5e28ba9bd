"""What one benchmark run is asked to do, with the defaults each device gets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from zoo_core.plugin_api import UsageError

MODES = ("infer", "train", "both")
RUNTIMES = ("torch", "onnxruntime")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# --preset values; options given on the command line override them. CUDA graphs (reduce-overhead)
# remove launch overhead without max-autotune's minutes of kernel tuning per model.
PRESETS = {
    "best": {"precision": "bf16", "channels_last": True, "compile": True, "compile_mode": "reduce-overhead"},
}

# timm's benchmark.py uses batch 256 with 10 warm-up steps; on a CPU that would take minutes per
# model, so a CPU gets batch 16 and 3 warm-up steps (densenet121 then takes ~20 s on 2 cores).
DEFAULTS = {
    "cpu": {"batch_size": 16, "warmup": 3},
    "cuda": {"batch_size": 256, "warmup": 10},
}


@dataclass
class BenchSettings:
    """Settings shared by every model of a run; None means the device's default."""

    device: str = "auto"
    mode: str = "infer"
    batch_size: int | None = None
    img_size: int | None = None
    precision: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"
    warmup: int | None = None
    iters: int | None = None  # None: as many as fill about 10 s (CPU) or 2 s (GPU)
    weights: str | None = None
    dataset: str | None = None
    data_dir: str | None = None
    runtime: str = "torch"  # onnxruntime: the weights' verified ONNX export (zoo_export)
    int8: bool = False  # with onnxruntime: the int8 export
    command: str = ""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"unknown mode '{self.mode}'; use one of {', '.join(MODES)}")
        if self.compile_mode not in COMPILE_MODES:
            raise UsageError(f"unknown compile mode '{self.compile_mode}'; use one of {', '.join(COMPILE_MODES)}")
        for name in ("batch_size", "img_size", "iters"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
        if self.warmup is not None and self.warmup < 0:
            raise UsageError(f"--warmup must be 0 or more, got {self.warmup}")
        if self.runtime not in RUNTIMES:
            raise UsageError(f"unknown runtime '{self.runtime}'; use one of {', '.join(RUNTIMES)}")
        if self.int8 and self.runtime != "onnxruntime":
            raise UsageError("--int8 runs the int8 ONNX export: add --runtime onnxruntime")
        if self.runtime != "torch" and (self.mode != "infer" or self.compile or self.precision != "fp32"):
            raise UsageError("--runtime onnxruntime measures inference of the fp32 (or --int8) export: use --mode "
                             "infer, --precision fp32 and no --compile")  # fmt: skip

    @property
    def modes(self) -> tuple[str, ...]:
        return ("infer", "train") if self.mode == "both" else (self.mode,)

    def for_device(self, device: str) -> BenchSettings:
        """A copy with this device's defaults filled in."""
        defaults = DEFAULTS["cpu" if device == "cpu" else "cuda"]
        return dataclasses.replace(
            self,
            device=device,
            batch_size=self.batch_size or defaults["batch_size"],
            warmup=defaults["warmup"] if self.warmup is None else self.warmup,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchSettings:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise UsageError(f"unknown benchmark setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)
