#!/usr/bin/env bash
# A throw-away single-node SLURM cluster for tests (Debian/Ubuntu, run as root).
#
#   tests/slurm/cluster.sh start    install packages if missing, write config, start daemons
#   tests/slurm/cluster.sh status   print what runs and what this script started
#   tests/slurm/cluster.sh stop     stop only the daemons this script started
#   tests/slurm/cluster.sh purge    stop, then remove the files this script wrote
#
# Idempotent: `start` on a running cluster does nothing; `stop` without a state
# file does nothing.  Everything this script starts or writes is recorded in
# $TWOSTREAM_SLURM_DIR/state (default /var/lib/twostream-slurm/state); it never
# touches a slurm.conf or munge key it did not write, and never stops daemons it
# did not start.  Packages it installs are recorded but kept on stop (reinstalling
# them costs more than they weigh).
#
# No cgroups, no slurmdbd: proctrack/linuxproc, task/none, jobacct_gather/none.
# Without slurmdbd `sacct` does not work, so Snakemake must query job status with
# `squeue` (workflow/profiles/slurm: slurm-status-command: squeue), which needs
# finished jobs to stay visible: MinJobAge=300.
set -euo pipefail

DIR="${TWOSTREAM_SLURM_DIR:-/var/lib/twostream-slurm}"
STATE="$DIR/state"
CONF=/etc/slurm/slurm.conf  # the job-step plugin drops SLURM_CONF: the default path is required
KEY=/etc/munge/munge.key
MARK="# written by twostream tests/slurm/cluster.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)

log() { echo "cluster.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- state: KEY=value lines ---------------------------------------------------
state_get() { [[ -f $STATE ]] && sed -n "s/^$1=//p" "$STATE" | tail -1 || true; }
state_set() {
    mkdir -p "$DIR"
    touch "$STATE"
    sed -i "/^$1=/d" "$STATE"
    echo "$1=$2" >>"$STATE"
}
# ours NAME PID: PID runs and is NAME (a recorded pid may have been reused after a reboot)
ours() { [[ -n ${2:-} && "$(cat "/proc/$2/comm" 2>/dev/null)" == "$1" ]]; }

cluster_responds() { timeout 5 sinfo -h >/dev/null 2>&1; }
munge_works() { command -v munge >/dev/null && timeout 5 munge -n 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

install_packages() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
    state_set PACKAGES_INSTALLED "$(state_get PACKAGES_INSTALLED) ${missing[*]}"
}

write_config() {
    if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        die "$CONF exists and was not written by this script; not overwriting it"
    fi
    local host cpus mem_kb mem_mb
    host="$(hostname -s)"
    cpus="$(nproc)"
    mem_kb="$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    mem_mb=$((mem_kb / 1024 * 9 / 10))  # leave 10% for the system
    mkdir -p /etc/slurm "$DIR/ctld" "$DIR/d" "$DIR/log"
    cat >"$CONF.tmp" <<EOF
$MARK
ClusterName=twostream-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/d
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=300
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ -f $CONF ]] && cmp -s "$CONF.tmp" "$CONF"; then
        rm -f "$CONF.tmp"
    else
        mv "$CONF.tmp" "$CONF"
    fi
    [[ -n $(state_get WROTE_CONF) ]] || state_set WROTE_CONF "$CONF"
}

start_munge() {
    if munge_works; then return 0; fi
    if [[ ! -f $KEY ]]; then
        log "creating $KEY"
        mkdir -p /etc/munge
        if command -v mungekey >/dev/null; then mungekey --create --keyfile="$KEY"; else
            dd if=/dev/urandom bs=1 count=1024 of="$KEY" 2>/dev/null
        fi
        state_set WROTE_MUNGE_KEY "$KEY"
    fi
    chown munge:munge "$KEY" && chmod 0400 "$KEY"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    setsid setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged --foreground \
        >"$DIR/log/munged.out" 2>&1 </dev/null &
    state_set MUNGED_PID $!
    for _ in $(seq 50); do munge_works && return 0; sleep 0.2; done
    die "munged did not start (see $DIR/log/munged.out)"
}

start_daemon() {  # name binary
    local name=$1 pid
    pid="$(state_get "${name^^}_PID")"
    if ours "$name" "$pid"; then return 0; fi
    setsid "/usr/sbin/$name" -D -f "$CONF" >"$DIR/log/$name.out" 2>&1 </dev/null &
    state_set "${name^^}_PID" $!
}

wait_idle() {
    local host state
    host="$(hostname -s)"
    for _ in $(seq 120); do
        state="$(timeout 5 sinfo -h -n "$host" -o %T 2>/dev/null || true)"
        case $state in
        idle* | mixed* | allocated*) return 0 ;;
        down* | drain*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    die "node $host did not become idle (state '$state'; logs in $DIR/log)"
}

cmd_start() {
    [[ $(id -u) == 0 ]] || die "must run as root (installs packages, writes $CONF)"
    if [[ -f $CONF ]] && ! grep -qF "$MARK" "$CONF"; then
        command -v sinfo >/dev/null && cluster_responds ||
            die "$CONF was not written by this script and its cluster does not respond"
        log "using the running SLURM cluster of $CONF (not started by this script)"
        return 0
    fi
    install_packages
    write_config
    start_munge
    start_daemon slurmctld
    for _ in $(seq 60); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.5; done
    start_daemon slurmd
    wait_idle
    log "cluster up: $(sinfo -h -o '%P %D %c CPUs %m MB %T' | tr '\n' ' ')"
}

cmd_stop() {
    [[ -f $STATE ]] || { log "nothing started by this script"; return 0; }
    local name pid
    for name in SLURMD SLURMCTLD MUNGED; do
        pid="$(state_get ${name}_PID)"
        if ours "${name,,}" "$pid"; then
            kill "$pid"
            for _ in $(seq 50); do ours "${name,,}" "$pid" || break; sleep 0.1; done
            ours "${name,,}" "$pid" && kill -9 "$pid"
            log "stopped ${name,,} ($pid)"
        fi
        sed -i "/^${name}_PID=/d" "$STATE"
    done
}

cmd_purge() {
    cmd_stop
    local f
    f="$(state_get WROTE_CONF)"
    [[ -n $f && -f $f ]] && grep -qF "$MARK" "$f" && rm -f "$f" && log "removed $f"
    f="$(state_get WROTE_MUNGE_KEY)"
    [[ -n $f && -f $f ]] && rm -f "$f" && log "removed $f"
    local pkgs
    pkgs="$(state_get PACKAGES_INSTALLED)"
    [[ -n ${pkgs// /} ]] && log "packages installed by this script (kept):$pkgs"
    rm -rf "$DIR"
}

cmd_status() {
    local name pid
    for name in MUNGED SLURMCTLD SLURMD; do
        pid="$(state_get ${name}_PID)"
        if ours "${name,,}" "$pid"; then echo "${name,,}: running ($pid, started by this script)"; else echo "${name,,}: not started by this script"; fi
    done
    echo "config: $(state_get WROTE_CONF || true)"
    echo "packages installed by this script:$(state_get PACKAGES_INSTALLED)"
    if command -v sinfo >/dev/null && cluster_responds; then sinfo; else
        echo "cluster: not responding"
        return 1
    fi
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
purge) cmd_purge ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|status|purge" >&2
    exit 2
    ;;
esac
