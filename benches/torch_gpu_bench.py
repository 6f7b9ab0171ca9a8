#!/usr/bin/env python3
"""PyTorch side of the GPU benchmark table (run by the GPU check script that
scripts/gpu-check.sh stages, after saddle's `gpu_bench` in gan/tests/dcgan.rs).

Times the same rows as `gpu_bench`, with the same labels, on the same GPU (cuBLAS / cuDNN,
cudnn.benchmark on, TF32 off except in the TF32 row), and prints one markdown table with
saddle's time, PyTorch's and the ratio saddle / PyTorch per row:

    python3 benches/torch_gpu_bench.py --ours gpu-bench.log

Each time is the median of 10 runs after 2 warm-ups, each run ending with a read back to the
host (as saddle's rows do).
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import dcgan  # noqa: E402  (the same reference DCGAN as the CPU table)

DEV = "cuda"


def median_ms(f, reps=10):
    for _ in range(2):
        f()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        s = time.perf_counter()
        f()
        torch.cuda.synchronize()
        ts.append(time.perf_counter() - s)
    return sorted(ts)[reps // 2] * 1e3


def gemm_rows():
    a = torch.randn(4096, 4096, device=DEV)
    b = torch.randn(4096, 4096, device=DEV)
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        label = "SGEMM 4096^3 " + ("TF32" if tf32 else "f32")
        yield label, median_ms(lambda: (a @ b).sum().item())
    torch.backends.cuda.matmul.allow_tf32 = False
    # bf16 operands and result, f32 accumulation; read back as ours: converted to f32, summed.
    a16, b16 = a.bfloat16(), b.bfloat16()
    yield "GEMM 4096^3 bf16", median_ms(lambda: (a16 @ b16).float().sum().item())


def dcgan_step_row(batch=128):
    """One D step on real and generated images (BCE with logits), then a non-saturating G step
    with D's weights frozen, Adam(2e-4, 0.5): DcganTrainer::step of gan/src/models/dcgan.rs."""
    g, d = dcgan(100, 64, 64, 3, 64)
    g, d = g.to(DEV), d.to(DEV)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    real = torch.rand(batch, 3, 64, 64, device=DEV) * 2 - 1
    ones = torch.ones(batch, 1, 1, 1, device=DEV)
    zeros = torch.zeros(batch, 1, 1, 1, device=DEV)

    def step():
        fake = g(torch.randn(batch, 100, 1, 1, device=DEV))
        opt_d.zero_grad(set_to_none=True)
        loss_d = bce(d(real), ones) + bce(d(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        # saddle freezes D for G's pass (no weight gradients computed); so does this row.
        d.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        loss_g = bce(d(fake), ones)
        loss_g.backward()
        opt_g.step()
        d.requires_grad_(True)
        return loss_d.item(), loss_g.item()

    return f"DCGAN 64x64x3 train step, batch {batch} (f32)", median_ms(step)


# The DCGAN layers of issue 2 (k4 s2 p1) as gan/tests/dcgan.rs's DCGAN_LAYERS: (conv, in, out,
# input size); batch 256, gradients of sum(y) for x and the weight.
DCGAN_LAYERS = [(True, 3, 64, 32), (True, 64, 128, 16), (True, 128, 256, 8),
                (False, 256, 128, 4), (False, 128, 64, 8), (False, 64, 3, 16)]


def layer_rows(batch=256):
    for conv, cin, cout, hw in DCGAN_LAYERS:
        x = torch.randn(batch, cin, hw, hw, device=DEV, requires_grad=True)
        shape = (cout, cin, 4, 4) if conv else (cin, cout, 4, 4)
        w = (torch.randn(*shape, device=DEV) * 0.02).requires_grad_()
        op = F.conv2d if conv else F.conv_transpose2d

        def step(x=x, w=w, op=op):
            gx, gw = torch.autograd.grad(op(x, w, stride=2, padding=1).sum(), (x, w))
            (gw.sum() + gx.sum()).item()

        name = "conv2d" if conv else "conv_transpose2d"
        yield f"{name} {cin}->{cout} {hw}x{hw} b{batch} fwd+bwd", median_ms(step)


SN = nn.utils.spectral_norm


class CBN(nn.Module):
    def __init__(self, c, cond):
        super().__init__()
        self.bn = nn.BatchNorm2d(c, affine=False)
        self.gain = nn.Linear(cond, c, bias=False)
        self.bias = nn.Linear(cond, c, bias=False)

    def forward(self, x, y):
        n = x.shape[0]
        return self.bn(x) * (1 + self.gain(y)).view(n, -1, 1, 1) + self.bias(y).view(n, -1, 1, 1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()

        def conv(i, o):
            return SN(nn.Conv2d(i, o, 1, bias=False))

        self.theta, self.phi = conv(c, c // 8), conv(c, c // 8)
        self.g, self.o = conv(c, c // 2), conv(c // 2, c)
        self.gamma = nn.Parameter(torch.tensor(0.5))

    def forward(self, x):
        n, c, h, w = x.shape
        theta = self.theta(x).view(n, c // 8, h * w)
        phi = F.max_pool2d(self.phi(x), 2).view(n, c // 8, h * w // 4)
        g = F.max_pool2d(self.g(x), 2).view(n, c // 2, h * w // 4)
        beta = torch.softmax(torch.bmm(theta.transpose(1, 2), phi), -1)
        return x + self.gamma * self.o(torch.bmm(g, beta.transpose(1, 2)).view(n, c // 2, h, w))


class UpBlock(nn.Module):
    """gan/tests/dcgan.rs's UpBlock: conditional BN, spectral norm, self-attention."""

    def __init__(self, cin, cout, cond):
        super().__init__()
        self.cbn1, self.cbn2 = CBN(cin, cond), CBN(cout, cond)
        self.conv1 = SN(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = SN(nn.Conv2d(cout, cout, 3, padding=1))
        self.shortcut = SN(nn.Conv2d(cin, cout, 1))
        self.attention = Attention(cout)

    def forward(self, x, y):
        h = F.interpolate(F.relu(self.cbn1(x, y)), scale_factor=2)
        h = self.conv2(F.relu(self.cbn2(self.conv1(h), y)))
        return self.attention(h + self.shortcut(F.interpolate(x, scale_factor=2)))


def up_block_row(n=32, cin=256, cout=128, hw=32, cond=128):
    block = UpBlock(cin, cout, cond).to(DEV).train()
    x = torch.randn(n, cin, hw, hw, device=DEV, requires_grad=True)
    y = torch.randn(n, cond, device=DEV)

    def step():
        (gx,) = torch.autograd.grad(block(x, y).sum(), (x,))
        gx.sum().item()

    label = f"BigGAN up-block {cin}->{cout} {2 * hw}x{2 * hw} +CBN+SN+attention b{n} fwd+bwd"
    return label, median_ms(step)


def read_ours(path):
    """saddle's rows from gpu_bench's log: `| label | 1.234 ms | rate |`."""
    ours = {}
    if not path or not os.path.exists(path):
        return ours
    for line in open(path):
        if "|" not in line:
            continue
        # libtest may print "test gpu_bench ... " in front of the first row.
        cells = [c.strip() for c in line[line.index("|"):].split("|")]
        if len(cells) > 3 and cells[2].endswith(" ms"):
            try:
                ours[cells[1]] = float(cells[2][:-3])
            except ValueError:
                pass
    return ours


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--ours", help="the log of saddle's gpu_bench (its markdown rows)")
    args = p.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    theirs = {}
    for rows in (gemm_rows(), [dcgan_step_row()], layer_rows(), [up_block_row()]):
        for label, ms in rows:
            theirs[label] = ms
            print(f"torch: {label}: {ms:.3f} ms", file=sys.stderr, flush=True)
    ours = read_ours(args.ours)
    print(f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, "
          f"{torch.cuda.get_device_name()}")
    print()
    print("| benchmark | saddle | PyTorch | ratio saddle / PyTorch |")
    print("|---|---|---|---|")
    for label in list(theirs) + [k for k in ours if k not in theirs]:
        mine, t = ours.get(label), theirs.get(label)
        mine_s = f"{mine:.3f} ms" if mine is not None else "not run"
        t_s = f"{t:.3f} ms" if t is not None else "-"
        ratio = f"{mine / t:.2f}" if mine is not None and t else "-"
        print(f"| {label} | {mine_s} | {t_s} | {ratio} |")


if __name__ == "__main__":
    main()
