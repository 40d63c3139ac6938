#!/usr/bin/env bash
# `make bench-train`: milliseconds per Adam step of the endogenous-volatility deep BSDE (q = 2,
# N = 40, batch 128, f64, CPU), eqlab (burn, flex backend, release build) against the identical
# network and rollout in PyTorch (benches/train/bench_torch.py, torch from PyPI in a virtualenv
# that this script creates on first use). Prints both timings, the ratio and peak memory; with
# PROFILE=1 also a perf profile of the eqlab side.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-bench}
STEPS=${STEPS:-300}
WIDTH=${WIDTH:-15}
THREADS=${THREADS:-"1 2"}

if ! "$VENV/bin/python" -c "import torch, numpy" 2>/dev/null; then
  echo "== setting up $VENV with torch (large download, once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q numpy torch==2.9.0
fi
echo "== building the eqlab side (release)"
cargo build -q --release --example bench_train
BIN=target/release/examples/bench_train

ms() { grep -o '[0-9.]* ms/step' | cut -d' ' -f1; }
for t in $THREADS; do
  e_out=$( { RAYON_NUM_THREADS=$t /usr/bin/time -f 'peak %M KiB' "$BIN" "$STEPS" "$WIDTH"; } 2>&1 )
  p_out=$( { /usr/bin/time -f 'peak %M KiB' "$VENV/bin/python" benches/train/bench_torch.py "$t" "$STEPS" "$WIDTH"; } 2>&1 )
  e=$(echo "$e_out" | ms); p=$(echo "$p_out" | ms)
  echo "threads=$t  eqlab $e ms/step ($(echo "$e_out" | grep -o 'peak.*'))  |  torch $p ms/step ($(echo "$p_out" | grep -o 'peak.*'))  |  eqlab/torch = $(awk -v a="$e" -v b="$p" 'BEGIN{printf "%.2f", a/b}')"
done

if [ "${PROFILE:-0}" = 1 ]; then
  echo "== perf profile of the eqlab side (top symbols)"
  perf record -q -g -o /tmp/eqlab-train.perf "$BIN" "$STEPS" "$WIDTH" >/dev/null 2>&1
  perf report -i /tmp/eqlab-train.perf --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -25
fi
