#!/usr/bin/env bash
# The GPU check of `zoo benchmark` (issue 4), prepared to run in one go on a GPU machine:
#   - the core suite on cuda, plain AMP eager (fp16 autocast, as timm's --amp) against the best preset
#     (bf16 autocast + channels_last + torch.compile with CUDA graphs, mode reduce-overhead);
#   - densenet121 also in bf16 eager and, if time is left, with compile mode max-autotune;
#   - timm's own benchmark.py against `zoo benchmark` on timm's densenet121, same settings (AMP, b256),
#     when TIMM_BENCHMARK names benchmark.py of a timm checkout (git clone
#     https://github.com/huggingface/pytorch-image-models; see benchmarks/compare_timm.py); skipped otherwise.
# It prints one table (speed-up of best over AMP eager, achieved TFLOP/s and share of the datasheet
# peak, peak memory) and leaves four files in $OUT: gpu_check.{md,json,csv,log}, with each step's own
# stdout and stderr in $OUT/steps/. Copy the four into benchmarks/results/ (e.g. as gpu_<card>.md/json/csv)
# and commit them.
#
# With the device tool:  run(command="bash benchmarks/gpu_check.sh", timeout_s=560)
# Anywhere else:         OUT=$(mktemp -d) bash benchmarks/gpu_check.sh
# BUDGET (seconds, default 480) bounds the whole script: steps run in order of importance, each gets
# only what is left, and the summary always runs, so a slow compile cuts the tail, not the result.
# A dry run of the whole flow on a CPU (errors where a GPU is needed, tiny steps otherwise):
#   DEVICE=cpu SKIP_INSTALL=1 EXTRA="-b 1 --iters 1 --warmup 0" TIMM_ARGS="--models resnet18:1 \
#     --iters 5 --warmup 0" AMP_ARGS="--precision fp32" BEST_ARGS="--channels-last" MODELS=resnet18 \
#     OUT=$(mktemp -d) bash benchmarks/gpu_check.sh
set -u
BUDGET=${BUDGET:-480}
DEVICE=${DEVICE:-cuda}
read -r -a EXTRA <<<"${EXTRA:-}"
read -r -a TIMM_ARGS <<<"${TIMM_ARGS:---models densenet121:256 --warmup 10 --iters 40}"
START=$(date +%s)
OUT=${OUT:-$PWD/benchmarks/results/gpu_check}
PY=${PYTHON:-python3}
WORK=$(mktemp -d -t gpu_check.XXXXXX) # under $TMPDIR, else the system's temporary folder
STEPS="$OUT/steps" # what every step printed: only $OUT comes back from a device machine
mkdir -p "$OUT" "$STEPS"
exec > >(tee "$OUT/gpu_check.log") 2>&1
export ZOO_HOME="$WORK/zoo_home" PYTHONUNBUFFERED=1

left() { echo $((BUDGET - ($(date +%s) - START))); }

step() { # step NAME MIN_SECONDS CMD...: stdout -> $STEPS/NAME.out, stderr -> $STEPS/NAME.err
  local name=$1 need=$2 t t0 rc
  shift 2
  t=$(left)
  if ((t < need)); then
    echo "== skip $name: ${t}s left, needs ${need}s"
    return 0
  fi
  echo "== $name (at most $((t - 15))s): $*"
  t0=$(date +%s)
  timeout -k 5 $((t - 15)) "$@" >"$STEPS/$name.out" 2>"$STEPS/$name.err"
  rc=$?
  echo "   rc=$rc after $(($(date +%s) - t0))s"
  [ $rc -eq 0 ] || tail -n 5 "$STEPS/$name.err"
}

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
$PY -c "import torch, timm; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', \
torch.backends.cudnn.version(), 'timm', timm.__version__, torch.cuda.is_available() and torch.cuda.get_device_name())"

echo "== make zoo importable (no network there: no pip, no build)"
# The repository's folders on the path, plus a dist-info carrying pyproject's entry points, is all an
# editable install provides; it needs no setuptools of a particular version on that machine.
if [ -n "${SKIP_INSTALL:-}" ]; then
  echo "   skipped"
else
  $PY - "$WORK/site" <<'EOF_SITE' || exit 1
import sys, tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
info = Path(sys.argv[1]) / f"zoo-{project['version']}.dist-info"
info.mkdir(parents=True)
(info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: zoo\nVersion: {project['version']}\n")
groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
(info / "entry_points.txt").write_text("".join(
    f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items()) for group, items in groups.items()))
(info / "RECORD").write_text("")
print("  ", info)
EOF_SITE
  export PYTHONPATH="$PWD:$PWD/plugins:$PWD/registry:$PWD/benchmarks:$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
ZOO=($PY -m zoo_core.cli benchmark --device "$DEVICE" --isolate --json ${EXTRA[@]+"${EXTRA[@]}"})
$PY -m zoo_core.cli list densenet121 >/dev/null || exit 1 # builds the catalogue cache once

read -r -a AMP <<<"${AMP_ARGS:---precision fp16}"
read -r -a BEST <<<"${BEST_ARGS:---preset best}"
# Most important first: the densenet121 pair the issue's 1.5x target is about, then timm's figure.
step amp_densenet121 30 "${ZOO[@]}" -m densenet121 "${AMP[@]}"
step best_densenet121 60 "${ZOO[@]}" -m densenet121 "${BEST[@]}"
step bf16_densenet121 30 "${ZOO[@]}" -m densenet121 --precision bf16
# --wait-idle: compare_timm waits up to 300 s for quiet CPUs before each run, which this budget cannot afford
if [ -f "${TIMM_BENCHMARK:-}" ]; then
  step timm_densenet121 60 $PY benchmarks/compare_timm.py --device "$DEVICE" --precision fp16 --rounds 1 \
    --wait-idle 30 "${TIMM_ARGS[@]}" --out "$STEPS/compare_timm_gpu.json" --markdown "$STEPS/compare_timm_gpu.md"
else
  echo "== skip timm_densenet121: set TIMM_BENCHMARK to benchmark.py of a timm checkout to compare with timm's script"
fi
for m in ${MODELS:-resnet50 resnet18 efficientnet_b0 inception_v3 simplecnn improvedcnn}; do
  step "amp_$m" 25 "${ZOO[@]}" -m "$m" "${AMP[@]}"
  step "best_$m" 50 "${ZOO[@]}" -m "$m" "${BEST[@]}"
done
step autotune_densenet121 200 "${ZOO[@]}" -m densenet121 "${BEST[@]}" --compile-mode max-autotune

echo "== summary"
$PY - "$STEPS" "$OUT" <<'EOF'
import json, sys
from pathlib import Path

from zoo_bench import writers
from zoo_core.atomic_io import atomic_write_json, atomic_write_text

work, out = Path(sys.argv[1]), Path(sys.argv[2])
records = {}
for path in sorted(work.glob("*.out")):
    if path.stem.startswith("timm_"):
        continue
    try:
        (record,) = json.loads(path.read_text())
    except (ValueError, TypeError):
        continue
    record["config"] = path.stem.split("_", 1)[0]
    records[path.stem] = record
env = next((r["environment"] for r in records.values() if r.get("environment")), {})
models = list(dict.fromkeys(name.split("_", 1)[1] for name in records))


def cell(r, key, fmt):
    value = (r or {}).get("infer", {}).get(key) if r else None
    return format(value, fmt) if isinstance(value, (int, float)) else "-"


lines = [
    f"# zoo benchmark on {env.get('device_name', '?')}",
    "",
    f"torch {env.get('torch')}, CUDA {env.get('cuda')}, cuDNN {env.get('cudnn')}; {env.get('date')}. Inference, "
    "batch 256 (decayed on OOM), each model's own input size. AMP eager = fp16 autocast, no compile; best = "
    "`--preset best` (bf16 autocast, channels_last, torch.compile mode reduce-overhead = CUDA graphs). "
    "samples/s = batch / median step (CUDA events); % peak against the datasheet dense peak for the precision.",
    "",
    "| model | AMP eager samples/s | best samples/s | speed-up | best step ms (p90) | best TFLOP/s | best % peak "
    "| best peak MB | bf16 eager | max-autotune |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]
for m in models:
    amp, best = records.get(f"amp_{m}"), records.get(f"best_{m}")
    a, b = (r.get("infer", {}).get("samples_per_sec") if r else None for r in (amp, best))
    speedup = f"{b / a:.2f}x" if a and b else "-"
    share = (best or {}).get("infer", {}).get("peak_share")
    lines.append(
        f"| {m} | {cell(amp, 'samples_per_sec', ',.0f')} | {cell(best, 'samples_per_sec', ',.0f')} | {speedup} | "
        f"{cell(best, 'step_time_ms', '.2f')} ({cell(best, 'step_time_ms_p90', '.2f')}) | "
        f"{cell(best, 'tflops', '.1f')} | {f'{share:.1%}' if share else '-'} | {cell(best, 'peak_mem_mb', ',.0f')} | "
        f"{cell(records.get(f'bf16_{m}'), 'samples_per_sec', ',.0f')} | "
        f"{cell(records.get(f'autotune_{m}'), 'samples_per_sec', ',.0f')} |"
    )
errors = [f"- {name}: {r['error']}" for name, r in records.items() if r.get("error")]
if errors:
    lines += ["", "Errors:", *errors]
timm_md = work / "compare_timm_gpu.md"
if timm_md.is_file():
    lines += ["", "## timm's benchmark.py against zoo (timm:densenet121, AMP fp16, batch 256)", "",
              *[line for line in timm_md.read_text().splitlines() if line.startswith("|")]]
timm_json = work / "compare_timm_gpu.json"
text = "\n".join(lines) + "\n"
atomic_write_text(out / "gpu_check.md", text)
all_records = list(records.values())
atomic_write_json(out / "gpu_check.json", {
    "records": all_records,
    "compare_timm": json.loads(timm_json.read_text()) if timm_json.is_file() else None,
})
atomic_write_text(out / "gpu_check.csv", writers.to_csv(all_records))
print(text)
EOF
echo "== done in $(($(date +%s) - START))s; files in $OUT"
sleep 1 # let tee finish the log
