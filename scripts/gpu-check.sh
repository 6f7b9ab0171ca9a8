#!/usr/bin/env bash
# One command for a session that has a GPU: stages the test executables with
# ../shared/tools/gpu-pack.sh and adds .gpu/check.sh, which on the GPU machine runs
#   1. the CUDA parity suite: kernels/tests/cuda_parity.rs (every launcher against the CPU
#      kernels), engine/tests/device_parity.rs (every dispatched op, forward and backward, CPU vs
#      cuda:0 with poisoned outputs) and the trainers' two-device loss-curve tests
#      (`*same_loss_curve_on_both_devices` in gan/tests/: DCGAN, GAN 2014, EBGAN-PT, the grid's
#      GAN baseline, the domain classifier);
#   2. the GPU benchmarks (gan/tests/dcgan.rs `gpu_bench`: SGEMM 4096^3 f32 and TF32, a DCGAN
#      64x64x3 step at batch 128) and, when PyTorch is installed there, cuBLAS's SGEMM beside it;
# and writes everything to $OUT/gpu-check.md (GPU, driver, date, commit, full logs' tails).
#
# Here (no GPU needed):       scripts/gpu-check.sh
# Then with the device tool:  run(command="bash .gpu/check.sh", carry=[".gpu"], timeout_s=540)
# and copy the returned gpu-check.md to benches/results/<date>-gpu-check.md.
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
../shared/tools/gpu-pack.sh
commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo "-dirty")
cat > .gpu/check.sh <<CHECK
#!/usr/bin/env bash
# Runs on the GPU machine from the repository root (see scripts/gpu-check.sh).
set -uo pipefail
export CUDA_HOME=\${CUDA_HOME:-/usr/local/cuda}
export LD_LIBRARY_PATH="\$CUDA_HOME/lib64:/usr/local/nvidia/lib64:/usr/local/nvidia/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
out=\${OUT:-/tmp/gpu-out}; mkdir -p "\$out"; report="\$out/gpu-check.md"
{
  echo "# GPU check, commit $commit, \$(date -u +%Y-%m-%d)"
  echo
  echo "GPU: \$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo unknown)"
  echo
} > "\$report"
status=0
run() {  # name, executable, args...
  local name=\$1; shift
  local exe; exe=\$(ls .gpu/tests/\$1-* 2>/dev/null | head -n 1); shift
  [ -n "\$exe" ] || { echo "## \$name: executable not staged" >> "\$report"; status=1; return; }
  local start=\$(date +%s)
  "\$exe" "\$@" --nocapture --test-threads=1 > "\$out/\$name.log" 2>&1 || status=1
  { echo "## \$name (\$((\$(date +%s) - start)) s)"; echo '\`\`\`';
    grep -E 'match on|skipped|SADDLE_PARITY_SEED|^test |panicked|test result|^\|' "\$out/\$name.log" | tail -n 80
    echo '\`\`\`'; echo; } >> "\$report"
}
run kernel-parity cuda_parity
run engine-parity device_parity
run gan-parity dcgan small_gan_trains_to_the_same_loss_curve_on_both_devices
for t in gan2014 ebgan grid classifier; do
  run \$t-parity \$t same_loss_curve_on_both_devices
done
run gpu-bench dcgan gpu_bench --ignored
if python3 -c 'import torch' 2>/dev/null; then
  { echo "## PyTorch reference on the same GPU (cuBLAS SGEMM 4096^3, median of 10 after warm-up)"
    echo '\`\`\`'
    timeout 300 python3 - <<'PY' 2>&1 | tail -n 20
import torch
a = torch.randn(4096, 4096, device="cuda"); b = torch.randn(4096, 4096, device="cuda")
for tf32 in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    for _ in range(2): a @ b
    ts = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); a @ b; e.record(); torch.cuda.synchronize(); ts.append(s.elapsed_time(e))
    t = sorted(ts)[5]
    print(f"torch SGEMM 4096^3 {'TF32' if tf32 else 'f32'}: {t:.3f} ms, {2*4096**3/t/1e9:.1f} TFLOP/s")
PY
    echo '\`\`\`'; } >> "\$report"
fi
cat "\$report"
exit \$status
CHECK
chmod +x .gpu/check.sh
echo "staged .gpu/ ($(du -sh .gpu | cut -f1)); on the GPU machine run: bash .gpu/check.sh (carry .gpu)"
