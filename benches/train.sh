#!/usr/bin/env bash
# `make bench-train`: one Adam step of the endogenous-volatility deep BSDE (q = 2, N = 40, batch
# 128, f64, CPU), eqlab (burn, flex backend, release build; and eqlab on libtorch, device tch-cpu,
# when `make test-tch` has created .venv-torch) against the identical network and rollout in
# PyTorch (benches/train/bench_torch.py, torch from .venv-torch or .venv-bench).
# REPS repetitions per thread count, interleaved (eqlab and torch alternate which goes first);
# medians of wall and CPU time per step and of the whole processes, the ratios, peak RSS, the
# machine and its load at start and end. PROFILE=1 adds a perf profile of the eqlab side.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
STEPS=${STEPS:-300}
WIDTH=${WIDTH:-15}
THREADS=${THREADS:-"1 2"}
REPS=${REPS:-3}
WARMUP=20 # warm-up steps both sides run before the timed loop (bench_train.rs, bench_torch.py)

pick_torch_venv
echo "== building the eqlab side (release)"
cargo build -q --release --example bench_train
BIN=target/release/examples/bench_train
tch_setup bench_train

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
machine_summary
clean_reference_env
echo "$TORCH_WAIT_NOTE"
echo "== $REPS interleaved repetitions x threads {$THREADS}: $STEPS timed steps after $WARMUP warm-up, width $WIDTH"

run_e() {
  RAYON_NUM_THREADS=$1 timed "$W/e-$1-$2.time" "$BIN" "$STEPS" "$WIDTH" > "$W/e-$1-$2.out"
  run_tch "$W/x-$1-$2" "$1" "$STEPS" "$WIDTH"
}
run_t() {
  OMP_WAIT_POLICY=PASSIVE timed "$W/t-$1-$2.time" \
    "$VENV/bin/python" benches/train/bench_torch.py "$1" "$STEPS" "$WIDTH" > "$W/t-$1-$2.out"
}
interleave_eqlab_torch

# Per-step numbers come from each program's own timer around the timed loop. CPU per step: torch
# measures it in-process (time.process_time); for eqlab it is the process's user+sys divided by
# all its steps (warm-up included), since the Rust side reports wall time only.
wall_step() { sed -n 's/.*: \([0-9.]*\) ms\/step.*/\1/p' "$1"; }
cpu_step_t() { sed -n 's/.*cpu \([0-9.]*\) ms\/step.*/\1/p' "$1"; }
echo
echo "per Adam step, medians of $REPS (ratio = eqlab / torch, below 1 means eqlab is faster):"
printf '%-8s | %13s %13s %7s | %13s %13s %7s\n' threads "eqlab wall ms" "torch wall ms" ratio \
  "eqlab CPU ms" "torch CPU ms" ratio
for t in $THREADS; do
  ew=() tw=() ec=() tc=()
  for rep in $(seq 1 "$REPS"); do
    ew+=("$(wall_step "$W/e-$t-$rep.out")")
    tw+=("$(wall_step "$W/t-$t-$rep.out")")
    ec+=("$(awk -v c="$(tfield "$W/e-$t-$rep.time" cpu)" -v n=$((STEPS + WARMUP)) 'BEGIN { printf "%.3f", 1e3 * c / n }')")
    tc+=("$(cpu_step_t "$W/t-$t-$rep.out")")
  done
  a=$(median "${ew[@]}") b=$(median "${tw[@]}") c=$(median "${ec[@]}") d=$(median "${tc[@]}")
  printf '%-8s | %13.2f %13.2f %7s | %13.2f %13.2f %7s\n' "$t" "$a" "$b" "$(ratio "$a" "$b")" \
    "$c" "$d" "$(ratio "$c" "$d")"
done
if [ -n "$TCH_BIN" ]; then
  echo
  echo "eqlab on libtorch (device tch-cpu), wall ms per step, ratio = tch-cpu / torch:"
  printf '%-8s | %13s %13s %7s\n' threads "tch wall ms" "torch wall ms" ratio
  for t in $THREADS; do
    xw=() tw=()
    for rep in $(seq 1 "$REPS"); do
      xw+=("$(wall_step "$W/x-$t-$rep.out")") tw+=("$(wall_step "$W/t-$t-$rep.out")")
    done
    a=$(median "${xw[@]}") b=$(median "${tw[@]}")
    printf '%-8s | %13.2f %13.2f %7s\n' "$t" "$a" "$b" "$(ratio "$a" "$b")"
  done
fi
echo
whole_process_table

if [ "${PROFILE:-0}" = 1 ]; then
  echo "== perf profile of the eqlab side (top symbols)"
  perf record -q -g -o /tmp/eqlab-train.perf "$BIN" "$STEPS" "$WIDTH" >/dev/null 2>&1
  perf report -i /tmp/eqlab-train.perf --no-children --sort dso,symbol --stdio 2>/dev/null | grep -v '^#' | grep '%' | head -25
fi
