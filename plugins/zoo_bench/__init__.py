"""The benchmark runner behind `zoo benchmark`: speed, latency, memory, compute and accuracy per model.

How a figure is measured (the modules say why):

- ``settings``: what a run asks for, and each device's defaults. A GPU gets timm's batch 256 and 10
  warm-up steps; a CPU gets batch 16 and 3 warm-up steps, so `zoo benchmark --model densenet121
  --device cpu` takes about 20 s on 2 cores. Timed steps default to as many as fill ~10 s on a CPU
  (at least 8) or ~2 s on a GPU (at least 50).
- ``devices``: ``--device auto|cpu|cuda|cuda:N`` and ``--precision fp32|tf32|bf16|fp16`` are checked
  before anything runs (DeviceError, exit 2). TF32 is set explicitly for both matmuls and cuDNN
  convolutions (torch's own default leaves it on for convolutions) and recorded; bf16/fp16 are
  autocast with fp32 weights. A CPU without native bf16/fp16 refuses them rather than time emulation.
- ``timing``: CUDA events around every step, one synchronisation after the last (the host queues work
  as in real use); ``perf_counter`` on a CPU. ``samples_per_sec`` = batch / median step;
  ``samples_per_sec_mean`` = samples / elapsed, timm's definition; p90 beside the median. A spread
  that shows interference (p90 or mean over 1.5x the median) marks the figures ``unstable``.
- ``measure``: one model: build (``[plugin:]name[.tag]``), count parameters and FLOPs
  (``torch.utils.flop_counter``, forward for inference, forward + backward for training), time
  inference under ``torch.inference_mode`` and training steps (SGD, as timm's benchmark.py), retry
  with timm's batch decay on out-of-memory, and report achieved TFLOP/s and the share of the
  device's datasheet peak (``peaks``; unknown on CPUs).
- ``memory``: CUDA ``max_memory_allocated`` over the timed steps (with CUDA graphs, over the whole phase:
  replays allocate nothing); on a CPU the peak resident set over the timed steps above its level when the
  phase began, plus the weights (see the module).
- ``accuracy``: with ``MODEL.TAG --dataset D``, top-1/top-5 the way `zoo eval` measures them;
  ``runner`` then merges accuracy and speed, with their environment, into that registry entry.
- ``worker``: several models run one process each (JSON over a temporary file, progress as JSON
  lines), so no model inherits another's caches, compiled graphs or memory peaks.
- ``writers``/``plot``/``progress``: table, JSON, timm-compatible CSV, a throughput plot, and a
  progress bar on stderr. ``suites``: named model lists in benchmarks/suites/.
- ``estimate``: the count and time a multi-model run announces (and asks about above 20 models), from
  earlier runs on this machine or rough figures. Ctrl-C (``runner.RunInterrupted``) keeps what finished.
"""
