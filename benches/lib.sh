# Helpers shared by benches/science.sh, train.sh and rgan.sh (sourced, bash).

# One line: date, nproc, load average now, CPU model.
machine_summary() {
  local cpu
  cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
  [ -n "$cpu" ] || cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
  echo "machine: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc=$(nproc), load average $(load_now)" \
    "(1/5/15 min), CPU: ${cpu:-$(uname -m)}"
}

load_now() { cut -d' ' -f1-3 /proc/loadavg; }

# Unsets the variables that pin thread counts or tune/debug a BLAS (this machine's environment
# may carry such overrides), so numpy, scipy and torch run with their own defaults, as their
# users' do. Prints what it unset. The eqlab sides are unaffected (they use none of these).
clean_reference_env() {
  local v removed=()
  for v in $(compgen -e); do
    case $v in
      OMP_* | KMP_* | GOMP_* | MKL_* | OPENBLAS_* | GOTO* | BLIS_* | NVPL_* | ARMPL_* | VECLIB_* | \
        NUMEXPR_* | *BLAS*)
        removed+=("$v=${!v}")
        unset "$v"
        ;;
    esac
  done
  if [ ${#removed[@]} -gt 0 ]; then
    echo "environment: unset for all runs (numpy/scipy/torch use their defaults): ${removed[*]}"
  else
    echo "environment: no thread-count or BLAS variables were set"
  fi
}

# timed OUT CMD...: runs CMD (its stdout and stderr go where the caller sends them) and writes
# "wall=S user=S sys=S rss_kib=K" for the whole process to OUT. Exit status is CMD's.
timed() {
  local out=$1
  shift
  if [ -x /usr/bin/time ] && [ "${BENCH_TIMER:-}" != python ]; then
    /usr/bin/time -o "$out" -f 'wall=%e user=%U sys=%S rss_kib=%M' "$@"
  else
    python3 -c '
import resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - t0
r = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(sys.argv[1], "w") as f:
    f.write(f"wall={wall:.3f} user={r.ru_utime:.3f} sys={r.ru_stime:.3f} rss_kib={r.ru_maxrss}\n")
sys.exit(rc)' "$out" "$@"
  fi
}

# tfield FILE KEY: one value from a timed() report; KEY cpu gives user+sys.
tfield() {
  if [ "$2" = cpu ]; then
    awk -v u="$(tfield "$1" user)" -v s="$(tfield "$1" sys)" 'BEGIN { printf "%.3f", u + s }'
  else
    grep -o "$2=[0-9.]*" "$1" | tail -1 | cut -d= -f2
  fi
}

# median X...; max X...; ratio A B (A/B, two decimals).
median() {
  printf '%s\n' "$@" | sort -g |
    awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
max() { printf '%s\n' "$@" | sort -g | tail -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# What the torch runs set, and why (printed by train.sh and rgan.sh).
TORCH_WAIT_NOTE="torch runs with OMP_WAIT_POLICY=PASSIVE: its OpenMP worker threads otherwise \
busy-wait between parallel regions, and on a loaded machine its 2-thread rows collapse 12-160x; \
passive waiting is what a user sharing a machine would set (rayon, on the eqlab side, spins only briefly before its idle threads sleep)"

# interleave_eqlab_torch: REPS repetitions over THREADS of the caller's run_e and run_t (each
# called as `run_x THREADS REP`), alternating which goes first by repetition and thread count.
interleave_eqlab_torch() {
  local rep t i
  for rep in $(seq 1 "$REPS"); do
    i=0
    for t in $THREADS; do
      if [ $(((rep + i) % 2)) -eq 1 ]; then run_e "$t" "$rep"; run_t "$t" "$rep"; else run_t "$t" "$rep"; run_e "$t" "$rep"; fi
      i=$((i + 1))
    done
    echo "-- repetition $rep/$REPS done, load $(load_now)"
  done
}

# whole_process_table: medians of the `timed` reports $W/{e,t}-THREADS-REP.time of
# interleave_eqlab_torch (wall, CPU, both ratios; peak RSS is the max), and the closing line.
whole_process_table() {
  local t rep a b c d ew tw ec tc er tr
  echo "whole processes (startup, torch import, warm-up and timed steps), medians of $REPS; peak RSS is the max:"
  printf '%-8s | %12s %12s %7s | %12s %12s %7s | %10s %10s\n' threads "eqlab wall s" "torch wall s" ratio \
    "eqlab CPU s" "torch CPU s" ratio "eqlab RSS" "torch RSS"
  for t in $THREADS; do
    ew=() tw=() ec=() tc=() er=() tr=()
    for rep in $(seq 1 "$REPS"); do
      ew+=("$(tfield "$W/e-$t-$rep.time" wall)") tw+=("$(tfield "$W/t-$t-$rep.time" wall)")
      ec+=("$(tfield "$W/e-$t-$rep.time" cpu)") tc+=("$(tfield "$W/t-$t-$rep.time" cpu)")
      er+=("$(tfield "$W/e-$t-$rep.time" rss_kib)") tr+=("$(tfield "$W/t-$t-$rep.time" rss_kib)")
    done
    a=$(median "${ew[@]}") b=$(median "${tw[@]}") c=$(median "${ec[@]}") d=$(median "${tc[@]}")
    printf '%-8s | %12.2f %12.2f %7s | %12.2f %12.2f %7s | %6d MiB %6d MiB\n' "$t" "$a" "$b" \
      "$(ratio "$a" "$b")" "$c" "$d" "$(ratio "$c" "$d")" \
      $(($(max "${er[@]}") / 1024)) $(($(max "${tr[@]}") / 1024))
  done
  echo "$(sed -n 's/^\(torch [^ ]*\).*/\1/p' "$W/t-${THREADS%% *}-1.out") (torch.set_num_threads = threads); eqlab burn-flex (RAYON_NUM_THREADS = threads); load average at end $(load_now)"
}

# The reference side's virtualenv: $VENV if set, else .venv-torch (torch 2.9.0, the one
# `make test-tch` creates) when it imports torch, else .venv-bench; numpy is added if missing,
# and a venv without torch gets torch 2.9.0 (a large download, once).
pick_torch_venv() {
  if [ -z "${VENV:-}" ]; then
    VENV=.venv-bench
    if [ -x .venv-torch/bin/python ] && .venv-torch/bin/python -c "import torch" 2>/dev/null; then
      VENV=.venv-torch
    fi
  fi
  if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "== setting up $VENV with torch (large download, once)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q numpy torch==2.9.0
  elif ! "$VENV/bin/python" -c "import numpy" 2>/dev/null; then
    "$VENV/bin/pip" install -q numpy
  fi
}

# tch_setup EXAMPLE: when .venv-torch holds torch 2.9.0 (`make test-tch`), builds EXAMPLE with the
# `tch` feature into target/tch (release, the Makefile's libtorch settings) and sets TCH_BIN and
# TCH_LIB (libtorch's directory, for LD_LIBRARY_PATH); otherwise leaves TCH_BIN empty and says why.
tch_setup() {
  TCH_BIN="" TCH_LIB=""
  if [ "${TCH:-1}" = 0 ]; then
    echo "== tch-cpu column skipped (TCH=0)"
    return
  fi
  local venv
  venv=$(cd .venv-torch 2>/dev/null && pwd) || true
  if [ -z "$venv" ] || ! "$venv/bin/python" -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.9.0")' 2>/dev/null; then
    echo "== tch-cpu column skipped: no .venv-torch with torch 2.9.0 (run \`make test-tch\` once to create it)"
    return
  fi
  TCH_LIB=$("$venv/bin/python" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  echo "== building the eqlab tch-cpu side (release, --features tch, target/tch)"
  VIRTUAL_ENV=$venv PATH=$venv/bin:$PATH LIBTORCH_USE_PYTORCH=1 \
    LD_LIBRARY_PATH=$TCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} CARGO_TARGET_DIR=target/tch \
    cargo build -q --release --features tch --example "$1"
  TCH_BIN=target/tch/release/examples/$1
}

# run_tch OUT THREADS ARGS...: the tch-cpu build on THREADS threads (libtorch's intra-op pool and
# rayon's), timed into OUT.time, its output into OUT.out; nothing without a tch build.
run_tch() {
  local out=$1 t=$2
  shift 2
  [ -n "$TCH_BIN" ] || return 0
  EQLAB_DEVICE=tch-cpu OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t RAYON_NUM_THREADS=$t \
    LD_LIBRARY_PATH=$TCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    timed "$out.time" "$TCH_BIN" "$@" > "$out.out"
}
