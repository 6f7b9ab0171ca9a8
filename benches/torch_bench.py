#!/usr/bin/env python3
"""PyTorch side of saddle's benchmark tables.

Times the same cases as `saddle bench gemm|conv` (same names, same work) and prints JSON lines
{"name", "median_ms", "gflops"}. Median of --runs timed runs after one warm-up.

    python benches/torch_bench.py gemm --threads 2
    python benches/torch_bench.py conv --threads 2
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def median_ms(fn, runs):
    fn()
    times = []
    for _ in range(max(runs, 1)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def gemm_cases(sizes):
    for n in sizes:
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        yield f"sgemm_{n}", (lambda a=a, b=b: torch.mm(a, b)), 2.0 * n**3


# (kind, batch, c_in, h, c_out): k4 s2 p1, the DCGAN layers.
DCGAN_LAYERS = [
    ("conv2d", 64, 3, 32, 64),
    ("conv2d", 64, 64, 16, 128),
    ("conv2d", 64, 128, 8, 256),
    ("convT", 64, 256, 4, 128),
    ("convT", 64, 128, 8, 64),
    ("convT", 64, 64, 16, 3),
]


def conv_cases(layers):
    for kind, n, cin, h, cout in layers:
        x = torch.randn(n, cin, h, h, requires_grad=True)
        if kind == "conv2d":
            w = torch.randn(cout, cin, 4, 4, requires_grad=True)
            op = lambda x, w: F.conv2d(x, w, stride=2, padding=1)
            oh = h // 2
            macs = n * cout * oh * oh * cin * 16
        else:
            w = torch.randn(cin, cout, 4, 4, requires_grad=True)
            op = lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1)
            macs = n * cin * h * h * cout * 16
        gy = torch.randn(op(x, w).shape)

        def step(x=x, w=w, op=op, gy=gy):
            x.grad = None
            w.grad = None
            op(x, w).backward(gy)

        # forward + backward-data + backward-weight: three products of equal size
        yield f"{kind}_{cin}x{h}x{h}_to_{cout}", step, 3 * 2.0 * macs


def main():
    p = argparse.ArgumentParser()
    p.add_argument("suite", choices=["gemm", "conv"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--sizes", default="256,512,1024,2048")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cases = gemm_cases([int(s) for s in args.sizes.split(",")]) if args.suite == "gemm" else conv_cases(DCGAN_LAYERS)
    for name, fn, flops in cases:
        ms = median_ms(fn, args.runs)
        print(json.dumps({"name": name, "median_ms": ms, "gflops": flops / ms / 1e6}), flush=True)


if __name__ == "__main__":
    main()
