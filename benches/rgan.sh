#!/usr/bin/env bash
# `make bench-rgan`: milliseconds per generator and per discriminator Adam step of the
# Reinforced-GAN (N = 10, K = 100, 3×50 tanh, μ learned, batch 1000, f64, CPU), eqlab (burn, flex
# backend, release build) against the same model in PyTorch (benches/rgan/bench_torch.py, torch
# from PyPI in the virtualenv that `make bench-train` also uses). Prints both and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-bench}
STEPS=${STEPS:-20}
BATCH=${BATCH:-1000}
THREADS=${THREADS:-"1 2"}

if ! "$VENV/bin/python" -c "import torch, numpy" 2>/dev/null; then
  echo "== setting up $VENV with torch (large download, once)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q numpy torch==2.9.0
fi
echo "== building the eqlab side (release)"
cargo build -q --release --example bench_rgan
BIN=target/release/examples/bench_rgan

num() { grep -o "$1 [0-9.]* ms" | awk '{print $2}'; }
for t in $THREADS; do
  e_out=$( { RAYON_NUM_THREADS=$t /usr/bin/time -f 'peak %M KiB' "$BIN" "$STEPS" "$BATCH"; } 2>&1 )
  p_out=$( { /usr/bin/time -f 'peak %M KiB' "$VENV/bin/python" benches/rgan/bench_torch.py "$t" "$STEPS" "$BATCH"; } 2>&1 )
  for phase in generator discriminator; do
    e=$(echo "$e_out" | num $phase); p=$(echo "$p_out" | num $phase)
    echo "threads=$t $phase: eqlab $e ms/step | torch $p ms/step | eqlab/torch = $(awk -v a="$e" -v b="$p" 'BEGIN{printf "%.2f", a/b}')"
  done
  echo "threads=$t peak memory: eqlab $(echo "$e_out" | grep -o 'peak.*') | torch $(echo "$p_out" | grep -o 'peak.*')"
done
