#!/usr/bin/env bash
# Fuzzes the parsers of untrusted input for a given time each: the IDX reader and the image
# folder loader (gan/tests/data.rs, fuzz_*), the safetensors checkpoint loader
# (nn/tests/checkpoint_fuzz.rs) and the run folder's config.json (tests/config_fuzz.rs).
#
#   scripts/fuzz.sh            # 600 s per target (by hand)
#   scripts/fuzz.sh 30         # 30 s per target
#
# The targets are proptest properties (stable Rust, no fuzzing toolchain): CI runs each with a
# few hundred cases as part of the test suite (from the seeds in gan/tests/corpus/ and
# the saved regressions); here they run in batches of FUZZ_BATCH cases (SADDLE_FUZZ_CASES,
# PROPTEST_CASES), each batch with fresh random cases, until the time is up. A failure is shrunk to a minimal input and saved by proptest in the test's
# `*.proptest-regressions` file: commit that file and the case is replayed first on every run
# (a regression test), then fix the code.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
# package, test file, name filter
targets=(
  "saddle-gan data fuzz_"
  "saddle-nn checkpoint_fuzz mutated"
  "saddle config_fuzz hostile"
)
cargo test --no-run --release -p saddle-gan -p saddle-nn -p saddle \
  --test data --test checkpoint_fuzz --test config_fuzz >/dev/null || exit 1
status=0
batch=${FUZZ_BATCH:-5000}   # cases per proptest run; runs repeat (new random cases) until the time is up
for target in "${targets[@]}"; do
  set -- $target
  echo "== $2 ($1, tests matching '$3'): up to ${seconds} s in runs of $batch cases"
  start=$SECONDS runs=0 failed=0
  while [ $((SECONDS - start)) -lt "$seconds" ]; do
    if ! SADDLE_FUZZ_CASES=$batch PROPTEST_CASES=$batch \
        cargo test --release -q -p "$1" --test "$2" -- "$3" --test-threads 2 >/tmp/saddle-fuzz.log 2>&1; then
      cat /tmp/saddle-fuzz.log
      echo "== $2: FAILED after $((runs * batch)) passing cases per test (the minimal case is in its .proptest-regressions file)"
      status=1 failed=1
      break
    fi
    runs=$((runs + 1))
  done
  [ "$failed" = 1 ] || echo "== $2: $((runs * batch)) cases per test in $((SECONDS - start)) s, no failure"
done
exit $status
