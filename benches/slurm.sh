#!/usr/bin/env bash
# Slurm executor benchmark (`make bench-slurm`), timed side by side in one run on the cluster
# that `sinfo` answers for (the one-node cluster of .ci/slurm.sh, or a real one):
#  sweep  N (200) cheap instances: an eqlab sweep of a trivial `generate` stage run with
#         `--executor slurm`, packed (PACK = 20 instances per array task, eqlab.toml's
#         [executor.slurm] pack) and unpacked (pack = 1), against Snakemake on Slurm running N
#         instances of a rule that writes a small file, and the fallback of N `sbatch --wait`;
#  chain  a 5-stage chain (a → b → c → d → e) with the same tools;
#  dry    planning and grouping a 10^3, 10^4, 10^5-instance sweep into job arrays without
#         submitting (`eqlab run --executor slurm --dry-run`): wall, CPU and peak RSS from
#         /usr/bin/time -v, with `eqlab plan` of the same sweep beside it.
# Wall time: from the start of the command to its exit (each tool exits after its last job
# finished and its output is there), from bash's $EPOCHREALTIME. Repetitions are interleaved
# (REPS, default 3; the order of the tools rotates by repetition); medians are reported, with
# per-instance overhead = (wall − pure compute) / instances and its ratio to Snakemake's. Pure
# compute is the same work run serially on this machine with no scheduler (eqlab's local
# executor with -j 1; the rule's shell command in a bash loop). Times are reported, never
# asserted. Every job the bench submits is named benchslurm… (eqlab's eqlab:benchslurm…), and
# only those are cancelled at exit.
#
# Knobs: REPS (3), N (200), PACK (20), CASES ("sweep chain dry"), TOOLS (all of
# "eqlab-pack eqlab-1 smk-slurm smk-slurm-fast smk-slurm-group smk-generic sbatch-wait"), DRY_SIZES
# ("1000 10000 100000"), RUN_TIMEOUT (1800 s per timed command), SMK_JOBS (N: jobs Snakemake
# keeps in flight), PROBE_TIMEOUT (90 s: how long the Snakemake Slurm plugin's default
# configuration may try before it is declared stuck), NICE (100000: sbatch --nice of every job,
# so that others' jobs go first), EQLAB (binary; default: the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=benches/lib.sh
. benches/lib.sh

REPS=${REPS:-3}
N=${N:-200}
PACK=${PACK:-20}
CASES=${CASES:-"sweep chain dry"}
TOOLS=${TOOLS:-"eqlab-pack eqlab-1 smk-slurm smk-slurm-fast smk-slurm-group smk-generic sbatch-wait"}
DRY_SIZES=${DRY_SIZES:-"1000 10000 100000"}
RUN_TIMEOUT=${RUN_TIMEOUT:-1800}
SMK_JOBS=${SMK_JOBS:-$N}
PROBE_TIMEOUT=${PROBE_TIMEOUT:-90}
# Every job of the bench is submitted with --nice=NICE, so that other users' jobs (a test suite
# sharing the cluster) start before the bench's queue of hundreds; 0 turns it off.
NICE=${NICE:-100000}
TAG=benchslurm # every job of this bench: benchslurm…, eqlab:benchslurm…
CHAIN=5
has() { case " $2 " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---------------------------------------------------------------- the cluster answers?
if ! command -v sinfo >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1; then
  echo "bench-slurm: Slurm's client commands (sinfo, sbatch) are not installed here;" \
    "for a one-node test cluster run: EQLAB_SLURM_INSTALL=1 bash .ci/slurm.sh" >&2
  exit 2
fi
if ! state=$(timeout 20 sinfo -h -o '%t' 2>&1) || [ -z "$state" ]; then
  echo "bench-slurm: sinfo does not answer (${state:-no output}); start the cluster" \
    "(bash .ci/slurm.sh) and rerun" >&2
  exit 2
fi
case "$state" in
  *idle* | *mix* | *alloc*) ;;
  *)
    echo "bench-slurm: no usable node (sinfo says: $(echo "$state" | tr '\n' ' ')); bash .ci/slurm.sh" \
      "resumes the test cluster's node" >&2
    exit 2
    ;;
esac
sconf() { scontrol show config 2>/dev/null | awk -F= -v k="$1" '{ gsub(/ /, "", $1) } $1 == k { sub(/^ */, "", $2); print $2 }'; }

# ---------------------------------------------------------------- tools
if [ -z "${EQLAB:-}" ]; then
  echo "== building eqlab (release)"
  cargo build --release --bin eqlab --quiet
  EQLAB=$ROOT/target/release/eqlab
fi
[ -x "$EQLAB" ] || { echo "bench-slurm: $EQLAB is not an executable" >&2; exit 2; }
EQLAB=$(realpath "$EQLAB") # the jobs run it from their own working directories
if ! .venv-bench/bin/python -c 'import snakemake, snakemake_executor_plugin_slurm, snakemake_executor_plugin_cluster_generic' 2>/dev/null; then
  echo "== setting up .venv-bench (snakemake and its slurm and cluster-generic executor plugins)"
  [ -x .venv-bench/bin/python ] || python3 -m venv .venv-bench
  .venv-bench/bin/pip install -q snakemake snakemake-executor-plugin-slurm snakemake-executor-plugin-cluster-generic
fi
SMK=$ROOT/.venv-bench/bin/snakemake
pyver() { .venv-bench/bin/python -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || echo '?'; }

W=$(mktemp -d /tmp/bench-slurm.XXXXXX)
CUR_PID="" # the timed command running now (its process group), if any
cleanup() {
  local ids
  # Each timed command runs under `timeout`, the leader of its own process group; Snakemake
  # ignores SIGTERM while jobs run (it waits for them), hence the KILL after a grace period.
  if [ -n "$CUR_PID" ]; then
    kill -TERM -- "-$CUR_PID" 2>/dev/null || kill -TERM "$CUR_PID" 2>/dev/null || true
    sleep 2
    kill -KILL -- "-$CUR_PID" 2>/dev/null || true
  fi
  ids=$(squeue -h -o '%A %j' 2>/dev/null | awk -v t="$TAG" 'index($2, t) == 1 || index($2, "eqlab:" t) == 1 { print $1 }' | sort -u)
  if [ -n "$ids" ]; then
    echo "bench-slurm: cancelling this bench's leftover jobs: $(echo "$ids" | tr '\n' ' ')" >&2
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null || true
  fi
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

machine_summary
echo "cluster: $(sinfo -h -o '%P %D node(s) %c CPUs/node %t' | head -3 | tr '\n' ';')" \
  "Slurm $(sinfo -V | cut -d' ' -f2); MaxArraySize=$(sconf MaxArraySize), MinJobAge=$(sconf MinJobAge)," \
  "SchedulerType=$(sconf SchedulerType), SchedulerParameters=$(sconf SchedulerParameters)," \
  "AccountingStorageType=$(sconf AccountingStorageType)"
echo "eqlab $("$EQLAB" --version | cut -d' ' -f2) ($EQLAB); snakemake $(pyver snakemake)," \
  "snakemake-executor-plugin-slurm $(pyver snakemake-executor-plugin-slurm)," \
  "snakemake-executor-plugin-cluster-generic $(pyver snakemake-executor-plugin-cluster-generic)"
foreign() { squeue -h -o '%j' 2>/dev/null | grep -vc -e "^$TAG" -e "^eqlab:$TAG" || true; }
echo "jobs of others in the queue now: $(foreign) (they share the node's CPUs: a busy queue slows every tool)"

# ---------------------------------------------------------------- workflows
eq_sweep() { # eq_sweep NAME N: a sweep of a trivial stage
  cat <<EOF
name: $1
stages:
  pts:
    kind: generate
    with: {rows: 10, offset: "\${sweep.o}"}
    sweep:
      grid:
        o: {range: {start: 0.0, stop: $(($2 - 1)).0, num: $2}}
EOF
}
eq_chain() {
  echo "name: $TAG-chain"
  echo "stages:"
  local prev="" s
  for s in a b c d e; do
    echo "  $s:"
    echo "    kind: generate"
    [ -n "$prev" ] && echo "    needs: $prev"
    echo "    with: {rows: 10, offset: 1.5}"
    prev=$s
  done
}
smk_sweep() {
  cat <<EOF
rule all:
    input: expand("out/{i}.txt", i=range($1))
rule one:
    output: "out/{i}.txt"
    shell: "echo {wildcards.i} > {output}"
EOF
}
smk_chain() {
  cat <<'EOF'
rule all:
    input: "out/e.txt"
rule a:
    output: "out/a.txt"
    shell: "echo a > {output}"
EOF
  local prev=a s
  for s in b c d e; do
    printf 'rule %s:\n    input: "out/%s.txt"\n    output: "out/%s.txt"\n    shell: "cat {input} > {output}; echo %s >> {output}"\n' \
      "$s" "$prev" "$s" "$s"
    prev=$s
  done
}
# The cluster-generic executor's status command: Snakemake passes the job id and wants
# running / success / failed. scontrol remembers a finished job for MinJobAge; squeue --states=all too.
cat > "$W/status.sh" <<'EOF'
#!/bin/sh
st=$(scontrol show job "$1" -o 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2)
[ -n "$st" ] || st=$(squeue -h -j "$1" --states=all -o '%T' 2>/dev/null | head -1)
case "$st" in
  COMPLETED) echo success ;;
  PENDING | RUNNING | CONFIGURING | COMPLETING | SUSPENDED | REQUEUED* | RESIZING | STAGE_OUT | SIGNALING) echo running ;;
  "") echo success ;; # forgotten (older than MinJobAge): Snakemake checks the outputs itself
  *) echo failed ;;
esac
EOF
chmod +x "$W/status.sh"

# ---------------------------------------------------------------- timing
# run_timed CASE TOOL REP DIR CMD...: runs CMD in DIR under RUN_TIMEOUT, output to DIR/out.log;
# appends "CASE TOOL REP wall_s foreign_jobs cpu_s" to $W/times (wall "fail" when it failed);
# cpu_s: user + sys of the command and the children it waited for (the submit side, not the jobs).
run_timed() {
  local c=$1 tool=$2 rep=$3 dir=$4 t0 t1 rc=0 fj wall cpu
  shift 4
  fj=$(foreign)
  t0=$EPOCHREALTIME
  (cd "$dir" && exec timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -o "$dir/cpu" -f '%U %S' "$@") > "$dir/out.log" 2>&1 &
  CUR_PID=$!
  wait "$CUR_PID" || rc=$?
  CUR_PID=""
  t1=$EPOCHREALTIME
  if [ "$rc" -ne 0 ]; then
    echo "   $c $tool rep $rep FAILED (exit $rc$([ "$rc" = 124 ] && echo ": timed out after ${RUN_TIMEOUT}s")); last lines of its output:" >&2
    tail -n 8 "$dir/out.log" | sed 's/^/     | /' >&2
    echo "$c $tool $rep fail $fj 0" >> "$W/times"
    return 0
  fi
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  cpu=$(awk 'NF == 2 && $1 ~ /^[0-9.]+$/ { printf "%.2f", $1 + $2 }' "$dir/cpu")
  echo "$c $tool $rep $wall $fj ${cpu:-0}" >> "$W/times"
  printf '   %-6s %-16s rep %d: %8.2f s wall, %6.2f s CPU on the submit side (jobs of others in the queue at start: %s)\n' \
    "$c" "$tool" "$rep" "$wall" "${cpu:-0}" "$fj"
}
# check_outputs CASE TOOL REP DIR: the run really produced its N (or 5) results.
check_outputs() {
  local c=$1 tool=$2 rep=$3 dir=$4 want got
  [ "$c" = sweep ] && want=$N || want=$CHAIN
  case $tool in
    eqlab*) got=$(grep -oE '[0-9]+ ran' "$dir/out.log" | tail -1 | cut -d' ' -f1) ;;
    *) got=$(find "$dir/out" -name '*.txt' 2>/dev/null | wc -l) ;;
  esac
  if [ "${got:-0}" != "$want" ]; then
    echo "   $c $tool rep $rep: produced ${got:-0} of $want results; its time is not counted" >&2
    sed -i "\$s/^\($c $tool $rep\) [^ ]*/\1 fail/" "$W/times"
  fi
}

# One run of TOOL on CASE (a fresh directory each time, so nothing is cached).
run_tool() {
  local c=$1 tool=$2 rep=$3 d=$W/run/$1-$2-$3
  rm -rf "$d"
  mkdir -p "$d/out"
  case $tool in
    eqlab-pack | eqlab-1)
      if [ "$c" = sweep ]; then eq_sweep "$TAG-sweep" "$N" > "$d/p.yaml"; else eq_chain > "$d/p.yaml"; fi
      printf '[executor.slurm]\npack = %s\nsbatch_flags = ["--nice=%s"]\n' \
        "$([ "$tool" = eqlab-pack ] && echo "$PACK" || echo 1)" "$NICE" > "$d/eqlab.toml"
      run_timed "$c" "$tool" "$rep" "$d" "$EQLAB" --store store run p.yaml --executor slurm --no-progress
      ;;
    smk-slurm | smk-slurm-fast | smk-slurm-group)
      if [ "$c" = sweep ]; then smk_sweep "$N" > "$d/Snakefile"; else smk_chain > "$d/Snakefile"; fi
      local more=()
      # The plugin first asks for job states 40 s after submitting, then every 40 s while jobs
      # finish (+10 s for each round in which none did, up to 180 s); -fast and -group: 1 s.
      [ "$tool" = smk-slurm ] || more+=(--slurm-init-seconds-before-status-checks 1)
      # Snakemake's packing: one job (one sbatch, one snakemake process) per PACK rule
      # instances. --cores 1: a group job asks for one CPU and runs its members one after the
      # other, as an eqlab array task does (without it Snakemake sums the members' cores, and
      # a job asking for PACK CPUs never starts on a smaller node: PartitionConfig).
      [ "$tool" = smk-slurm-group ] && more+=(--groups one=g --group-components "g=$PACK" --cores 1)
      # (--default-resources also sets Snakemake's standard mem_mb=1000 and disk_mb requests.)
      run_timed "$c" "$tool" "$rep" "$d" "$SMK" all --executor slurm -j "$SMK_JOBS" \
        --slurm-status-command squeue --slurm-jobname-prefix "$TAG" \
        --default-resources "slurm_extra='--nice=$NICE'" "${more[@]}"
      ;;
    smk-generic)
      if [ "$c" = sweep ]; then smk_sweep "$N" > "$d/Snakefile"; else smk_chain > "$d/Snakefile"; fi
      mkdir -p "$d/slurm"
      # Snakemake's default status interval (--seconds-between-status-checks 10).
      run_timed "$c" "$tool" "$rep" "$d" "$SMK" all --executor cluster-generic -j "$SMK_JOBS" \
        --cluster-generic-submit-cmd "sbatch --parsable --nice=$NICE --job-name=$TAG-generic --output=$d/slurm/%j.out" \
        --cluster-generic-status-cmd "$W/status.sh"
      ;;
    sbatch-wait)
      # The fallback the scale-out issue allows: one `sbatch --wait` per instance, all in flight
      # at once (the sweep), or one after the other (the chain).
      if [ "$c" = sweep ]; then
        cat > "$d/go.sh" <<EOF
pids=()
for i in \$(seq 0 $((N - 1))); do
  sbatch --wait --quiet --nice=$NICE --job-name=$TAG-wait --output=/dev/null --wrap "echo \$i > out/\$i.txt" &
  pids+=(\$!)
done
rc=0
for p in "\${pids[@]}"; do wait "\$p" || rc=1; done
exit \$rc
EOF
      else
        cat > "$d/go.sh" <<EOF
set -e
sbatch --wait --quiet --nice=$NICE --job-name=$TAG-wait --output=/dev/null --wrap "echo a > out/a.txt"
prev=a
for s in b c d e; do
  sbatch --wait --quiet --nice=$NICE --job-name=$TAG-wait --output=/dev/null --wrap "cat out/\$prev.txt > out/\$s.txt; echo \$s >> out/\$s.txt"
  prev=\$s
done
EOF
      fi
      run_timed "$c" "$tool" "$rep" "$d" bash go.sh
      ;;
    *)
      echo "bench-slurm: unknown tool '$tool' in TOOLS" >&2
      exit 2
      ;;
  esac
  check_outputs "$c" "$tool" "$rep" "$d"
  rm -rf "$d"
}

# Pure compute: the same work, serially, on this machine, no scheduler.
run_local() {
  local c=$1 rep=$2 d=$W/run/$1-local-$2
  rm -rf "$d"
  mkdir -p "$d/out"
  if [ "$c" = sweep ]; then eq_sweep "$TAG-sweep" "$N" > "$d/p.yaml"; else eq_chain > "$d/p.yaml"; fi
  run_timed "$c" eqlab-local "$rep" "$d" "$EQLAB" --store store run p.yaml -j 1 --no-progress
  if [ "$c" = sweep ]; then
    # shellcheck disable=SC2016
    printf 'for i in $(seq 0 %d); do bash -c "echo $i > out/$i.txt"; done\n' $((N - 1)) > "$d/go.sh"
  else
    # shellcheck disable=SC2016
    printf 'bash -c "echo a > out/a.txt"; p=a; for s in b c d e; do bash -c "cat out/$p.txt > out/$s.txt; echo $s >> out/$s.txt"; p=$s; done\n' > "$d/go.sh"
  fi
  run_timed "$c" shell-local "$rep" "$d" bash go.sh
  rm -rf "$d"
}
# A chain has one instance per stage: packing changes nothing there.
in_case() { [ "$1" = sweep ] || { [ "$2" != eqlab-1 ] && [ "$2" != smk-slurm-group ]; }; }

# ---------------------------------------------------------------- the Slurm plugin's default
# The plugin asks sacct for job states unless told otherwise. Without accounting sacct fails;
# try the default once on one job and say what happens.
SMK_DEFAULT_NOTE=""
if { has sweep "$CASES" || has chain "$CASES"; } && [[ " $TOOLS " == *" smk-slurm"* ]]; then
  echo "== probe: Snakemake's Slurm plugin with its default status command (one job, ${PROBE_TIMEOUT}s at most)"
  d=$W/probe
  mkdir -p "$d"
  smk_sweep 1 > "$d/Snakefile"
  rc=0
  # (Snakemake ignores SIGTERM while its job is out: timeout's KILL ends it, exit 137.)
  { (cd "$d" && exec timeout -k 5 "$PROBE_TIMEOUT" "$SMK" all --executor slurm -j 1 --verbose \
    --slurm-init-seconds-before-status-checks 5 --slurm-jobname-prefix "$TAG" \
    --default-resources "slurm_extra='--nice=$NICE'") > "$d/log" 2>&1 || rc=$?; } 2>/dev/null
  sacct_err=$(sacct -X --noheader -o JobIdRaw,State 2>&1 | head -1 || true)
  query_err=$(grep -m1 -o 'SLURM query command failed: .*' "$d/log" || true)
  if [ "$rc" = 0 ]; then
    SMK_DEFAULT_NOTE="the plugin's default status command worked here"
  else
    SMK_DEFAULT_NOTE="with its default status command (sacct, chosen because \`which sacct\` succeeds) the Slurm plugin did not finish one job in ${PROBE_TIMEOUT}s (exit $rc): its job ran, but every status query failed (${query_err:-no query error logged}; \`sacct\` says: \"$sacct_err\"), so it never learns that the job ended and polls forever; the rows below pass --slurm-status-command squeue"
  fi
  echo "   $SMK_DEFAULT_NOTE"
  ids=$(squeue -h -o '%A %j' | awk -v t="$TAG" 'index($2, t) == 1 { print $1 }')
  # shellcheck disable=SC2086
  [ -z "$ids" ] || scancel $ids
  rm -rf "$d"
fi

# ---------------------------------------------------------------- sweep and chain
: > "$W/times"
read -ra tools <<< "$TOOLS"
nt=${#tools[@]}
for rep in $(seq 1 "$REPS"); do
  for c in sweep chain; do
    has "$c" "$CASES" || continue
    echo "== $c, repetition $rep/$REPS ($([ "$c" = sweep ] && echo "$N instances" || echo "$CHAIN stages in a chain")), load $(load_now)"
    for k in $(seq 0 $((nt - 1))); do # rotate the order by repetition
      tool=${tools[$(((k + rep - 1) % nt))]}
      in_case "$c" "$tool" || continue
      run_tool "$c" "$tool" "$rep"
    done
    run_local "$c" "$rep"
  done
done

# ---------------------------------------------------------------- dry run at scale
DRY_NOTE=""
if has dry "$CASES"; then
  echo "== dry: plan and group a sweep into job arrays without submitting (sizes $DRY_SIZES)"
  has_dry=1
  "$EQLAB" run --help 2>/dev/null | grep -q -- '--dry-run' || has_dry=0
  if [ "$has_dry" = 0 ]; then
    DRY_NOTE="this eqlab ($EQLAB) has no \`run --dry-run\` yet: only \`eqlab plan\` is timed"
    echo "   $DRY_NOTE"
  fi
  for rep in $(seq 1 "$REPS"); do
    for n in $DRY_SIZES; do
      d=$W/dry-$n
      mkdir -p "$d"
      eq_sweep "$TAG-dry$n" "$n" > "$d/p.yaml"
      printf '[executor.slurm]\npack = %s\n' "$PACK" > "$d/eqlab.toml"
      modes="plan"
      [ "$has_dry" = 1 ] && modes="dry plan"
      for m in $modes; do
        rm -rf "$d/store"
        if [ "$m" = dry ]; then
          cmd=("$EQLAB" --store store run p.yaml --executor slurm --dry-run --no-progress)
        else
          cmd=("$EQLAB" --store store plan p.yaml)
        fi
        rc=0
        (cd "$d" && timeout -k 10 "$RUN_TIMEOUT" /usr/bin/time -v -o "$d/time" "${cmd[@]}") > "$d/out" 2>&1 || rc=$?
        if [ "$rc" != 0 ]; then
          echo "   dry $m $n rep $rep FAILED (exit $rc):" >&2
          tail -n 5 "$d/out" | sed 's/^/     | /' >&2
          continue
        fi
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }' "$d/time")
        cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { print s }' "$d/time")
        rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$d/time")
        echo "$m $n $rep $wall $cpu $rss" >> "$W/dry"
        line=""
        if [ "$m" = dry ]; then
          line=$(grep -m1 '^slurm: would submit' "$d/out" || true)
          [ -n "$line" ] || echo "   dry-run $n: no line 'slurm: would submit …' in its output" >&2
          echo "$line" > "$W/dryline-$n"
          wrote=$(find "$d/store" -type f ! -name lock 2>/dev/null | wc -l)
          [ "$wrote" = 0 ] || echo "   dry-run $n: it wrote $wrote files into the store" >&2
          leaked=$(squeue -h -o '%A %j' | awk -v t="eqlab:$TAG-dry$n" 'index($2, t) == 1 { print $1 }')
          if [ -n "$leaked" ]; then
            echo "   BROKEN: eqlab run --dry-run submitted jobs: $leaked (cancelled)" >&2
            # shellcheck disable=SC2086
            scancel $leaked
          fi
        fi
        printf '   %-4s %7d instances rep %d: %7.2f s wall, %7.2f s CPU, %6d MiB peak RSS  %s\n' \
          "$m" "$n" "$rep" "$wall" "$cpu" $((rss / 1024)) "$line"
      done
      rm -rf "$d"
    done
  done
fi

# ---------------------------------------------------------------- tables
vals() { awk -v c="$1" -v t="$2" -v f="$3" '$1 == c && $2 == t && $4 != "fail" { print $f }' "$W/times"; }
med() { # med CASE TOOL [FIELD]: median of the successful runs ("-" if none)
  local v
  v=$(vals "$1" "$2" "${3:-4}")
  # shellcheck disable=SC2086
  if [ -n "$v" ]; then median $v; else echo -; fi
}
nok() { vals "$1" "$2" 4 | wc -l; }
spread() { vals "$1" "$2" 4 | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR) printf "%.1f–%.1f", a, b; else print "-" }'; }
overhead() { # overhead CASE TOOL: (median wall − pure compute) / instances, in ms
  local c=$1 t=$2 m comp inst
  m=$(med "$c" "$t")
  [ "$m" != - ] || { echo -; return; }
  case $t in eqlab*) comp=$(med "$c" eqlab-local) ;; *) comp=$(med "$c" shell-local) ;; esac
  [ "$c" = sweep ] && inst=$N || inst=$CHAIN
  awk -v w="$m" -v p="$comp" -v n="$inst" 'BEGIN { if (p == "-") p = 0; printf "%.1f", (w - p) / n * 1000 }'
}
ratio3() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b <= 0) print "n/a"; else printf "%.3f", a / b }'; }
label() {
  case $1/$2 in
    sweep/eqlab-pack) echo "eqlab --executor slurm, pack=$PACK" ;;
    chain/eqlab-pack) echo "eqlab --executor slurm" ;;
    */eqlab-1) echo "eqlab --executor slurm, pack=1" ;;
    */smk-slurm) echo "snakemake slurm plugin (status 40 s, default)" ;;
    */smk-slurm-fast) echo "snakemake slurm plugin, status 1 s" ;;
    */smk-slurm-group) echo "snakemake slurm plugin, groups of $PACK, status 1 s" ;;
    */smk-generic) echo "snakemake cluster-generic (status 10 s, default)" ;;
    sweep/sbatch-wait) echo "sbatch --wait per job, all at once" ;;
    chain/sbatch-wait) echo "sbatch --wait per job, one after another" ;;
    */eqlab-local) echo "pure compute: eqlab run -j 1 (local)" ;;
    */shell-local) echo "pure compute: the rules' commands, bash loop" ;;
  esac
}
if has sweep "$CASES" || has chain "$CASES"; then
  echo
  echo "== results: medians of $REPS interleaved repetitions; overhead = (wall − pure compute) / instances;"
  echo "   submit CPU: user + sys of the submitting command (eqlab run, snakemake, the sbatch processes), not the jobs';"
  echo "   vs smk: overhead / that of the Snakemake Slurm plugin at its defaults; vs best smk: / the lowest Snakemake overhead"
  fmt='%-6s | %-50s | %8s | %11s | %10s | %13s | %7s | %11s\n'
  # shellcheck disable=SC2059
  printf "$fmt" case tool "wall s" "min–max s" "submit CPU" "overhead ms/i" "vs smk" "vs best smk"
  goal=""
  for c in sweep chain; do
    has "$c" "$CASES" || continue
    ref=$(overhead "$c" smk-slurm)
    best=- bt=""
    for t in smk-slurm smk-slurm-fast smk-slurm-group smk-generic; do
      has "$t" "$TOOLS" && in_case "$c" "$t" || continue
      o=$(overhead "$c" "$t")
      [ "$o" != - ] || continue
      if [ "$best" = - ] || awk -v a="$o" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$o bt=$t; fi
    done
    for t in "${tools[@]}" eqlab-local shell-local; do
      in_case "$c" "$t" || continue
      m=$(med "$c" "$t")
      k=$(nok "$c" "$t")
      if [ "$m" = - ]; then
        # shellcheck disable=SC2059
        printf "$fmt" "$c" "$(label "$c" "$t")" failed - - - - -
        continue
      fi
      case $t in
        *-local) o=- r1=- r2=- ;;
        *) o=$(overhead "$c" "$t") r1=$(ratio3 "$o" "$ref") r2=$(ratio3 "$o" "$best") ;;
      esac
      # shellcheck disable=SC2059
      printf "$fmt" "$c" "$(label "$c" "$t")$([ "$k" -lt "$REPS" ] && echo " ($k/$REPS ok)")" "$(printf '%.2f' "$m")" \
        "$(spread "$c" "$t")" "$(printf '%.2f' "$(med "$c" "$t" 6)")" "$o" "$r1" "$r2"
    done
    if [ "$best" != - ] && has eqlab-pack "$TOOLS"; then
      e=$(overhead "$c" eqlab-pack)
      goal+="   $c: $(label "$c" eqlab-pack): $e ms/instance; Snakemake's lowest ($(label "$c" "$bt")): $best ms; ratio $(ratio3 "$e" "$best")"
      goal+=$'\n'
    fi
  done
  echo "jobs of others in the queue at the start of a run: at most $(awk 'BEGIN { m = 0 } $5 > m { m = $5 } END { print m }' "$W/times")"
  if [ -n "$goal" ]; then
    echo "goal: eqlab's per-instance overhead ≤ 1/5 (0.2) of Snakemake's on Slurm:"
    printf '%s' "$goal"
  fi
  [ -z "$SMK_DEFAULT_NOTE" ] || echo "snakemake slurm plugin at its defaults: $SMK_DEFAULT_NOTE"
fi
if has dry "$CASES" && [ -s "$W/dry" ]; then
  echo
  echo "== dry: medians of $REPS (peak RSS: max); pack=$PACK, MaxArraySize=$(sconf MaxArraySize)"
  printf '%-32s | %10s | %9s | %9s | %10s | %13s\n' command instances "wall s" "CPU s" "peak MiB" "µs/instance"
  for m in dry plan; do
    for n in $DRY_SIZES; do
      rows=$(awk -v m="$m" -v n="$n" '$1 == m && $2 == n' "$W/dry")
      [ -n "$rows" ] || continue
      # shellcheck disable=SC2046
      wm=$(median $(echo "$rows" | cut -d' ' -f4))
      # shellcheck disable=SC2046
      cm=$(median $(echo "$rows" | cut -d' ' -f5))
      # shellcheck disable=SC2046
      rm_=$(max $(echo "$rows" | cut -d' ' -f6))
      printf '%-32s | %10d | %9.2f | %9.2f | %10d | %13.1f\n' \
        "$([ "$m" = dry ] && echo "run --executor slurm --dry-run" || echo "plan")" "$n" "$wm" "$cm" $((rm_ / 1024)) \
        "$(awk -v w="$wm" -v n="$n" 'BEGIN { print w / n * 1e6 }')"
    done
  done
  for n in $DRY_SIZES; do
    [ ! -s "$W/dryline-$n" ] || echo "   $n: $(cat "$W/dryline-$n")"
  done
fi
[ -z "$DRY_NOTE" ] || echo "note: $DRY_NOTE"
echo "load at the end: $(load_now)"
