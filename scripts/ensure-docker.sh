#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine; start Debian's dockerd if it
# is installed but down (there may be no systemd to do it). Exits non-zero with
# the reason when no engine can run: the compose tests fail on that, they do not
# pass silently (DP3_SKIP_DOCKER=1 is the only way to leave them out).
set -euo pipefail
log=${DP3_DOCKERD_LOG:-/var/log/dp3-dockerd.log}

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "ensure-docker: dockerd is not installed: run 'apt-get install docker.io' (scripts/install-system.sh test)" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-docker: no Docker engine answers, and starting dockerd needs root" >&2
  exit 1
fi
started=""
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "starting dockerd (log: $log)"
  # setsid: the engine outlives the shell (and the test run) that started it.
  setsid dockerd >"$log" 2>&1 </dev/null &
  started=$!
fi
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && exit 0
  if [ -n "$started" ] && ! kill -0 "$started" 2>/dev/null; then
    break  # the engine we started exited: its log says why
  fi
  sleep 1
done
echo "ensure-docker: the Docker engine did not come up; the end of $log says why:" >&2
tail -n 15 "$log" >&2 || true
exit 1
