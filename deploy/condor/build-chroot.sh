#!/bin/sh
# Build (once) a Debian trixie chroot holding a one-machine HTCondor pool
# (minicondor) whose execute node has Python and Pillow from Debian, as a
# cluster node would. Cached: a second run returns at once.
#
#   deploy/condor/build-chroot.sh [ROOT]     (default /var/cache/dp3-condor/root)
#
# Needs root and debootstrap; exits 3 if the Debian mirror cannot be reached.
set -eu
ROOT=${1:-${DP3_CONDOR_ROOT:-/var/cache/dp3-condor/root}}
MIRROR=${DP3_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -e "$ROOT/.dp3-ready" ]; then
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    echo "build-chroot: debootstrap is not installed" >&2
    exit 3
fi
if ! wget -q -T 10 -O /dev/null "$MIRROR/dists/trixie/Release" 2>/dev/null \
    && ! curl -fsS -m 10 -o /dev/null "$MIRROR/dists/trixie/Release" 2>/dev/null; then
    echo "build-chroot: cannot reach the Debian mirror $MIRROR" >&2
    exit 3
fi
rm -rf "$ROOT.partial"
mkdir -p "$(dirname "$ROOT")"
debootstrap --variant=minbase trixie "$ROOT.partial" "$MIRROR"
# The pool: minicondor (scheduler, collector, negotiator and execute node in
# one), plus what the render task needs on the execute node.
chroot "$ROOT.partial" /bin/sh -c '
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends minicondor python3 python3-pil procps
    apt-get clean
    id dp3 >/dev/null 2>&1 || useradd --create-home --uid 4242 dp3
'
# The sandbox has no mount namespaces for jobs; the chroot shares the host's
# network, so workers reach the manager on localhost.
cat > "$ROOT.partial/etc/condor/config.d/90-dp3.conf" <<'CONF'
MOUNT_UNDER_SCRATCH =
NETWORK_INTERFACE = 127.0.0.1
CONDOR_HOST = 127.0.0.1
START = TRUE
SUSPEND = FALSE
PREEMPT = FALSE
KILL = FALSE
NEGOTIATOR_INTERVAL = 2
SCHEDD_INTERVAL = 2
STARTER_UPDATE_INTERVAL = 2
CONF
touch "$ROOT.partial/.dp3-ready"
mv "$ROOT.partial" "$ROOT"
echo "build-chroot: ready at $ROOT"
