#!/usr/bin/env bash
# Soak test of interruption and resume: a small DCGAN run on the embedded digits is killed with
# SIGKILL at N random moments (checkpoint writes included) and resumed each time; then it runs
# to the end and is compared with the same run uninterrupted. Checked after every kill:
#   - the run resumes (every checkpoint left behind loads),
#   - the latest checkpoint's step is never more than the checkpoint interval behind the last
#     step logged, and never behind the previous one,
#   - metrics.jsonl parses (a torn last line aside);
# and at the end:
#   - no temporary files are left in the run folder,
#   - the final checkpoint is byte-identical to the uninterrupted run's, and every logged loss
#     equal.
#
#   scripts/soak.sh [N=50] [STEPS=6000]     (release build; a few minutes for N = 50)
set -euo pipefail
cd "$(dirname "$0")/.."
kills=${1:-50}
steps=${2:-6000}
cargo build --release -q
exec python3 - "$kills" "$steps" <<'PY'
import json, os, random, shutil, signal, struct, subprocess, sys, tempfile, time

kills, steps = int(sys.argv[1]), int(sys.argv[2])
every = 10
exe = os.path.abspath("target/release/saddle")
root = tempfile.mkdtemp(prefix="saddle-soak-")
flags = ["--steps", str(steps), "--ngf", "8", "--ndf", "8", "--nz", "8", "--batch-size", "16",
         "--log-every", "1", "--sample-every", "50", "--checkpoint-every", str(every),
         "--device", "cpu"]

def train(out, resume):
    where = ["--resume", out] if resume else ["--out", out]
    return subprocess.Popen([exe, "train", "dcgan", *where, *flags],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

def checkpoint_step(run):
    path = os.path.join(run, "checkpoints", "latest.safetensors")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    return int(header["__metadata__"]["run.step"])

def logged(run):
    path = os.path.join(run, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    lines = open(path).read().split("\n")
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 2:   # only the last line may be torn
                sys.exit(f"metrics.jsonl line {i + 1} does not parse: {line!r}")
    return [r for r in records if "resumed" not in r]

def losses(run):
    return [(r["step"], r["d_loss"], r["g_loss"]) for r in logged(run)]

start = time.time()
straight = os.path.join(root, "straight")
p = train(straight, False)
if p.wait() != 0:
    sys.exit(p.stderr.read().decode())
per_run = time.time() - start

run = os.path.join(root, "killed")
rng = random.Random(1)
resumes, max_back, previous = 0, 0, 0
for k in range(kills):
    p = train(run, resume=os.path.exists(os.path.join(run, "config.json")))
    # Mostly a few steps in, sometimes during start-up or the step-0 checkpoint.
    time.sleep(rng.uniform(0.0, min(per_run * 0.6, 0.5)))
    if p.poll() is not None:   # finished (or failed) before the kill
        if p.returncode != 0:
            sys.exit(f"kill {k}: the run failed: {p.stderr.read().decode()}")
        break
    p.send_signal(signal.SIGKILL)
    p.wait()
    resumes += 1
    ck = checkpoint_step(run)
    if ck is None:
        continue   # killed before the step-0 checkpoint: the next start begins again
    last = max([r["step"] for r in logged(run)], default=0)
    if ck < previous or last - ck > every:
        sys.exit(f"kill {k}: checkpoint at step {ck}, last logged {last}, previous {previous}")
    max_back = max(max_back, last - ck)
    previous = ck

p = train(run, resume=True)
if p.wait() != 0:
    sys.exit(f"final resume failed: {p.stderr.read().decode()}")
stray = [os.path.join(d, f) for d, _, fs in os.walk(run) for f in fs
         if f.endswith(".tmp") or ".tmp-" in f]
same_bytes = (open(os.path.join(run, "checkpoints/latest.safetensors"), "rb").read()
              == open(os.path.join(straight, "checkpoints/latest.safetensors"), "rb").read())
same_losses = losses(run) == losses(straight)
print(f"soak: {resumes} SIGKILLs of a {steps}-step DCGAN run (checkpoint every {every} steps, "
      f"one uninterrupted run {per_run:.1f} s) and {resumes + 1} resumes: "
      f"every resume loaded; the step went back at most {max_back} (limit {every}); "
      f"stray temporary files: {len(stray)}; final checkpoint byte-identical to the "
      f"uninterrupted run's: {same_bytes}; every logged loss equal: {same_losses}")
shutil.rmtree(root)
sys.exit(0 if same_bytes and same_losses and not stray else 1)
PY
