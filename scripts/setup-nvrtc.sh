#!/usr/bin/env bash
# Installs what the CUDA kernel compile tests need on a machine without a GPU or CUDA toolkit:
# NVRTC 13.0, the CUDA headers it includes (cuda_fp16.h, mma.h, ...) and ptxas, from the Python
# package index into a private venv (default ~/.cache/saddle/nvrtc-13.0; override with PREFIX).
# Prints the environment to source:   eval "$(scripts/setup-nvrtc.sh)"
#
# Pinned to 13.0 on purpose: newer NVRTC emits PTX versions that the GPU machines' driver (580,
# CUDA 13.0) and ptxas 13.0 reject. Idempotent: a second call only prints the exports.
set -euo pipefail
PREFIX="${PREFIX:-$HOME/.cache/saddle/nvrtc-13.0}"
PYTHON="${PYTHON:-python3}"
if ! "$PREFIX/venv/bin/python" -c 'import nvidia' 2>/dev/null; then
  command -v "$PYTHON" >/dev/null || { echo "setup-nvrtc: $PYTHON not found (needs Python 3 with venv)" >&2; exit 1; }
  "$PYTHON" -m venv "$PREFIX/venv" >&2
  # No dependencies: the nvcc wheel would pull a large unpinned NVVM that ptxas does not use.
  "$PREFIX/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96 \
    nvidia-cuda-crt==13.0.88 nvidia-cuda-nvcc==13.0.88 >&2
fi
ROOT="$("$PREFIX/venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
[ -e "$ROOT/lib/libnvrtc.so.13" ] || { echo "setup-nvrtc: no libnvrtc.so.13 under $ROOT/lib" >&2; exit 1; }
# cudarc loads libnvrtc.so by its unversioned name too.
[ -e "$ROOT/lib/libnvrtc.so" ] || ln -sf libnvrtc.so.13 "$ROOT/lib/libnvrtc.so"
echo "export CUDA_HOME=\"$ROOT\""
echo "export PATH=\"$ROOT/bin:\$PATH\""
echo "export LD_LIBRARY_PATH=\"$ROOT/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
