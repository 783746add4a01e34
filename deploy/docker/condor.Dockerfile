# Optional HTCondor profile (compose profile "condor"): a one-machine
# HTCondor pool (Debian trixie's minicondor) whose jobs are DP3 workers, kept
# between DP3_WORKERS_MIN and DP3_WORKERS_MAX by work_queue_factory -T condor.
# On a real cluster, run the same factory command on a submit node instead.
#   docker build -f deploy/docker/condor.Dockerfile -t dp3-condor .
# BASE: Debian trixie (bookworm has no HTCondor package); a machine without a
# registry passes a local one (scripts/build-base-image.sh trixie).
ARG BASE=debian:trixie-20251117-slim
FROM ${BASE}

# Workers render with the node's own Python and Pillow, as a cluster's would.
# Trixie versions move with its point releases; the tag above pins the snapshot.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends minicondor coop-computing-tools python3 python3-pil \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 dp3 \
    && printf 'MOUNT_UNDER_SCRATCH =\n' > /etc/condor/config.d/99-dp3.conf
COPY deploy/docker/condor-entrypoint.sh /usr/local/bin/dp3-condor-entrypoint
HEALTHCHECK --interval=30s --timeout=10s CMD ["condor_status", "-schedd"]
ENTRYPOINT ["/usr/local/bin/dp3-condor-entrypoint"]
