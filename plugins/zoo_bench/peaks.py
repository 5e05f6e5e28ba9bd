"""Peak dense TFLOP/s of known GPUs by precision, to report what share of the device a model reaches.

Figures are NVIDIA's datasheet numbers without structured sparsity (the datasheets often quote the
sparse figure, twice these). ``fp32`` is the CUDA-core figure (TF32 off); ``tf32``, ``bf16`` and
``fp16`` are tensor-core figures. None: the card cannot do that precision on tensor cores. CPUs have
no entry: their peak depends on clocks, SMT and vector units that torch cannot read reliably, so the
share of peak is reported as unknown there.
"""

from __future__ import annotations

import re

# (pattern matched against torch.cuda.get_device_name(), fp32, tf32, bf16, fp16); first match wins,
# so the specific variants (NVL, PCIe) come before the generic name.
GPU_PEAK_TFLOPS: list[tuple[str, float, float | None, float | None, float]] = [
    (r"GH200", 67.0, 494.7, 989.4, 989.4),  # before "H200", which it contains
    (r"H200 NVL", 60.0, 417.5, 835.5, 835.5),
    (r"H200", 67.0, 494.7, 989.4, 989.4),  # SXM
    (r"H100 NVL", 60.0, 417.5, 835.5, 835.5),
    (r"H100 PCIe", 51.2, 378.0, 756.0, 756.0),
    (r"H100", 67.0, 494.7, 989.4, 989.4),  # SXM5 (reported as "H100 80GB HBM3")
    (r"A100", 19.5, 156.0, 312.0, 312.0),  # SXM4 and PCIe, 40 and 80 GB
    (r"L40S", 91.6, 183.0, 362.05, 362.05),
    (r"L40\b", 90.5, 90.5, 181.0, 181.0),
    (r"\bL4\b", 30.3, 60.0, 121.0, 121.0),
    (r"\bA10\b", 31.2, 62.5, 125.0, 125.0),
    (r"V100", 15.7, None, None, 125.0),  # SXM2; no TF32 or bf16 tensor cores
    (r"\bT4\b", 8.1, None, None, 65.0),
]
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
SOURCE = "NVIDIA datasheets, dense (no sparsity)"


def peak_tflops(device_name: str, precision: str) -> float | None:
    """The datasheet peak for this GPU name and precision, or None where it is not known."""
    column = PRECISIONS.index(precision)
    for pattern, *peaks in GPU_PEAK_TFLOPS:
        if re.search(pattern, device_name):
            return peaks[column]
    return None
