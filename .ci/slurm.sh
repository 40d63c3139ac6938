#!/usr/bin/env bash
# Configures and starts a one-node Slurm cluster on 127.0.0.1 (munge, slurmctld, slurmd) for the
# Slurm executor's tests (tests/slurm.rs), as root; the recipe is in scale-out.md §3. Idempotent:
# a cluster already up with this configuration is left alone; a changed configuration restarts
# the daemons. Fails loudly (exit 1, with the daemons' logs) when the node is not idle in time.
#
#   EQLAB_SLURM_MAX_ARRAY  MaxArraySize (default 5: the tests check that big sweeps are chunked)
#   EQLAB_SLURM_INSTALL=1  install slurm-wlm and munge with apt-get when missing
set -euo pipefail

MAX_ARRAY=${EQLAB_SLURM_MAX_ARRAY:-5}
CONF=/etc/slurm/slurm.conf
LOGDIR=/var/log/slurm

die() {
  echo "slurm.sh: $*" >&2
  for f in "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" /var/log/munge/munged.log; do
    [ -f "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (it writes /etc/slurm and starts the daemons)"
if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  if [ "${EQLAB_SLURM_INSTALL:-0}" = 1 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge) >/dev/null \
      || die "apt-get install slurm-wlm munge failed"
  else
    die "slurmctld/munged not found: apt-get install -y slurm-wlm munge (or set EQLAB_SLURM_INSTALL=1)"
  fi
fi

# --- munge: a 1024-byte key owned by munge, mode 400; `munged --force` (log-file ownership).
mkdir -p /etc/munge /var/log/munge /var/lib/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key /var/log/munge /var/lib/munge /run/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  munged --force || die "munged did not start"
  for _ in $(seq 1 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null 2>&1 || die "munge does not answer after starting munged"
fi

# --- slurm.conf (NodeName must equal `hostname -s`).
HOST=$(hostname -s)
CPUS=$(nproc)
MEM=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOGDIR"
NEW=$(cat <<EOF
# Written by eqlab's .ci/slurm.sh: a one-node cluster on 127.0.0.1 for tests.
ClusterName=eqlab-ci
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SlurmUser=root
SlurmdUser=root
ReturnToService=2
MaxArraySize=$MAX_ARRAY
MinJobAge=300
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
)

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$NEW" ] && running /run/slurmctld.pid && running /run/slurmd.pid; then
  echo "slurm.sh: cluster already configured and running"
else
  for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    if running "$pidfile"; then
      kill "$(cat "$pidfile")"
      for _ in $(seq 1 50); do running "$pidfile" || break; sleep 0.1; done
    fi
  done
  printf '%s\n' "$NEW" > "$CONF"
  slurmctld || die "slurmctld did not start"
  slurmd || die "slurmd did not start"
fi

# --- wait until the node is idle (resume it if an earlier run left it down or drained).
for i in $(seq 1 60); do
  state=$(sinfo -h -n "$HOST" -o '%t' 2>/dev/null | head -n1 || true)
  case "$state" in
    idle|mix|alloc) echo "slurm.sh: node $HOST is $state (MaxArraySize=$MAX_ARRAY)"; exit 0 ;;
    down*|drain*|drng*) [ $((i % 5)) = 0 ] && scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.5
done
die "node $HOST is not idle after 30 s (sinfo says '${state:-nothing}')"
