#!/usr/bin/env bash
# The GPU machine's half of scripts/gpu-check.sh, which stages it as .gpu/check.sh with the test
# executables, the compiled PTX and .gpu/staged.env. Runs from the repository root there, in two
# calls of the device tool (one warm machine):
#   bash .gpu/check.sh parity   # the parity suites, every GPU test required to run (~5 min)
#   bash .gpu/check.sh bench    # saddle's GPU benchmarks, PyTorch's same rows, the ratios
# Each writes $OUT/gpu-check-<mode>.md (the report) and $OUT/gpu-check-<mode>.log (full logs):
# two files, within the tool's 8 files back.
#
# No NVRTC and no compiling here: the kernels load from the staged PTX (.gpu/ptx, compiled for
# sm_90), SADDLE_NO_NVRTC=1 makes that the only source, and SADDLE_REQUIRE_CUDA=1 turns any
# test that would skip its GPU half into a failure. Each GPU test that ran prints a
# `saddle-gpu-test-ran:` line; the report counts them per suite and fails a suite where fewer
# tests ran on the GPU than passed.
set -uo pipefail
mode=${1:-}
case "$mode" in
  parity | bench) ;;
  *) echo "usage: bash .gpu/check.sh parity|bench" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
[ -f .gpu/staged.env ] || { echo "gpu-check: .gpu/staged.env missing; stage with scripts/gpu-check.sh" >&2; exit 1; }
# shellcheck source=/dev/null
. .gpu/staged.env
export SADDLE_REQUIRE_CUDA=1 SADDLE_NO_NVRTC=1 SADDLE_PTX_CACHE="$PWD/.gpu/ptx"
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64:/usr/local/nvidia/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
report="$out/gpu-check-$mode.md"
logs="$out/gpu-check-$mode.log"
work=$(mktemp -d)
: > "$logs"

# ---- First: the driver and the GPU, and whether they can run the staged PTX at all.
if ! gpu=$(nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv,noheader 2>&1); then
  echo "gpu-check: nvidia-smi failed, no usable GPU or driver here: $gpu" >&2
  exit 1
fi
gpu=$(head -n 1 <<< "$gpu")
driver=$(cut -d, -f2 <<< "$gpu" | tr -d ' ')
cc=$(cut -d, -f3 <<< "$gpu" | tr -d ' ')
driver_cuda=$(nvidia-smi 2> /dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9.]*\).*/\1/p' | head -n 1)
echo "GPU: $gpu; driver $driver supports CUDA ${driver_cuda:-?}"
echo "staged: commit $commit, PTX ISA $ptx_isa for sm_${ptx_arch/./}, which needs driver >= $min_driver (CUDA $min_cuda)"
at_least() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; } # $1 >= $2
if ! at_least "$driver" "$min_driver" || { [ -n "$driver_cuda" ] && ! at_least "$driver_cuda" "$min_cuda"; }; then
  echo "gpu-check: driver $driver (CUDA ${driver_cuda:-?}) is too old for the staged PTX: ISA $ptx_isa" \
    "needs CUDA $min_cuda, driver >= $min_driver; every kernel would fail to load" \
    "(CUDA_ERROR_UNSUPPORTED_PTX_VERSION). Stage with an NVRTC this driver supports." >&2
  exit 1
fi
if [ "$cc" != "$ptx_arch" ]; then
  echo "gpu-check: this GPU has compute capability $cc; the staged PTX is for $ptx_arch only" \
    "(stage again for $cc: SADDLE_PTX_ARCH=$cc scripts/gpu-check.sh)" >&2
  exit 1
fi

{
  echo "# GPU check ($mode), commit $commit, $(date -u +%Y-%m-%d)"
  echo
  echo "GPU: $gpu; driver CUDA ${driver_cuda:-?}; kernels from the staged PTX (ISA $ptx_isa, sm_${ptx_arch/./})"
  echo
} > "$report"

status=0
total_ran=0
marker='saddle-gpu-test-ran:'
# suite NAME SECONDS EXE_STEM [ARGS...]: runs a staged test executable, appends its log, and
# reports how many tests passed and how many of them ran on the GPU.
suite() {
  local name=$1 limit=$2 stem=$3
  shift 3
  local exe
  exe=$(ls .gpu/tests/"$stem"-* 2> /dev/null | head -n 1)
  if [ -z "$exe" ]; then
    echo "## $name: FAILED, executable $stem not staged" >> "$report"
    status=1
    return
  fi
  local log="$work/$name.log" start rc
  start=$(date +%s)
  timeout "$limit" "$exe" "$@" --nocapture --test-threads=1 > "$log" 2>&1
  rc=$?
  local secs=$(($(date +%s) - start))
  local passed ran verdict=ok
  passed=$(sed -n 's/^test result: .* \([0-9][0-9]*\) passed.*/\1/p' "$log" | tail -n 1)
  passed=${passed:-0}
  ran=$(grep -o "$marker.*" "$log" | wc -l)
  total_ran=$((total_ran + ran))
  if [ "$rc" = 124 ]; then
    verdict="FAILED, stopped after ${limit} s"
  elif [ "$rc" != 0 ]; then
    verdict="FAILED (exit $rc)"
  elif [ "$ran" -lt 1 ] || [ "$ran" -lt "$passed" ]; then
    verdict="FAILED, only $ran of $passed passing tests ran on the GPU"
  fi
  [ "$verdict" = ok ] || status=1
  {
    echo "## $name: $verdict; $passed passed, $ran ran on the GPU ($secs s)"
    echo '```'
    grep -E "match on|skipped|SADDLE_PARITY_SEED|^test |panicked|cannot run|test result|\| " "$log" | tail -n 60
    echo '```'
    echo
  } >> "$report"
  { echo "===== $name: $exe $* (exit $rc, $secs s)"; cat "$log"; } >> "$logs"
}

if [ "$mode" = parity ]; then
  # Limits: each well above its expected time (the first suite also waits for the driver to
  # compile the PTX of every module), together 305 s, under the device call's 360 s.
  suite kernel-parity 90 cuda_parity
  # Every device_parity test runs on the GPU but the CPU-only check of its own guard.
  suite engine-parity 60 device_parity --skip switches_are_off_after_an_error_or_a_panic
  suite dcgan-parity 30 dcgan small_gan_trains_to_the_same_loss_curve_on_both_devices
  for t in gan2014 ebgan grid classifier ladder; do
    suite "$t-parity" 25 "$t" same_loss_curve_on_both_devices
  done
else
  suite gpu-bench 120 dcgan gpu_bench --ignored --exact
  {
    echo "## PyTorch on the same GPU, and the ratio saddle / PyTorch (median of 10 after warm-up)"
    echo
    if python3 -c 'import torch; assert torch.cuda.is_available()' 2> "$work/torch.err"; then
      timeout 120 python3 .gpu/torch_gpu_bench.py --ours "$work/gpu-bench.log" 2>> "$logs" ||
        { echo "(the PyTorch rows failed; see gpu-check-bench.log)"; status=1; }
    else
      echo "PyTorch with CUDA is not importable here: no PyTorch rows ($(tail -n 1 "$work/torch.err"))"
      status=1
    fi
    echo
  } >> "$report"
fi
echo "Tests that ran on the GPU: $total_ran; status: $([ $status = 0 ] && echo ok || echo FAILED)" >> "$report"
cat "$report"
rm -rf "$work"
exit $status
