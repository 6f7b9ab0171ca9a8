#!/usr/bin/env bash
# Counts the crates in each library's normal dependency tree (the crate itself included), for the
# CPU-only build (--no-default-features) and the default one (with the `cuda` feature's cudarc).
# With --candle it also counts candle-core's tree, resolving it in a scratch crate (needs the
# network for the crates.io index; nothing is built).
set -euo pipefail
cd "$(dirname "$0")/.."
count() { cargo tree "$@" -e normal --prefix none | sed 's/ (\*)//' | sort -u | wc -l; }
printf '%-16s %9s %8s\n' crate cpu-only default
for p in saddle-kernels saddle-engine saddle-nn saddle-gan; do
  printf '%-16s %9s %8s\n' "$p" "$(count -p "$p" --no-default-features)" "$(count -p "$p")"
done
if [ "${1:-}" = --candle ]; then
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  (cd "$scratch" && cargo new -q count && cd count && cargo add -q candle-core &&
    printf '%-16s %9s %8s\n' "candle-core $(cargo tree -p candle-core --depth 0 --prefix none | cut -d' ' -f2)" - "$(count -p candle-core)")
fi
