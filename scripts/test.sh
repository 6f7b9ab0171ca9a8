#!/usr/bin/env bash
# The test suite, as CI runs it: installs NVRTC (once, for the CUDA kernel compile tests; no GPU
# needed), runs every test of the workspace (doc-tests included), then runs the examples, builds
# the docs with warnings as errors, and checks the libraries with the declared minimum Rust
# (rust-version) when rustup can install it. Without network or Python the CUDA compile tests
# print that they were skipped and why, and the rest still runs; with SADDLE_REQUIRE_NVRTC=1 (as
# CI sets it) a failed install stops here instead.
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
cargo test --workspace "$@"
# Extra arguments select tests: the steps below belong to a full run only.
[ $# -eq 0 ] || exit 0

# The examples (built by `cargo test` above), each run to completion.
for example in custom_op pytorch_interop custom_gan sample_from_run; do
  echo "test.sh: example $example"
  cargo run --quiet --example "$example"
done

RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
echo "test.sh: docs built without warnings"

msrv=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
if command -v rustup >/dev/null && timeout 300 rustup toolchain install "$msrv" --profile minimal >/dev/null 2>&1; then
  cargo "+$msrv" check --workspace --lib --examples --quiet
  echo "test.sh: the libraries and examples build with Rust $msrv (rust-version)"
else
  echo "test.sh: Rust $msrv (rust-version) could not be installed; the minimum version is unchecked" >&2
fi
