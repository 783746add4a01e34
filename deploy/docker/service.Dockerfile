# The image of each DP3 service that needs no compiler: scanner, archiver,
# portal and intake (the dispatcher, which compiles its Work Queue binding,
# has services/dispatcher/Dockerfile). Build from the repository root:
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=scanner -t dp3-scanner .
# BASE is the pinned public image; a machine without a registry passes a local
# one (scripts/build-base-image.sh). PIP_NO_INDEX=1 installs only from the
# wheelhouse deploy/docker/wheels (scripts/build-wheelhouse.sh).
ARG BASE=python:3.11.11-slim-bookworm
FROM ${BASE} AS build
ARG SERVICE
ARG PIP_NO_INDEX=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=/wheels
WORKDIR /src
COPY deploy/docker/wheels /wheels
COPY constraints.txt ./
COPY libs/dp3 libs/dp3
COPY services/${SERVICE} services/${SERVICE}
RUN test -n "${SERVICE}" \
    && python3 -m venv /opt/dp3 \
    && /opt/dp3/bin/pip install -c constraints.txt ./libs/dp3 "./services/${SERVICE}"

# The venv alone: no wheelhouse, no sources, no pip cache in the image.
FROM ${BASE}
ARG SERVICE
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/dp3/bin:$PATH
COPY --from=build /opt/dp3 /opt/dp3
# Every folder a volume is mounted on exists here, owned by the service's user:
# Docker gives a fresh named volume the owner of its mount point. dp3-service
# is the service's own entry point (dp3-scanner, ...), the image's command.
RUN groupadd --system --gid 10001 dp3 \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/dp3 dp3 \
    && install -d -o 10001 -g 10001 /var/lib/dp3 /inbox /staging /stores /stores/archive-a /stores/archive-b /previews \
    && ln -s "dp3-${SERVICE}" /opt/dp3/bin/dp3-service \
    && test -x /opt/dp3/bin/dp3-service
WORKDIR /var/lib/dp3
USER 10001
CMD ["dp3-service"]
