#!/usr/bin/env bash
# Engine benchmark (`make bench-engine`):
#  1. a 50-stage synthetic pipeline, everything cached: eqlab's no-op rerun vs `dvc repro` on an
#     equivalent dvc.yaml, timed side by side in this run and reported as a ratio;
#  2. blake3 hashing throughput of a 1 GiB file (`eqlab hash`, mmap + rayon).
# DVC is installed from PyPI into .venv-bench on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
EQLAB=$ROOT/target/debug/eqlab
[ -x "$EQLAB" ] || cargo build --bins
REPS=${REPS:-10}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

if [ ! -x .venv-bench/bin/dvc ]; then
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q dvc
fi
DVC=$ROOT/.venv-bench/bin/dvc

# 50 stages: 10 independent chains of 5, each stage consuming its predecessor.
mkdir -p "$W/eq" "$W/dvc"
{
  echo "name: bench50"
  echo "stages:"
  for c in $(seq 0 9); do for s in $(seq 0 4); do
    echo "  c${c}s${s}:"
    echo "    kind: generate"
    [ "$s" -gt 0 ] && echo "    needs: c${c}s$((s-1))"
    echo "    with: {rows: 1000, offset: $c.$s}"
  done; done
} > "$W/eq/bench50.yaml"
cat > "$W/dvc/gen.py" <<'PY'
import random, sys
c, s, out = sys.argv[1], sys.argv[2], sys.argv[3]
rnd = random.Random(f"{c}-{s}")
prev = 0.0
if len(sys.argv) > 4:
    prev = sum(float(x) for x in open(sys.argv[4]).read().split()) / 1000
x = 0.0
with open(out, "w") as f:
    for _ in range(1000):
        x += rnd.gauss(0, 1)
        f.write(f"{x + prev + float(c + '.' + s)}\n")
PY
{
  echo "stages:"
  for c in $(seq 0 9); do for s in $(seq 0 4); do
    echo "  c${c}s${s}:"
    if [ "$s" -gt 0 ]; then
      echo "    cmd: python3 gen.py $c $s out_${c}_${s}.txt out_${c}_$((s-1)).txt"
      echo "    deps: [gen.py, out_${c}_$((s-1)).txt]"
    else
      echo "    cmd: python3 gen.py $c $s out_${c}_${s}.txt"
      echo "    deps: [gen.py]"
    fi
    echo "    outs: [out_${c}_${s}.txt]"
  done; done
} > "$W/dvc/dvc.yaml"

(cd "$W/eq" && "$EQLAB" --store store run bench50.yaml --no-progress >/dev/null 2>&1)
(cd "$W/dvc" && "$DVC" init --no-scm -q && "$DVC" repro -q >/dev/null 2>&1)

# Timestamps from bash itself ($EPOCHREALTIME), so no helper process is inside a timed interval.
eq_total=0; dvc_total=0
for i in $(seq 1 "$REPS"); do
  cd "$W/eq"; t0=$EPOCHREALTIME; "$EQLAB" --store store run bench50.yaml --no-progress >/dev/null 2>&1; t1=$EPOCHREALTIME
  cd "$W/dvc"; t2=$EPOCHREALTIME; "$DVC" repro -q >/dev/null 2>&1; t3=$EPOCHREALTIME
  eq_total=$(python3 -c "print($eq_total + $t1 - $t0)")
  dvc_total=$(python3 -c "print($dvc_total + $t3 - $t2)")
done
cd "$ROOT"
python3 - "$eq_total" "$dvc_total" "$REPS" <<'PY'
import sys
eq, dvc, n = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
print(f"no-op rerun of 50 cached stages ({n} reps, interleaved):")
print(f"  eqlab      {eq / n * 1000:8.1f} ms")
print(f"  dvc repro  {dvc / n * 1000:8.1f} ms")
print(f"  ratio eqlab/dvc = 1/{dvc / eq:.1f}  (goal: at most 1/20)")
PY

head -c 1073741824 /dev/urandom > "$W/big.bin"
"$EQLAB" hash "$W/big.bin" >/dev/null   # warm the page cache
echo "blake3 of a 1 GiB file on $(nproc) cores:"
"$EQLAB" hash "$W/big.bin" | sed 's/^/  /'
