#!/bin/sh
# A one-machine HTCondor pool for DP3's Condor path: Debian trixie's minicondor
# in a debootstrap chroot (bookworm has no HTCondor), used by the dispatcher's
# `work_queue_factory -T condor` through host-side condor_* wrappers.
#
#   deploy/condor/pool.sh start SHARED_DIR BIN_DIR
#       build the chroot if needed (cached), mount /proc /sys /dev and
#       SHARED_DIR (the factory's scratch; same path inside) into it, start
#       condor_master, wait for a slot, and write condor_submit / condor_rm /
#       condor_q / condor_history wrappers into BIN_DIR: put BIN_DIR first on
#       the dispatcher's PATH.
#   deploy/condor/pool.sh stop
#       stop every process of the pool, unmount, clear the pool's spool,
#       logs and job history (the chroot itself stays cached).
#
# Jobs are submitted as the ordinary user dp3 (uid 4242): HTCondor refuses
# root. The chroot shares the host's network: workers reach the manager on
# 127.0.0.1. The execute node has Debian's python3 + python3-pil only, as a
# cluster node would; jobs run with PATH=/usr/bin:/bin.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=${DP3_CONDOR_ROOT:-/var/cache/dp3-condor/root}
STATE=${DP3_CONDOR_STATE:-/var/cache/dp3-condor/state}
JOB_USER=dp3
JOB_UID=4242  # fixed in build-chroot.sh; the host has no user of that name

in_root() { chroot "$ROOT" "$@"; }

mount_binds() {
    for fs in proc sys dev dev/pts dev/shm; do
        mkdir -p "$ROOT/$fs"
        mountpoint -q "$ROOT/$fs" || mount --bind "/$fs" "$ROOT/$fs"
    done
}

# The pool's job queue, history, logs and execute folders (minicondor keeps its
# queue in /var/spool/condor): cleared at start and stop, so no job of an
# earlier run (held for good once its folder is gone) is ever seen again.
clear_pool_state() {
    for var in SPOOL EXECUTE LOG; do
        dir=$(in_root condor_config_val "$var" 2>/dev/null || true)
        case "$dir" in
        /var/?*) rm -rf "${ROOT:?}$dir/"* ;;
        esac
    done
}

start() {
    shared=$1
    bindir=$2
    "$HERE/build-chroot.sh" "$ROOT"
    mkdir -p "$STATE" "$bindir" "$shared"
    clear_pool_state
    mount_binds
    mkdir -p "$ROOT$shared"
    chmod 1777 "$ROOT/tmp"  # HTCondor's FS authentication makes its proof file there
    mountpoint -q "$ROOT$shared" || mount --bind "$shared" "$ROOT$shared"
    echo "$shared" > "$STATE/shared"
    cp /etc/hosts "$ROOT/etc/hosts"  # this host's name resolves inside too
    in_root /bin/sh -c 'mkdir -p /var/log/condor /var/lib/condor/spool /var/lib/condor/execute /run/condor /var/lock/condor
        chown -R condor:condor /var/log/condor /var/lib/condor /run/condor /var/lock/condor 2>/dev/null || true
        chmod 1777 /var/lib/condor/execute || true
        condor_master'
    for tool in condor_submit condor_rm condor_q condor_history; do
        cat > "$bindir/$tool" <<WRAP
#!/bin/sh
# $tool inside the DP3 Condor chroot, as the user $JOB_USER, from the same folder.
# The job user must write its log in the factory's folder: hand over that one
# folder only, and only inside the shared scratch (never -R, never another path).
# And the factory's copy of the Work Queue password (pwfile, 0600), which each
# job takes as an input: on a real pool the dispatcher is the submitting user.
case "\$PWD" in
"$shared"/?*) chown $JOB_UID "\$PWD"; [ ! -f "\$PWD/pwfile" ] || [ -L "\$PWD/pwfile" ] || chown $JOB_UID "\$PWD/pwfile" ;;
esac
exec chroot "$ROOT" /usr/sbin/runuser -u $JOB_USER -- /usr/bin/env -i PATH=/usr/bin:/bin HOME=/home/$JOB_USER \\
    /bin/sh -c 'cd "\$1" && shift && exec $tool "\$@"' sh "\$PWD" "\$@"
WRAP
        chmod 755 "$bindir/$tool"
    done
    tries=0
    until in_root condor_status -af Name 2>/dev/null | grep -q .; do
        tries=$((tries + 1))
        if [ "$tries" -gt 120 ]; then
            echo "pool.sh: no execute slot after 60 s" >&2
            exit 1
        fi
        sleep 0.5
    done
    echo "pool.sh: pool up: $(in_root condor_status -af Name | tr '\n' ' ')"
}

pool_pids() {
    for proc in /proc/[0-9]*; do
        if [ "$(readlink "$proc/root" 2>/dev/null)" = "$ROOT" ]; then
            echo "${proc#/proc/}"
        fi
    done
}

stop() {
    if [ -d "$ROOT" ] && mountpoint -q "$ROOT/proc"; then
        in_root condor_off -fast -master >/dev/null 2>&1 || true
    fi
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ -z "$(pool_pids)" ] && break
        sleep 0.5
    done
    for pid in $(pool_pids); do kill -9 "$pid" 2>/dev/null || true; done
    if [ -f "$STATE/shared" ]; then
        shared=$(cat "$STATE/shared")
        mountpoint -q "$ROOT$shared" && umount "$ROOT$shared"
        dir="$ROOT$shared"  # the mount point and the empty folders made for it
        while [ "$dir" != "$ROOT/tmp" ] && [ "$dir" != "$ROOT" ] && rmdir "$dir" 2>/dev/null; do
            dir=$(dirname "$dir")
        done
        rm -f "$STATE/shared"
    fi
    for fs in dev/shm dev/pts dev sys proc; do
        mountpoint -q "$ROOT/$fs" && umount -l "$ROOT/$fs"
    done
    clear_pool_state
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) stop ;;
*) echo "usage: $0 start SHARED_DIR BIN_DIR | stop" >&2; exit 2 ;;
esac
