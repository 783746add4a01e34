# Optional HTCondor profile (compose profile "condor"): a one-machine
# HTCondor pool (Debian trixie's minicondor) whose jobs are DP3 workers, kept
# between DP3_WORKERS_MIN and DP3_WORKERS_MAX by work_queue_factory -T condor.
# On a real cluster, run the same factory command on a submit node instead.
#   docker build -f deploy/docker/condor.Dockerfile -t dp3-condor .
# BASE: Debian trixie (bookworm has no HTCondor package). CCTOOLS_BASE: bookworm,
# whose cctools 9.9 is the dispatcher's: trixie's newer work_queue_factory
# refuses the 9.9 manager ("protocol version 0 ... not compatible with this
# factory protocol version 11"), so the factory and the worker it submits come
# from bookworm's package. A machine without a registry passes local bases
# (scripts/build-base-image.sh trixie, and bookworm).
ARG CCTOOLS_BASE=debian:bookworm-20251117-slim
ARG BASE=debian:trixie-20251117-slim
FROM ${CCTOOLS_BASE} AS cctools
RUN apt-get update \
    && apt-get install -y --no-install-recommends coop-computing-tools=9.9-2+b4 \
    && rm -rf /var/lib/apt/lists/*

FROM ${BASE}
# Workers render with the node's own Python and Pillow, as a cluster's would.
# libjsonparser1.1 and libopenmpi40: what bookworm's work_queue_factory links.
# Trixie versions move with its point releases; the tag above pins the snapshot.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends minicondor python3 python3-pil libjsonparser1.1 libopenmpi40 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 dp3 \
    && printf 'MOUNT_UNDER_SCRATCH =\n' > /etc/condor/config.d/99-dp3.conf
COPY --from=cctools /usr/bin/work_queue_factory /usr/bin/work_queue_worker /usr/local/bin/
COPY deploy/docker/condor-entrypoint.sh /usr/local/bin/dp3-condor-entrypoint
HEALTHCHECK --interval=30s --timeout=10s CMD ["condor_status", "-schedd"]
ENTRYPOINT ["/usr/local/bin/dp3-condor-entrypoint"]
