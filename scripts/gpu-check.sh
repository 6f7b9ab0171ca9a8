#!/usr/bin/env bash
# One command for a session that has a GPU: stages the test executables with
# ../shared/tools/gpu-pack.sh and adds .gpu/check.sh, which on the GPU machine runs
#   1. the CUDA parity suite: kernels/tests/cuda_parity.rs (every launcher against the CPU
#      kernels), engine/tests/device_parity.rs (every dispatched op, forward and backward, CPU vs
#      cuda:0 with poisoned outputs) and the trainers' two-device loss-curve tests
#      (`*same_loss_curve_on_both_devices` in gan/tests/: DCGAN, GAN 2014, EBGAN-PT, the grid's
#      GAN baseline, the domain classifier, EBGAN-LN);
#   2. the GPU benchmarks (gan/tests/dcgan.rs `gpu_bench`: SGEMM 4096^3 f32 and TF32, GEMM
#      4096^3 bf16 (f32 accumulation), a DCGAN
#      64x64x3 step at batch 128, the six DCGAN conv / transposed-conv layers of issue 2 at
#      batch 256 forward+backward, a BigGAN up-block with conditional BN, spectral norm and
#      self-attention at 64x64 forward+backward) and, when PyTorch is installed there, the same
#      rows in PyTorch (cudnn.benchmark on, TF32 off except the TF32 SGEMM row, bf16 matmul for the
#      bf16 row) with the ratio
#      saddle / PyTorch per row;
# and writes everything to $OUT/gpu-check.md (GPU, driver, date, commit, full logs' tails).
#
# Here (no GPU needed):       scripts/gpu-check.sh
# Then with the device tool:  run(command="bash .gpu/check.sh", carry=[".gpu"], timeout_s=540)
# and copy the returned gpu-check.md to benches/results/<date>-gpu-check.md.
set -euo pipefail
root=$(git rev-parse --show-toplevel); cd "$root"
../shared/tools/gpu-pack.sh
# The device tool carries at most 64 MiB: keep only the executables .gpu/check.sh runs (the whole
# workspace's tests and benches come to about 140 MiB stripped).
keep="cuda_parity device_parity dcgan gan2014 ebgan grid classifier ladder"
for exe in .gpu/tests/*; do
  stem=$(basename "$exe"); stem=${stem%-*}
  case " $keep " in *" $stem "*) ;; *) rm -f "$exe" ;; esac
done
rm -rf .gpu/benches
size_mib=$(du -sm .gpu | cut -f1)
[ "$size_mib" -le 64 ] || { echo "gpu-check: .gpu/ is ${size_mib} MiB, over the device tool's 64 MiB" >&2; exit 1; }
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
for t in gan2014 ebgan grid classifier ladder; do
  run \$t-parity \$t same_loss_curve_on_both_devices
done
run gpu-bench dcgan gpu_bench --ignored
if python3 -c 'import torch' 2>/dev/null; then
  { echo "## PyTorch on the same GPU, and the ratio saddle / PyTorch (median of 10 after warm-up)"
    echo
    OUT_DIR="\$out" timeout 300 python3 - <<'PY' 2>&1 | tail -n 40
import os, time, torch
import torch.nn as nn, torch.nn.functional as F
torch.backends.cudnn.benchmark = True
dev = "cuda"

def median_ms(f, reps=10):
    # Wall time with a synchronisation, as the engine's rows (which end with a read back).
    for _ in range(2): f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s = time.perf_counter(); f(); torch.cuda.synchronize(); ts.append(time.perf_counter() - s)
    return sorted(ts)[reps // 2] * 1e3

torch_ms = {}
a = torch.randn(4096, 4096, device=dev); b = torch.randn(4096, 4096, device=dev)
for tf32 in (False, True):
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch_ms["SGEMM 4096^3 " + ("TF32" if tf32 else "f32")] = median_ms(lambda: (a @ b).sum().item())
# bf16 operands and result, f32 accumulation; read back as ours: converted to f32 and summed.
a16, b16 = a.bfloat16(), b.bfloat16()
torch_ms["GEMM 4096^3 bf16"] = median_ms(lambda: (a16 @ b16).float().sum().item())
del a16, b16
# Every other row is f32 without TF32, in cuBLAS and in cuDNN.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

# The DCGAN layers of issue 2 (k4 s2 p1), batch 256: gradients of sum(y) for x and the weight.
for conv, cin, cout, hw in [(True, 3, 64, 32), (True, 64, 128, 16), (True, 128, 256, 8),
                            (False, 256, 128, 4), (False, 128, 64, 8), (False, 64, 3, 16)]:
    x = torch.randn(256, cin, hw, hw, device=dev, requires_grad=True)
    w = (torch.randn(cout, cin, 4, 4, device=dev) if conv
         else torch.randn(cin, cout, 4, 4, device=dev)).mul(0.02).requires_grad_()
    op = F.conv2d if conv else F.conv_transpose2d
    def step():
        gx, gw = torch.autograd.grad(op(x, w, stride=2, padding=1).sum(), (x, w))
        (gw.sum() + gx.sum()).item()
    name = "conv2d" if conv else "conv_transpose2d"
    torch_ms[f"{name} {cin}->{cout} {hw}x{hw} b256 fwd+bwd"] = median_ms(step)

# The BigGAN up-block with conditional BN, spectral norm and self-attention (gan/tests/dcgan.rs).
SN = nn.utils.spectral_norm
class CBN(nn.Module):
    def __init__(s, c, cond):
        super().__init__()
        s.bn = nn.BatchNorm2d(c, affine=False)
        s.gain = nn.Linear(cond, c, bias=False); s.bias = nn.Linear(cond, c, bias=False)
    def forward(s, x, y):
        n = x.shape[0]
        return s.bn(x) * (1 + s.gain(y)).view(n, -1, 1, 1) + s.bias(y).view(n, -1, 1, 1)
class Attention(nn.Module):
    def __init__(s, c):
        super().__init__()
        conv = lambda i, o: SN(nn.Conv2d(i, o, 1, bias=False))
        s.theta, s.phi, s.g, s.o = conv(c, c // 8), conv(c, c // 8), conv(c, c // 2), conv(c // 2, c)
        s.gamma = nn.Parameter(torch.tensor(0.5))
    def forward(s, x):
        n, c, h, w = x.shape
        theta = s.theta(x).view(n, c // 8, h * w)
        phi = F.max_pool2d(s.phi(x), 2).view(n, c // 8, h * w // 4)
        g = F.max_pool2d(s.g(x), 2).view(n, c // 2, h * w // 4)
        beta = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
        return x + s.gamma * s.o(torch.bmm(g, beta.transpose(1, 2)).view(n, c // 2, h, w))
class UpBlock(nn.Module):
    def __init__(s, cin, cout, cond):
        super().__init__()
        s.cbn1, s.cbn2 = CBN(cin, cond), CBN(cout, cond)
        s.conv1 = SN(nn.Conv2d(cin, cout, 3, padding=1)); s.conv2 = SN(nn.Conv2d(cout, cout, 3, padding=1))
        s.shortcut = SN(nn.Conv2d(cin, cout, 1)); s.attention = Attention(cout)
    def forward(s, x, y):
        h = F.interpolate(F.relu(s.cbn1(x, y)), scale_factor=2)
        h = s.conv2(F.relu(s.cbn2(s.conv1(h), y)))
        return s.attention(h + s.shortcut(F.interpolate(x, scale_factor=2)))
n, cin, cout, hw, cond = 32, 256, 128, 32, 128
block = UpBlock(cin, cout, cond).to(dev).train()
x = torch.randn(n, cin, hw, hw, device=dev, requires_grad=True); y = torch.randn(n, cond, device=dev)
def block_step():
    gx, = torch.autograd.grad(block(x, y).sum(), (x,))
    gx.sum().item()
torch_ms[f"BigGAN up-block {cin}->{cout} {2 * hw}x{2 * hw} +CBN+SN+attention b{n} fwd+bwd"] = median_ms(block_step)

ours = {}
log = os.path.join(os.environ["OUT_DIR"], "gpu-bench.log")
if os.path.exists(log):
    for line in open(log):
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 3 and cells[2].endswith(" ms"):
            ours[cells[1]] = float(cells[2][:-3])
print(f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name()}")
print()
print("| benchmark | saddle | PyTorch | ratio saddle / PyTorch |")
print("|---|---|---|---|")
for name, t in torch_ms.items():
    mine = ours.get(name)
    cells = (f"{mine:.3f} ms", f"{mine / t:.2f}") if mine else ("not run", "-")
    print(f"| {name} | {cells[0]} | {t:.3f} ms | {cells[1]} |")
PY
    echo; } >> "\$report"
fi
cat "\$report"
exit \$status
CHECK
chmod +x .gpu/check.sh
echo "staged .gpu/ ($(du -sh .gpu | cut -f1)); on the GPU machine run: bash .gpu/check.sh (carry .gpu)"
