#!/usr/bin/env bash
# Install the Debian packages DP3 needs on this machine, only those missing.
# Debian bookworm, as root (or with sudo). Safe to run again.
set -euo pipefail

packages=(
  coop-computing-tools coop-computing-tools-dev  # Work Queue worker, factory, C library
  rabbitmq-server                                # the broker (normally already running)
  chromium                                       # the portal's browser test
  prometheus                                     # dashboards and alerts are tested against it
  libvips42                                      # pyvips, for the render benchmark
  docker-compose                                 # validates docker-compose.yml offline
  debootstrap                                    # the HTCondor test pool's chroot
)

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
