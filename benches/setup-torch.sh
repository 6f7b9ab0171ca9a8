#!/usr/bin/env bash
# Installs PyTorch (CPU use) into benches/.venv for the peer comparison. Prints the python path.
# Only needed for benches/compare.sh; the engine and its tests do not use Python.
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  python3 -m venv .venv >&2
  .venv/bin/pip install --quiet --disable-pip-version-check torch numpy >&2
fi
echo "$PWD/.venv/bin/python"
