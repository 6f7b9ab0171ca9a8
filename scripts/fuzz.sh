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
# the saved regressions); here they run with a huge case count (SADDLE_FUZZ_CASES,
# PROPTEST_CASES) until the time is up. A failure is shrunk to a minimal input and saved by proptest in the test's
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
for target in "${targets[@]}"; do
  set -- $target
  echo "== $2 ($1): up to ${seconds} s"
  SADDLE_FUZZ_CASES=100000000 PROPTEST_CASES=100000000 timeout "$seconds" \
    cargo test --release -q -p "$1" --test "$2" -- "$3" --test-threads 2
  case $? in
    0|124) echo "== $2: no failure" ;;  # 124: the time ran out first
    *) echo "== $2: FAILED (the minimal case is in its .proptest-regressions file)"; status=1 ;;
  esac
done
exit $status
