#!/usr/bin/env bash
# Science benchmark (`make bench-science`), eqlab's finance math against a numpy/scipy reference
# that solves the same problems with the same algorithms (see benches/README.md):
#  (a) the normalised power-cost ODE (c_q by Radau shooting + Brent, then Z_q, V_q) and the
#      turnover matching (lambda_q, beta_q) for q in {1.1, 1.5, 2}, with an accuracy check;
#  (b) the equilibrium simulation: PATHS paths x DAYS days x 4 cost models, SUBSTEPS substeps a
#      day, same statistics on both sides; eqlab also at PATHS/4 and PATHS/2 paths (scaling) and
#      its peak RSS.
# Repetitions are interleaved (eqlab and python alternate which goes first) and medians are
# reported, because the machine may be shared. numpy/scipy go into .venv-bench on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=${REPS:-3}
ODE_INNER=${ODE_INNER:-5}
PATHS=${PATHS:-10000}
SUBSTEPS=${SUBSTEPS:-10}
DAYS=${DAYS:-2520}
CARGO=${CARGO:-cargo}
export CARGO_TARGET_DIR=${SCIENCE_TARGET_DIR:-$ROOT/target/bench-science}
# All cores for eqlab (rayon) and default threading for numpy: no thread caps from the caller.
unset RAYON_NUM_THREADS OMP_NUM_THREADS OPENBLAS_NUM_THREADS MKL_NUM_THREADS

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
TIMEV=""
if [ -x /usr/bin/time ] && /usr/bin/time -v true >/dev/null 2>&1; then TIMEV=/usr/bin/time; fi

{
  echo "nproc=$(nproc)"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
} > "$W/machine.txt"

run_rs_ode() { "$BIN" ode --inner "$ODE_INNER" > "$W/ode-rs-$1.json"; }
run_py_ode() { "$PY" benches/science_ref.py ode > "$W/ode-py-$1.json"; }
run_rs_sim() {
  local args=(sim --paths "$PATHS" --substeps "$SUBSTEPS" --days "$DAYS")
  if [ -n "$TIMEV" ]; then
    "$TIMEV" -v -o "$W/timev-$1.txt" "$BIN" "${args[@]}" > "$W/sim-rs-$1.json"
  else
    "$BIN" "${args[@]}" > "$W/sim-rs-$1.json"
  fi
}
run_py_sim() {
  "$PY" benches/science_ref.py sim --paths "$PATHS" --substeps "$SUBSTEPS" --days "$DAYS" \
    > "$W/sim-py-$1.json"
}
run_rs_scale() {
  local p
  for p in $((PATHS / 4)) $((PATHS / 2)); do
    if [ -n "$TIMEV" ]; then
      "$TIMEV" -v -o "$W/cpu-scale-$p-$1.txt" \
        "$BIN" sim --paths "$p" --substeps "$SUBSTEPS" --days "$DAYS" > "$W/scale-$p-$1.json"
    else
      "$BIN" sim --paths "$p" --substeps "$SUBSTEPS" --days "$DAYS" > "$W/scale-$p-$1.json"
    fi
  done
}

echo "== $REPS interleaved repetitions (paths=$PATHS days=$DAYS substeps=$SUBSTEPS)"
for rep in $(seq 1 "$REPS"); do
  echo "-- repetition $rep/$REPS"
  if [ $((rep % 2)) -eq 1 ]; then
    run_rs_ode "$rep"; run_py_ode "$rep"
    run_rs_sim "$rep"; run_py_sim "$rep"; run_rs_scale "$rep"
  else
    run_py_ode "$rep"; run_rs_ode "$rep"
    run_rs_scale "$rep"; run_py_sim "$rep"; run_rs_sim "$rep"
  fi
done
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$W/machine.txt"

python3 benches/science_report.py "$W"
