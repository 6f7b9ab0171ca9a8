#!/usr/bin/env bash
# Side-by-side table of saddle vs PyTorch on the same machine, in the same run:
#   benches/compare.sh [gemm|conv|train|all] [--rounds R] [--runs N] [--threads T] [--only NAME]
#                      [--install-torch]
# --only keeps the train cases whose name contains NAME (e.g. gan2014, biggan). Model rows report
# their trained parameter counts; the table is refused when the two sides' differ.
# Each round runs our suite and PyTorch's alternately (so drift in machine load hits both); the
# figure per case is the median over rounds of each side's median-of-N time.
# PyTorch comes from $TORCH_PYTHON, else benches/.venv (created with --install-torch, or by
# benches/setup-torch.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); cd "$root"
suites=(); rounds=3; runs=7; threads=2; install=0; only=()
while [ $# -gt 0 ]; do
  case "$1" in
    gemm|conv|train) suites+=("$1"); shift ;;
    all) suites+=(gemm conv train); shift ;;
    --rounds) rounds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --only) only=(--only "$2"); shift 2 ;;
    --install-torch) install=1; shift ;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ ${#suites[@]} -gt 0 ] || suites=(gemm conv)
py=${TORCH_PYTHON:-}
if [ -z "$py" ]; then
  if [ "$install" = 1 ]; then py=$(benches/setup-torch.sh); else py=benches/.venv/bin/python; fi
fi
"$py" -c 'import torch' 2>/dev/null || { echo "compare.sh: no PyTorch at $py; rerun with --install-torch or set TORCH_PYTHON" >&2; exit 1; }
cargo build --release --quiet
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for s in "${suites[@]}"; do
  for r in $(seq "$rounds"); do
    filter=(); [ "$s" = train ] && filter=("${only[@]}")
    RAYON_NUM_THREADS=$threads target/release/saddle bench "$s" --runs "$runs" "${filter[@]}" --json >> "$tmp/ours.jsonl"
    "$py" benches/torch_bench.py "$s" --runs "$runs" --threads "$threads" "${filter[@]}" >> "$tmp/torch.jsonl"
  done
done
"$py" - "$tmp/ours.jsonl" "$tmp/torch.jsonl" "$threads" "$rounds" "$runs" <<'PY'
import json, statistics, subprocess, sys
import torch
params = ({}, {})
peaks = []
def load(p, counts):
    out = {}
    for line in open(p):
        r = json.loads(line)
        # The FMA peak probe is a rate, not a time: reported under the table.
        if r["name"].startswith("fma_peak"):
            peaks.append((r["name"], r["gflops"])); continue
        out.setdefault(r["name"], []).append(r["median_ms"])
        if "params" in r: counts[r["name"]] = r["params"]
    return {k: statistics.median(v) for k, v in out.items()}
ours, ref = load(sys.argv[1], params[0]), load(sys.argv[2], params[1])
# Model rows carry their trained parameter counts: both sides must time the same model.
for name, n in params[0].items():
    t = params[1].get(name)
    if t is not None and t != n:
        sys.exit(f"compare.sh: {name}: saddle's model has {n} parameters, PyTorch's {t}")
    print(f"{name}: {n} trained parameters" + (" on both sides" if t == n else " (PyTorch's not reported)"))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"threads={sys.argv[3]} rounds={sys.argv[4]} runs/round={sys.argv[5]} torch={torch.__version__} commit={commit}")
print(f"| case | saddle ms | PyTorch ms | ratio (saddle/PyTorch) |")
print(f"|---|---:|---:|---:|")
for name, ms in ours.items():
    t = ref.get(name)
    print(f"| {name} | {ms:.3f} | {t:.3f} | {ms / t:.2f} |" if t else f"| {name} | {ms:.3f} | - | - |")
if peaks:
    name = peaks[0][0]
    print(f"\nsaddle's FMA peak probe ({name}, the GEMM kernels' width), median of {len(peaks)} rounds: "
          f"{statistics.median(g for _, g in peaks):.1f} GFLOP/s")
PY
