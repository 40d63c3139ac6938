#!/usr/bin/env bash
# Engine benchmark (`make bench-engine`), all timed side by side in one run:
#  A. scaling in instances: a sweep of a trivial `generate` stage at SIZES instances (default
#     10^3 10^4 10^5), on an empty store and on a store populated with FILLER other records:
#     cold run, first no-op rerun (hashes every object once), warm no-op rerun, `plan`; wall,
#     CPU and peak memory, per instance;
#  B. 5 000 stages (STAGES; chains of 5): eqlab's warm no-op rerun and plan against Snakemake's
#     no-op and dry run and `dvc repro` / `dvc status` on equivalent workflows, and the floor:
#     the time to stat and read the records and stat the objects alone;
#  C. blake3 throughput of a 1 GiB file (`eqlab hash`, mmap + rayon).
# eqlab is the release build (what `cargo install` gives). DVC and Snakemake are installed from
# PyPI into .venv-bench on first use. Times come from /usr/bin/time (wall, user+sys, max RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES=${SIZES:-"1000 10000 100000"}
FILLER=${FILLER:-10000}
STAGES=${STAGES:-5000}
REPS=${REPS:-3}
echo "== building eqlab (release)"
# With --examples, as bench-train and bench-rgan build: one set of release artifacts for all benches.
cargo build --release --bins --examples --quiet
EQLAB=$ROOT/target/release/eqlab
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

if ! { [ -x .venv-bench/bin/dvc ] && [ -x .venv-bench/bin/snakemake ]; }; then
  echo "== setting up .venv-bench (dvc, snakemake)"
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q dvc snakemake
fi
DVC=$ROOT/.venv-bench/bin/dvc
SMK=$ROOT/.venv-bench/bin/snakemake

echo "machine: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)," \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
echo "eqlab $("$EQLAB" --version | cut -d' ' -f2) (release); $("$DVC" --version 2>/dev/null | sed 's/^/dvc /');" \
  "snakemake $("$SMK" --version 2>/dev/null)"

# timed LABEL DIR CMD...: runs CMD in DIR (output discarded) and appends
# "LABEL wall_s cpu_s rss_kib" to $W/times.
timed() {
  local label=$1 dir=$2
  shift 2
  local t0 t1
  t0=$EPOCHREALTIME # wall to the µs from bash itself; CPU and RSS from /usr/bin/time (10 ms)
  (cd "$dir" && /usr/bin/time -f "%U %S %M" -o "$W/t" "$@" >/dev/null 2>&1) || {
    echo "benchmark command failed: $*" >&2
    exit 1
  }
  t1=$EPOCHREALTIME
  read -r user sys rss < "$W/t"
  echo "$label $(awk -v a="$t0" -v b="$t1" -v u="$user" -v s="$sys" 'BEGIN{print b - a, u + s}') $rss" >> "$W/times"
}
# best LABEL: the smallest wall time recorded under LABEL, with its cpu and rss.
best() { awk -v l="$1" '$1==l' "$W/times" | sort -k2 -g | head -1; }

sweep() { # sweep NAME N OFFSET: a sweep of a trivial stage with N instances
  cat <<EOF
name: $1
stages:
  g:
    kind: generate
    with: {rows: 10, offset: "\${sweep.o}"}
    sweep: {grid: {o: {range: {start: $3, stop: $(($3 + 1)), num: $2}}}}
EOF
}

# ---------------------------------------------------------------- A. instances
echo "== A. a sweep of a trivial stage: sizes $SIZES; populated = $FILLER other records"
for kind in empty populated; do
  for n in $SIZES; do
    d=$W/a-$kind-$n
    mkdir -p "$d"
    sweep "s$n" "$n" 0 > "$d/p.yaml"
    if [ "$kind" = populated ]; then
      sweep filler "$FILLER" 1000 > "$d/filler.yaml"
      (cd "$d" && "$EQLAB" --store store run filler.yaml --no-progress >/dev/null 2>&1)
    fi
    timed "A/$kind/$n/cold" "$d" "$EQLAB" --store store run p.yaml --no-progress
    sleep 2.1 # past the stat cache's racy window, so that the next run can remember hashes
    timed "A/$kind/$n/first" "$d" "$EQLAB" --store store run p.yaml --no-progress
    for _ in $(seq "$REPS"); do
      timed "A/$kind/$n/noop" "$d" "$EQLAB" --store store run p.yaml --no-progress
      timed "A/$kind/$n/plan" "$d" "$EQLAB" --store store plan p.yaml
    done
    rm -rf "$d"
  done
done
{
  printf '%-10s %8s | %-22s | %-22s | %-22s | %-22s\n' store instances \
    "cold s (µs/inst) MiB" "1st no-op s (µs/inst)" "no-op s (µs/inst) MiB" "plan s (µs/inst) MiB"
  for kind in empty populated; do
    for n in $SIZES; do
      row=$(for s in cold first noop plan; do best "A/$kind/$n/$s"; done |
        awk -v n="$n" '{printf " | %7.2f (%6.1f) %5.0f", $2, $2 / n * 1e6, $4 / 1024}')
      printf '%-10s %8s%s\n' "$kind" "$n" "$row"
    done
  done
} | tee "$W/table-a"

# ---------------------------------------------------------------- B. 5 000 stages
chains=$((STAGES / 5))
echo "== B. $STAGES stages ($chains chains of 5), everything up to date"
mkdir -p "$W/eq" "$W/smk" "$W/dvc"
{
  echo "name: stages$STAGES"
  echo "stages:"
  for c in $(seq 0 $((chains - 1))); do for s in 0 1 2 3 4; do
    echo "  c${c}s${s}:"
    echo "    kind: generate"
    [ "$s" -gt 0 ] && echo "    needs: c${c}s$((s - 1))"
    echo "    with: {rows: 10, offset: $c.$s}"
  done; done
} > "$W/eq/p.yaml"
cat > "$W/smk/Snakefile" <<EOF
CHAINS = range($chains)
rule all:
    input: expand("out/c{c}_s{s}.txt", c=CHAINS, s=range(5))
rule first:
    output: "out/c{c}_s0.txt"
    shell: "echo {wildcards.c} > {output}"
rule next:
    input: lambda w: f"out/c{w.c}_s{int(w.s) - 1}.txt"
    output: "out/c{c}_s{s,[1-4]}.txt"
    shell: "cat {input} > {output}; echo {wildcards.s} >> {output}"
EOF
{
  echo "stages:"
  for c in $(seq 0 $((chains - 1))); do for s in 0 1 2 3 4; do
    echo "  c${c}s${s}:"
    if [ "$s" -gt 0 ]; then
      echo "    cmd: cat o/${c}_$((s - 1)) > o/${c}_${s}; echo $s >> o/${c}_${s}"
      echo "    deps: [o/${c}_$((s - 1))]"
    else
      echo "    cmd: mkdir -p o && echo $c > o/${c}_0"
    fi
    echo "    outs: [o/${c}_${s}]"
  done; done
} > "$W/dvc/dvc.yaml"
echo "   cold runs (not timed); DVC's outputs are written directly and recorded with dvc commit"
(cd "$W/eq" && "$EQLAB" --store store run p.yaml --no-progress >/dev/null 2>&1)
(cd "$W/smk" && "$SMK" --quiet -c1 all >/dev/null 2>&1)
mkdir -p "$W/dvc/o"
for c in $(seq 0 $((chains - 1))); do
  echo "$c" > "$W/dvc/o/${c}_0"
  for s in 1 2 3 4; do
    { cat "$W/dvc/o/${c}_$((s - 1))"; echo "$s"; } > "$W/dvc/o/${c}_${s}"
  done
done
(cd "$W/dvc" && "$DVC" init --no-scm -q && "$DVC" commit -f -q >/dev/null 2>&1)
(cd "$W/dvc" && "$DVC" status -q) || { echo "dvc: the committed workflow is not up to date" >&2; exit 1; }
sleep 2.1
(cd "$W/eq" && "$EQLAB" --store store run p.yaml --no-progress >/dev/null 2>&1) # warms the stat cache
cat > "$W/floor.py" <<'PY'
import os, sys, time
store = sys.argv[1]
t = time.perf_counter()
n = 0
for e in os.scandir(os.path.join(store, "records")):
    with open(e.path, "rb") as f:
        n += len(f.read())
for e in os.scandir(os.path.join(store, "objects")):
    os.stat(e.path)
print(time.perf_counter() - t)
PY
for i in $(seq "$REPS"); do
  # Alternate which tool goes first, so that a change in load hits all of them alike.
  if [ $((i % 2)) -eq 1 ]; then order="eq smk dvc"; else order="dvc smk eq"; fi
  for tool in $order; do
    case $tool in
      eq)
        timed B/eqlab-noop "$W/eq" "$EQLAB" --store store run p.yaml --no-progress
        timed B/eqlab-plan "$W/eq" "$EQLAB" --store store plan p.yaml
        echo "B/floor $(.venv-bench/bin/python "$W/floor.py" "$W/eq/store") 0 0" >> "$W/times" ;;
      smk)
        timed B/snakemake-noop "$W/smk" "$SMK" --quiet -c1 all
        timed B/snakemake-dry "$W/smk" "$SMK" --quiet -n -c1 all ;;
      dvc)
        timed B/dvc-repro "$W/dvc" "$DVC" repro -q
        timed B/dvc-status "$W/dvc" "$DVC" status -q ;;
    esac
  done
done
{
  eq=$(best B/eqlab-noop | cut -d' ' -f2)
  printf '%-24s %9s %9s %8s %12s\n' "$STAGES stages, no-op" "wall s" "cpu s" "MiB" "eqlab wall"
  for l in B/eqlab-noop B/eqlab-plan B/floor B/snakemake-noop B/snakemake-dry B/dvc-repro B/dvc-status; do
    best "$l" | awk -v eq="$eq" '{r = $2 / eq; printf "%-24s %9.3f %9.2f %8.0f %12s\n", substr($1, 3), $2, $3, $4 / 1024, (r >= 1 ? sprintf("1/%.1f", r) : sprintf("%.1fx", 1 / r))}'
  done
  echo "(floor: stat and read every record and stat every object, from Python, timed inside the script)"
} | tee "$W/table-b"

# ---------------------------------------------------------------- C. hashing
head -c 1073741824 /dev/urandom > "$W/big.bin"
"$EQLAB" hash "$W/big.bin" >/dev/null # warm the page cache
echo "== C. blake3 of a 1 GiB file on $(nproc) cores:"
"$EQLAB" hash "$W/big.bin" | sed 's/^/  /'
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
