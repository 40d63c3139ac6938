#!/usr/bin/env bash
# Science benchmark (`make bench-science`), eqlab's finance math against a numpy/scipy reference
# that solves the same problems with the same algorithms (see benches/README.md):
#  (a) the normalised power-cost ODE (c_q by Radau shooting + Brent, then Z_q, V_q) and the
#      turnover matching (lambda_q, beta_q) for q in {1.1, 1.5, 2}, with an accuracy check;
#  (b) the equilibrium simulation: PATHS paths x DAYS days x 4 cost models, SUBSTEPS substeps a
#      day, same statistics on both sides; eqlab also at PATHS/4 and PATHS/2 paths (scaling) and
#      its peak RSS.
# Repetitions are interleaved (eqlab and python alternate which goes first) and medians are
# reported, because the machine may be shared. Each run's whole process is timed too (wall and
# user+sys CPU); wall and CPU ratios, the machine and its load at start and end are printed.
# numpy/scipy go into .venv-bench on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
ROOT=$PWD
REPS=${REPS:-3}
ODE_INNER=${ODE_INNER:-5}
PATHS=${PATHS:-10000}
SUBSTEPS=${SUBSTEPS:-10}
DAYS=${DAYS:-2520}
CARGO=${CARGO:-cargo}
export CARGO_TARGET_DIR=${SCIENCE_TARGET_DIR:-$ROOT/target/bench-science}

PY=$ROOT/.venv-bench/bin/python
if ! { [ -x "$PY" ] && "$PY" -c 'import numpy, scipy' 2>/dev/null; }; then
  echo "== setting up .venv-bench (numpy, scipy)"
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q numpy scipy
fi

echo "== building the eqlab bench binary (release) into $CARGO_TARGET_DIR"
$CARGO build --release --quiet --manifest-path benches/science/Cargo.toml
BIN=$CARGO_TARGET_DIR/release/eqlab-science-bench

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
machine_summary
# All cores for eqlab (rayon) and default threading for numpy/scipy: no caps or BLAS overrides.
unset RAYON_NUM_THREADS
clean_reference_env
{
  echo "nproc=$(nproc)"
  echo "load_start=$(load_now)"
} > "$W/machine.txt"

# Each run: its JSON on stdout, its whole-process wall/CPU/peak RSS (lib.sh `timed`) in *.time.
run_rs_ode() { timed "$W/ode-rs-$1.time" "$BIN" ode --inner "$ODE_INNER" > "$W/ode-rs-$1.json"; }
run_py_ode() { timed "$W/ode-py-$1.time" "$PY" benches/science_ref.py ode > "$W/ode-py-$1.json"; }
SIM=(--paths "$PATHS" --substeps "$SUBSTEPS" --days "$DAYS")
# eqlab's sim reports wall times only; its setup's CPU time, to take off its process's CPU time,
# comes from a run that does the same setup and almost no simulation (1 path, 2 days).
run_rs_sim() {
  timed "$W/sim-rs-$1.time" "$BIN" sim "${SIM[@]}" > "$W/sim-rs-$1.json"
  # One thread: the per-CPU-second comparison (two vCPUs may share one physical core).
  timed "$W/sim1-rs-$1.time" env RAYON_NUM_THREADS=1 "$BIN" sim "${SIM[@]}" > /dev/null
  timed "$W/setup-rs-$1.time" "$BIN" sim --paths 1 --days 2 --max-lag 1 --substeps "$SUBSTEPS" > /dev/null
}
run_py_sim() {
  timed "$W/sim-py-$1.time" "$PY" benches/science_ref.py sim "${SIM[@]}" > "$W/sim-py-$1.json"
}
run_rs_scale() {
  local p
  for p in $((PATHS / 4)) $((PATHS / 2)); do
    timed "$W/scale-$p-$1.time" \
      "$BIN" sim --paths "$p" --substeps "$SUBSTEPS" --days "$DAYS" > "$W/scale-$p-$1.json"
  done
}

echo "== $REPS interleaved repetitions (paths=$PATHS days=$DAYS substeps=$SUBSTEPS)"
for rep in $(seq 1 "$REPS"); do
  if [ $((rep % 2)) -eq 1 ]; then
    run_rs_ode "$rep"; run_py_ode "$rep"
    run_rs_sim "$rep"; run_py_sim "$rep"; run_rs_scale "$rep"
  else
    run_py_ode "$rep"; run_rs_ode "$rep"
    run_rs_scale "$rep"; run_py_sim "$rep"; run_rs_sim "$rep"
  fi
  echo "-- repetition $rep/$REPS done, load $(load_now)"
done
echo "load_end=$(load_now)" >> "$W/machine.txt"

python3 benches/science_report.py "$W"
