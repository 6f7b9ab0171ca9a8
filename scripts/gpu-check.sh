#!/usr/bin/env bash
# Stages the first (or next) GPU run, on this machine, no GPU needed:
#   scripts/gpu-check.sh            # about 10-20 min of release builds on 2 cores
# It puts in .gpu/ (ignored by git, carried to the GPU machine by the device tool):
#   * the release test executables that need the GPU, and only those: the CUDA parity suites (kernels/tests/cuda_parity.rs: every
#     launcher against the CPU kernels; engine/tests/device_parity.rs: every dispatched op
#     forward and backward, CPU vs cuda:0 with poisoned outputs), the trainers' two-device
#     loss-curve tests (`*same_loss_curve_on_both_devices` in gan/tests/: DCGAN, GAN 2014,
#     EBGAN-PT, the grid's GAN, the domain classifier, EBGAN-LN) and the GPU benchmarks
#     (gan/tests/dcgan.rs `gpu_bench`: GEMM 4096^3 f32 / TF32 / bf16, a DCGAN 64x64x3 step at
#     batch 128, the six DCGAN layers at batch 256, the BigGAN up-block);
#   * ptx/: every CUDA module compiled here for sm_90 by NVRTC 13.0 (installed by
#     scripts/setup-nvrtc.sh), so the GPU machine needs neither NVRTC nor compile time;
#   * staged.env: the commit, and the PTX ISA version with the driver it needs;
#   * check.sh (scripts/gpu-check-device.sh) and the PyTorch rows (benches/torch_gpu_bench.py).
#
# Then, with the device tool (15 min of device time per session, its start included; each call
# at most 10 min; the machine stays warm 30 s between calls), two calls:
#   run(command="bash .gpu/check.sh parity", carry=[".gpu"], timeout_s=360)
#   run(command="bash .gpu/check.sh bench", carry=[".gpu"], timeout_s=300)
# Each returns $OUT/gpu-check-<mode>.md (report) and .log (full logs); copy the reports to
# benches/results/<date>-gpu-check.md. Expected: parity 1-3 min (the suites' own limits add up
# to 305 s), bench 1-2 min (limits 240 s): start (1-2 min) and both calls fit the 15 minutes
# even at their limits, and at their expected times leave room to rerun one.
#
# SADDLE_PTX_ARCH=8.0 (say) stages PTX for another compute capability (default 9.0: H100, H200).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
arch=${SADDLE_PTX_ARCH:-9.0}

# NVRTC here, for the PTX. A failed install must stop the staging: the GPU machine gets none.
if ! nvrtc_env=$(timeout 900 scripts/setup-nvrtc.sh); then
  echo "gpu-check: NVRTC could not be installed (scripts/setup-nvrtc.sh); it is needed here to compile the kernels' PTX" >&2
  exit 1
fi
eval "$nvrtc_env"

# The executables the GPU runs, and nothing else (not the CPU training tests, not the NVRTC
# compile test), built in release and stripped. (../shared/tools/gpu-pack.sh builds and stages
# every test and bench of the workspace, 140 MiB before pruning, and stops in a git worktree,
# where .git is a file: the same steps are done here for these targets only.)
tests=(cuda_parity device_parity dcgan gan2014 ebgan grid classifier ladder)
targets=()
for t in "${tests[@]}"; do targets+=(--test "$t"); done
rm -rf .gpu
mkdir -p .gpu/tests
cargo test --release --workspace --no-run --message-format=json "${targets[@]}" |
  python3 -c 'import sys, json
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"): print(m["executable"])' |
  while read -r exe; do cp "$exe" .gpu/tests/; done
strip .gpu/tests/*
for t in "${tests[@]}"; do
  ls .gpu/tests/"$t"-* > /dev/null 2>&1 || { echo "gpu-check: the $t test executable was not built" >&2; exit 1; }
done

# Every module's PTX for $arch, in the cache folder the executables read there.
cargo run --release --quiet -p saddle-kernels --example ptx_cache -- .gpu/ptx "$arch"
ptx_isa=$(sed -n 's/^\.version \([0-9.]*\).*/\1/p' .gpu/ptx/*.ptx | sort -u)
# The driver a PTX ISA version needs: the PTX ISA manual's release history maps ISA 9.0 to CUDA
# 13.0 (docs.nvidia.com/cuda/parallel-thread-execution, "PTX ISA Version" release notes), and
# the CUDA 13.0 release notes' driver table (docs.nvidia.com/cuda/archive/13.0.0/
# cuda-toolkit-release-notes, section CUDA Driver, "CUDA Toolkit and Corresponding Driver
# Versions") give Linux driver >= 580.65.06 for CUDA 13.0 GA. A PTX ISA newer than the driver's
# CUDA version fails to load (CUDA_ERROR_UNSUPPORTED_PTX_VERSION).
case "$ptx_isa" in
  9.0) min_cuda=13.0 min_driver=580.65.06 ;;
  *)
    echo "gpu-check: the PTX is ISA '${ptx_isa}', not 9.0 (NVRTC 13.0's): add its CUDA version and driver to this table" >&2
    exit 1
    ;;
esac

commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo "-dirty")
cat > .gpu/staged.env << ENV
commit=$commit
ptx_arch=$arch
ptx_isa=$ptx_isa
min_cuda=$min_cuda
min_driver=$min_driver
ENV
cp scripts/gpu-check-device.sh .gpu/check.sh
cp benches/torch_gpu_bench.py benches/torch_bench.py .gpu/
chmod +x .gpu/check.sh
bash -n .gpu/check.sh

# The device tool carries the working tree and .gpu together, at most 64 MiB.
tree_bytes=$(git ls-files -co --exclude-standard -z | du --files0-from=- -cb | tail -n 1 | cut -f1)
gpu_bytes=$(du -sb .gpu | cut -f1)
total_mib=$(((tree_bytes + gpu_bytes) / 1048576))
if [ "$total_mib" -ge 64 ]; then
  echo "gpu-check: .gpu/ ($((gpu_bytes / 1048576)) MiB) and the working tree ($((tree_bytes / 1048576)) MiB) exceed the device tool's 64 MiB" >&2
  exit 1
fi
echo "staged .gpu/: $(ls .gpu/tests | wc -l) test executables, $(ls .gpu/ptx | wc -l) PTX modules (ISA $ptx_isa, sm_${arch/./}, needs driver >= $min_driver)," \
  "$((gpu_bytes / 1048576)) MiB + the working tree's $((tree_bytes / 1048576)) MiB of the 64 MiB carried"
echo 'on the GPU machine:  run(command="bash .gpu/check.sh parity", carry=[".gpu"], timeout_s=360)'
echo '               then  run(command="bash .gpu/check.sh bench", carry=[".gpu"], timeout_s=300)'
