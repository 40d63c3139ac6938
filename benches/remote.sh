#!/usr/bin/env bash
# Remote-cache benchmark (`make bench-remote`): `eqlab push` / `eqlab pull` against `dvc push` /
# `dvc pull` of the same files to the same S3 server (moto on loopback, started here), in one
# interleaved run (the side that goes first alternates by repetition):
#  (a) the results of a SMALL-point sweep of a trivial stage: small Parquet objects (a table and
#      its metrics table per point) plus eqlab's records; DVC gets exactly the same object files;
#  (b) one stage whose table is a BIG_MB MiB Parquet object.
# The server's line rate for (b) is boto3, the standard Python client, moving the same file:
# upload by its TransferManager (multipart, 10 threads), download by the faster of the
# TransferManager (ranged GETs) and one streamed GET; timed inside Python (the transfer only;
# eqlab's times are its whole process). Every transfer goes into an
# empty prefix (push) or an empty local store / cache (pull). Wall and CPU time and peak RSS of
# the whole process are reported, medians over REPS; the machine and its load are printed.
# dvc, dvc-s3, boto3 and moto go into .venv-bench on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
ROOT=$PWD
REPS=${REPS:-3}
SMALL=${SMALL:-1000}
BIG_MB=${BIG_MB:-1024}
CASES=${CASES:-a b} # which of (a) and (b) to run
CARGO=${CARGO:-cargo}

PY=$ROOT/.venv-bench/bin/python
if ! "$PY" -c 'import boto3, moto, dvc_s3' 2>/dev/null; then
  echo "== setting up .venv-bench (dvc, dvc-s3, boto3, moto)"
  python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q dvc dvc-s3 boto3 'moto[server]'
fi
DVC=$ROOT/.venv-bench/bin/dvc

echo "== building eqlab (release)"
$CARGO build --release --quiet --bins
EQLAB=$ROOT/target/release/eqlab

W=$(mktemp -d)
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ROOT/.venv-bench/bin/moto_server" -H 127.0.0.1 -p "$PORT" > "$W/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true; rm -rf "$W"' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
  AWS_REGION=us-east-1
for _ in $(seq 1 100); do
  "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
  sleep 0.2
done
"$PY" -c "import boto3; boto3.client('s3').create_bucket(Bucket='bench')"
machine_summary
echo "eqlab $("$EQLAB" --version | cut -d' ' -f2) (release); dvc $("$DVC" --version); moto on 127.0.0.1:$PORT (in memory)"

# ------------------------------------------------------------------ data
mkdir -p "$W/a" "$W/b"
cat > "$W/a/p.yaml" <<EOF
name: small
stages:
  g:
    kind: generate
    with: {rows: 100, offset: "\${sweep.o}"}
    sweep: {grid: {o: {range: {start: 0, stop: 1, num: $SMALL}}}}
EOF
ROWS=$((BIG_MB * 1048576 / 12)) # generate's Parquet takes about 12 bytes a row
cat > "$W/b/p.yaml" <<EOF
name: big
stages:
  big:
    kind: generate
    with: {rows: $ROWS}
EOF
echo "== computing the data (not timed)"
for c in $CASES; do
  (cd "$W/$c" && "$EQLAB" --store src run p.yaml --no-progress > /dev/null 2>&1)
  # DVC gets the same object files, as a tracked directory.
  mkdir -p "$W/$c/dvc/data"
  cp "$W/$c"/src/objects/* "$W/$c/dvc/data/"
  (cd "$W/$c/dvc" && "$DVC" init --no-scm -q && "$DVC" add -q data)
  echo "   ($c) $(ls "$W/$c/src/objects" | wc -l) objects, $(du -sm "$W/$c/src/objects" | cut -f1) MB"
done

# ------------------------------------------------------------------ runs
# Each run gets a fresh prefix; `timed` (lib.sh) writes wall/CPU/RSS of the whole process.
push_eq() { # CASE REP
  (cd "$W/$1" && timed "$W/push-eq-$1-$2.time" "$EQLAB" --store src --remote "s3://bench/eq-$1-$2" \
    push p.yaml --no-progress > /dev/null)
}
pull_eq() {
  rm -rf "$W/$1/dst"
  (cd "$W/$1" && timed "$W/pull-eq-$1-$2.time" "$EQLAB" --store dst --remote "s3://bench/eq-$1-$2" \
    pull p.yaml --no-progress > /dev/null)
  cmp <(cd "$W/$1/src/objects" && cat ./*) <(cd "$W/$1/dst/objects" && cat ./*) ||
    { echo "eqlab pull brought different bytes" >&2; exit 1; }
}
push_dvc() {
  (cd "$W/$1/dvc" && "$DVC" remote add -f -d bench "s3://bench/dvc-$1-$2" -q &&
    "$DVC" remote modify bench endpointurl "$AWS_ENDPOINT_URL" &&
    timed "$W/push-dvc-$1-$2.time" "$DVC" push -q > /dev/null)
}
pull_dvc() {
  (cd "$W/$1/dvc" && rm -rf .dvc/cache data &&
    timed "$W/pull-dvc-$1-$2.time" "$DVC" pull -q > /dev/null)
  cmp <(cd "$W/$1/src/objects" && cat ./*) <(cd "$W/$1/dvc/data" && cat ./*) ||
    { echo "dvc pull brought different bytes" >&2; exit 1; }
}
line_rate() { # REP: boto3 upload and download of the big object, timed inside Python (no start-up)
  local f
  f=$(ls -S "$W/b/src/objects" | head -1)
  "$PY" - "$W/b/src/objects/$f" "raw-$1" "$W/raw-$1" > "$W/raw-$1.txt" <<'PYEOF'
import sys, time, boto3
src, key, dst = sys.argv[1:4]
c = boto3.client("s3")
t = time.perf_counter(); c.upload_file(src, "bench", key); up = time.perf_counter() - t
t = time.perf_counter(); c.download_file("bench", key, dst); ranged = time.perf_counter() - t
t = time.perf_counter()
with open(dst, "wb") as f:
    for chunk in c.get_object(Bucket="bench", Key=key)["Body"].iter_chunks(1 << 20):
        f.write(chunk)
single = time.perf_counter() - t
print(up, min(ranged, single))
PYEOF
  rm -f "$W/raw-$1"
}
echo "== $REPS interleaved repetitions"
for rep in $(seq "$REPS"); do
  for c in $CASES; do
    if [ $((rep % 2)) -eq 1 ]; then
      push_eq $c "$rep"; pull_eq $c "$rep"; push_dvc $c "$rep"; pull_dvc $c "$rep"
    else
      push_dvc $c "$rep"; pull_dvc $c "$rep"; push_eq $c "$rep"; pull_eq $c "$rep"
    fi
  done
  case " $CASES " in *" b "*) line_rate "$rep" ;; esac
  # moto keeps everything in memory: empty the bucket between repetitions.
  "$PY" -c "import boto3; b = boto3.resource('s3').Bucket('bench'); b.objects.all().delete()"
  echo "   repetition $rep done (load $(load_now))"
done

# ------------------------------------------------------------------ table
med() { # OP SIDE CASE FIELD: median over repetitions
  local vals=()
  for rep in $(seq "$REPS"); do vals+=("$(tfield "$W/$1-$2-$3-$rep.time" "$4")"); done
  median "${vals[@]}"
}
mx() {
  local vals=()
  for rep in $(seq "$REPS"); do vals+=("$(tfield "$W/$1-$2-$3-$rep.time" rss_kib)"); done
  max "${vals[@]}"
}
echo
printf '%-34s %9s %9s %9s | %9s %9s %9s | %7s %7s\n' case "eqlab s" "cpu s" "MiB" "dvc s" "cpu s" "MiB" "wall" "cpu"
for c in $CASES; do
  label=$([ $c = a ] && echo "(a) $SMALL points" || echo "(b) one $BIG_MB MiB object")
  for op in push pull; do
    ew=$(med $op eq $c wall); ec=$(med $op eq $c cpu); dw=$(med $op dvc $c wall); dc=$(med $op dvc $c cpu)
    printf '%-34s %9.2f %9.2f %9.0f | %9.2f %9.2f %9.0f | %7s %7s\n' "$label $op" "$ew" "$ec" \
      "$(($(mx $op eq $c) / 1024))" "$dw" "$dc" "$(($(mx $op dvc $c) / 1024))" "$(ratio "$ew" "$dw")" "$(ratio "$ec" "$dc")"
  done
done
raw_med() { # FIELD (1 upload, 2 download): median over repetitions
  local vals=()
  for rep in $(seq "$REPS"); do vals+=("$(cut -d' ' -f"$1" "$W/raw-$rep.txt")"); done
  median "${vals[@]}"
}
for op in push pull; do
  case " $CASES " in *" b "*) ;; *) break ;; esac
  rw=$(raw_med "$([ $op = push ] && echo 1 || echo 2)"); ew=$(med $op eq b wall)
  printf '%-34s %9.2f s (boto3, transfer only); eqlab (whole process) / line rate = %s\n' \
    "(b) line rate $op" "$rw" "$(ratio "$ew" "$rw")"
done
echo "ratios are eqlab / dvc (wall, CPU); goal: (a) <= 0.33, (b) eqlab <= 1.2 x line rate"
echo "load at end: $(load_now)"
