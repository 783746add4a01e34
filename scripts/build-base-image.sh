#!/usr/bin/env bash
# A local stand-in for python:3.11.11-slim-bookworm, for machines that reach
# Debian's mirror but no image registry: debootstrap bookworm (minbase plus
# deploy/docker/base/packages.txt), then `docker import`. The tag is a hash of
# this script and the package list, so a second run finds the image and
# returns at once. Prints the tag on its last line; images take it as
#   docker build --build-arg BASE=<tag> ...
#   scripts/build-base-image.sh [SUITE]   bookworm (default), or trixie for the
#                                         condor profile (HTCondor is in trixie only)
# Needs root, debootstrap and a running engine (scripts/ensure-docker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:-bookworm}
mirror=${DP3_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages_file=deploy/docker/base/packages.txt
inputs_hash=$( (cat "$0" "$packages_file"; echo "$suite") | sha256sum | cut -c1-12)
tag="dp3-base:$suite-$inputs_hash"

if docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "build-base-image: debootstrap is not installed" >&2; exit 1; }
packages=$(grep -v '^#' "$packages_file" | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
root=$(mktemp -d /var/tmp/dp3-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "build-base-image: debootstrap $suite ($packages) into $root" >&2
debootstrap --variant=minbase --include="$packages" "$suite" "$root" "$mirror" >&2
# The same suites as Debian's own images, so apt in a Dockerfile finds the
# current security and point-release versions.
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# As in Debian's images: no caches, no documentation, no recommends.
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$root/etc/apt/apt.conf.d/90dp3"
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/*
tar -C "$root" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  --message "DP3 local base: debootstrap $suite minbase + $packages" - "$tag" >&2
echo "$tag"
