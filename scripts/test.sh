#!/usr/bin/env bash
# The test suite, as CI runs it: installs NVRTC (once, for the CUDA kernel compile tests; no GPU
# needed), then runs every test of the workspace. Without network or Python the CUDA compile
# tests print that they were skipped and why, and the rest still runs; with
# SADDLE_REQUIRE_NVRTC=1 (as CI sets it) a failed install stops here instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if nvrtc_env=$(timeout 900 scripts/setup-nvrtc.sh); then
  eval "$nvrtc_env"
  echo "test.sh: NVRTC ready (CUDA_HOME=$CUDA_HOME)"
elif [ "${SADDLE_REQUIRE_NVRTC:-0}" = 1 ]; then
  echo "test.sh: NVRTC could not be installed, and SADDLE_REQUIRE_NVRTC=1 requires the CUDA compile tests to run" >&2
  exit 1
else
  echo "test.sh: NVRTC could not be installed; the CUDA compile tests will be skipped" >&2
fi
exec cargo test --workspace "$@"
