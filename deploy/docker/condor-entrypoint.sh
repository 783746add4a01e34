#!/bin/sh
# Start the personal HTCondor pool, then keep DP3 workers running as Condor
# jobs (submitted as an ordinary user: HTCondor refuses root's jobs).
set -eu
condor_master
until condor_status -schedd >/dev/null 2>&1; do sleep 1; done
# The workers present the dispatcher's password. cctools 8.0's factory cannot
# query a manager that has a password, so it keeps DP3_WORKERS_MIN workers
# (docs/operations.md, "The condor profile's demand").
# The manager as positional host and port (cctools 9.9 has both forms, later ones only this).
exec su dp3 -c "exec work_queue_factory -T condor \
  --min-workers \"${DP3_WORKERS_MIN:-0}\" --max-workers \"${DP3_WORKERS_MAX:-16}\" \
  --workers-per-cycle 4 --timeout 900 --scratch-dir /tmp/dp3-factory \
  --password \"${DP3_WORK_QUEUE_PASSWORD_FILE:-/run/dp3/work-queue-password}\" \
  \"${DP3_MANAGER_HOST:-dispatcher}\" \"${DP3_WORK_QUEUE_PORT:-9123}\""
