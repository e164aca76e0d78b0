#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests and for trying `regnet sweep launch
# --slurm` without a real cluster.
#   scripts/slurm-local.sh start    install slurm-wlm + munge if missing, write slurm.conf,
#                                   start munged, slurmctld, slurmd; wait until the node is idle
#   scripts/slurm-local.sh stop     stop the daemons
#   scripts/slurm-local.sh status   sinfo
# Needs root (apt and the daemons). The config goes to /etc/slurm/slurm.conf; state and logs
# to /var/spool/regnet-slurm and /var/log/regnet-slurm. Partition: `debug` (the default).
set -euo pipefail

state=/var/spool/regnet-slurm
logs=/var/log/regnet-slurm
conf=/etc/slurm/slurm.conf

die() { echo "slurm-local: $*" >&2; exit 1; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    return
  fi
  echo "slurm-local: installing slurm-wlm and munge (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q slurm-wlm munge >&2 \
    || { apt-get update -q >&2 && apt-get install -y -q slurm-wlm munge >&2; } \
    || die "cannot install slurm-wlm and munge"
}

write_conf() {
  local node cpus mem
  node=$(hostname -s)
  cpus=$(nproc)
  # Leave the OS some memory; SLURM refuses a node that reports less than configured.
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) * 9 / 10 ))
  mkdir -p /etc/slurm "$state/ctld" "$state/d" "$logs"
  cat > "$conf" <<EOF
# Written by regnet scripts/slurm-local.sh: a one-node cluster for tests.
ClusterName=regnet-local
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$logs/slurmctld.log
SlurmdLogFile=$logs/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
JobRequeue=1
KillWait=10
MinJobAge=3600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
}

start_munge() {
  if pgrep -x munged >/dev/null; then return; fi
  [ -s /etc/munge/munge.key ] || { mungekey --create >&2 || die "cannot create /etc/munge/munge.key"; }
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 0700 /etc/munge
  chmod 0400 /etc/munge/munge.key
  if id munge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged || die "munged did not start"
  else
    /usr/sbin/munged --force || die "munged did not start"
  fi
}

wait_idle() {
  local node i
  node=$(hostname -s)
  for i in $(seq 1 60); do
    if sinfo -h -n "$node" -o '%t' 2>/dev/null | grep -qx 'idle'; then
      echo "slurm-local: node $node idle" >&2
      return
    fi
    sleep 1
  done
  sinfo >&2 || true
  tail -n 20 "$logs/slurmctld.log" "$logs/slurmd.log" >&2 || true
  die "node $node did not become idle within 60 s"
}

start() {
  [ "$(id -u)" -eq 0 ] || die "needs root"
  install
  write_conf
  start_munge
  pgrep -x slurmctld >/dev/null || slurmctld -i || die "slurmctld did not start (see $logs/slurmctld.log)"
  pgrep -x slurmd >/dev/null || slurmd || die "slurmd did not start (see $logs/slurmd.log)"
  # A node left DOWN by an earlier run comes back on its own only after a restart.
  scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
  wait_idle
}

stop() {
  scancel --user=root >/dev/null 2>&1 || true
  pkill -x slurmd || true
  pkill -x slurmctld || true
  pkill -x munged || true
  echo "slurm-local: stopped" >&2
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo ;;
  *) die "usage: scripts/slurm-local.sh start|stop|status" ;;
esac
