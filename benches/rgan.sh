#!/usr/bin/env bash
# `make bench-rgan`: milliseconds per generator and per discriminator Adam step of the
# Reinforced-GAN (N = 10, K = 100, 3×50 tanh, μ learned, batch 1000, f64, CPU), eqlab (burn, flex
# backend, release build; and eqlab on libtorch, device tch-cpu, when `make test-tch` has created
# .venv-torch) against the same model in PyTorch (benches/rgan/bench_torch.py, torch from
# .venv-torch or .venv-bench). REPS repetitions per thread count, interleaved (eqlab and torch
# alternate which goes first); medians of wall and CPU time per step and of the whole processes,
# the ratios, peak RSS, the machine and its load at start and end. Then (RSS=1, the default) the
# peak resident memory of one short `rgan_train` run inside `eqlab run` (RSS_STEPS steps per phase,
# two rounds, the pipeline's 3000 test paths): the memory goal of `pipelines/rgan.yaml`.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
STEPS=${STEPS:-20}
BATCH=${BATCH:-1000}
THREADS=${THREADS:-"1 2"}
REPS=${REPS:-3}
WARMUP=3 # warm-up steps per phase on both sides (bench_rgan.rs, bench_torch.py)

pick_torch_venv
echo "== building the eqlab side (release)"
cargo build -q --release --example bench_rgan
BIN=target/release/examples/bench_rgan
tch_setup bench_rgan

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
machine_summary
clean_reference_env
echo "$TORCH_WAIT_NOTE"
echo "== $REPS interleaved repetitions x threads {$THREADS}: $STEPS timed steps per phase after $WARMUP warm-up, batch $BATCH"

run_e() {
  RAYON_NUM_THREADS=$1 timed "$W/e-$1-$2.time" "$BIN" "$STEPS" "$BATCH" > "$W/e-$1-$2.out"
  run_tch "$W/x-$1-$2" "$1" "$STEPS" "$BATCH"
}
run_t() {
  OMP_WAIT_POLICY=PASSIVE timed "$W/t-$1-$2.time" \
    "$VENV/bin/python" benches/rgan/bench_torch.py "$1" "$STEPS" "$BATCH" > "$W/t-$1-$2.out"
}
interleave_eqlab_torch

# Per-step wall times come from each program's own timer around each phase's timed loop. CPU per
# step is per generator + discriminator step pair: torch measures it in-process
# (time.process_time); for eqlab it is the process's user+sys divided by all its step pairs
# (warm-up included), since the Rust side reports wall time only.
wall_ms() { grep -oE "[:,] $1 [0-9.]+ ms" "$2" | awk '{ print $3 }'; }
cpu_ms() { grep -oE "cpu $1 [0-9.]+ ms" "$2" | awk '{ print $3 }'; }
echo
echo "per Adam step, medians of $REPS: wall ms per generator (gen) and per discriminator (disc) step,"
echo "CPU ms per generator + discriminator step pair (g+d); ratio = eqlab / torch, below 1 means eqlab is faster:"
printf '%-8s | %13s %13s %7s | %13s %13s %7s | %13s %13s %7s\n' threads \
  "gen eqlab ms" "gen torch ms" ratio "disc eqlab ms" "disc torch ms" ratio \
  "g+d eqlab CPU" "g+d torch CPU" ratio
for t in $THREADS; do
  eg=() tg=() ed=() td=() ec=() tc=()
  for rep in $(seq 1 "$REPS"); do
    e=$W/e-$t-$rep p=$W/t-$t-$rep
    eg+=("$(wall_ms generator "$e.out")") tg+=("$(wall_ms generator "$p.out")")
    ed+=("$(wall_ms discriminator "$e.out")") td+=("$(wall_ms discriminator "$p.out")")
    ec+=("$(awk -v c="$(tfield "$e.time" cpu)" -v n=$((STEPS + WARMUP)) 'BEGIN { printf "%.3f", 1e3 * c / n }')")
    tc+=("$(awk -v a="$(cpu_ms generator "$p.out")" -v b="$(cpu_ms discriminator "$p.out")" 'BEGIN { print a + b }')")
  done
  a=$(median "${eg[@]}") b=$(median "${tg[@]}") c=$(median "${ed[@]}") d=$(median "${td[@]}")
  x=$(median "${ec[@]}") y=$(median "${tc[@]}")
  printf '%-8s | %13.1f %13.1f %7s | %13.1f %13.1f %7s | %13.1f %13.1f %7s\n' "$t" \
    "$a" "$b" "$(ratio "$a" "$b")" "$c" "$d" "$(ratio "$c" "$d")" "$x" "$y" "$(ratio "$x" "$y")"
done
if [ -n "$TCH_BIN" ]; then
  echo
  echo "eqlab on libtorch (device tch-cpu, same binary code, libtorch kernels), ratio = tch-cpu / torch:"
  printf '%-8s | %13s %13s %7s | %13s %13s %7s\n' threads \
    "gen tch ms" "gen torch ms" ratio "disc tch ms" "disc torch ms" ratio
  for t in $THREADS; do
    xg=() tg=() xd=() td=()
    for rep in $(seq 1 "$REPS"); do
      x=$W/x-$t-$rep p=$W/t-$t-$rep
      xg+=("$(wall_ms generator "$x.out")") tg+=("$(wall_ms generator "$p.out")")
      xd+=("$(wall_ms discriminator "$x.out")") td+=("$(wall_ms discriminator "$p.out")")
    done
    a=$(median "${xg[@]}") b=$(median "${tg[@]}") c=$(median "${xd[@]}") d=$(median "${td[@]}")
    printf '%-8s | %13.1f %13.1f %7s | %13.1f %13.1f %7s\n' "$t" \
      "$a" "$b" "$(ratio "$a" "$b")" "$c" "$d" "$(ratio "$c" "$d")"
  done
fi
echo
whole_process_table

if [ "${RSS:-1}" = 1 ]; then
  RSS_STEPS=${RSS_STEPS:-20}
  echo
  echo "== peak RSS of one rgan_train (case A, batch 256, 2 rounds x $RSS_STEPS steps per phase, 3000 test paths)"
  cargo build -q --release
  timed "$W/rss.time" target/release/eqlab --store "$W/rss-store" run pipelines/rgan.yaml \
    --only rgan_a --no-progress --set "params.rounds=2" --set "params.phase_steps=[$RSS_STEPS]" \
    > "$W/rss.out" 2>&1 || { cat "$W/rss.out"; exit 1; }
  echo "eqlab run --only rgan_a: peak RSS $(($(tfield "$W/rss.time" rss_kib) / 1024)) MiB, wall $(tfield "$W/rss.time" wall) s (goal for the whole pipeline: <= 2 GiB)"
fi
