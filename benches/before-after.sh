#!/usr/bin/env bash
# Training steps of an older saddle binary against this checkout's and PyTorch's, interleaved in
# one run (same machine state), as a markdown table of medians over the rounds.
#
#   benches/before-after.sh OLD_SADDLE [--rounds 3] [--runs 5] [--threads 2]
#
# OLD_SADDLE: a release binary of the commit to compare with, e.g. built by
#   git worktree add /tmp/old <commit> && cargo build --release --manifest-path /tmp/old/Cargo.toml
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd); cd "$root"
[ $# -ge 1 ] || { echo "usage: benches/before-after.sh OLD_SADDLE [--rounds N] [--runs N] [--threads N]" >&2; exit 2; }
old=$1; shift
[ -x "$old" ] || { echo "before-after.sh: $old is not an executable" >&2; exit 1; }
rounds=3; runs=5; threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "before-after.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
py=${TORCH_PYTHON:-benches/.venv/bin/python}
"$py" -c 'import torch' 2>/dev/null || { echo "before-after.sh: no PyTorch at $py (benches/setup-torch.sh installs it)" >&2; exit 1; }
cargo build --release --quiet
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for _ in $(seq "$rounds"); do
  RAYON_NUM_THREADS=$threads "$old" bench train --runs "$runs" --json >> "$tmp/old.jsonl"
  RAYON_NUM_THREADS=$threads target/release/saddle bench train --runs "$runs" --json >> "$tmp/new.jsonl"
  "$py" benches/torch_bench.py train --runs "$runs" --threads "$threads" >> "$tmp/torch.jsonl"
done
"$py" - "$tmp" <<'PY'
import json, os, statistics, sys
d = sys.argv[1]
def load(n):
    out = {}
    for line in open(os.path.join(d, n + ".jsonl")):
        if line.startswith("{"):
            r = json.loads(line); out.setdefault(r["name"], []).append(r["median_ms"])
    return {k: statistics.median(v) for k, v in out.items()}
old, new, ref = load("old"), load("new"), load("torch")
print("| case | before ms | after ms | after / before | PyTorch ms | before / PyTorch | after / PyTorch |")
print("|---|---:|---:|---:|---:|---:|---:|")
f = lambda v: f"{v:.1f}" if v is not None else "—"
r = lambda a, b: f"{a / b:.2f}" if a and b else "—"
for k in sorted(set(new) | set(ref)):
    o, n, t = old.get(k), new.get(k), ref.get(k)
    print(f"| {k} | {f(o)} | {f(n)} | {r(n, o)} | {f(t)} | {r(o, t)} | {r(n, t)} |")
PY
