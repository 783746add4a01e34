#!/usr/bin/env bash
# Install the Debian packages DP3 needs on this machine, only those missing.
#   scripts/install-system.sh run    what `make up` needs
#   scripts/install-system.sh test   what `make test` needs (a superset)
# Debian bookworm, as root (or with sudo). Safe to run again.
set -euo pipefail

run_packages=(
  coop-computing-tools coop-computing-tools-dev  # Work Queue worker, factory, C library for the binding
  gcc libc6-dev zlib1g-dev libssl-dev            # build the Work Queue binding
  rabbitmq-server                                # the broker (normally already running)
  python3-venv                                   # .venv on a bare Debian python3
)
test_packages=(
  chromium                                       # the portal's browser test
  prometheus                                     # dashboards and alerts are tested against it
  libvips42                                      # pyvips, for the render benchmark
  docker.io docker-compose                       # the compose stack on a real engine (tests/compose)
  acl                                            # setfacl: the compose test's inbox, as the README prepares it
  debootstrap                                    # the HTCondor test pool's chroot; the images' local base
  caddy                                          # the portal over HTTPS (deploy/caddy), tested with a real proxy
  ntfs-3g                                        # a real NTFS store that refuses Windows-reserved names (EINVAL)
  iproute2 iptables                              # the field agent's slow-link test: ip netns, tc, cut links
)

case "${1:-test}" in
  run) packages=("${run_packages[@]}") ;;
  test) packages=("${run_packages[@]}" "${test_packages[@]}") ;;
  *) echo "usage: $0 run|test" >&2; exit 2 ;;
esac

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
