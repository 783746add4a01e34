# Stand-in for mongo:7.0.16 where no registry is reachable: the embedded
# MongoDB-wire server the portal uses on one machine (nx-27017, the
# portal's own dependency), serving /data/db. It is not MongoDB: it has no
# authentication and answers only the part of the query language the portal's
# catalog keeps to. Used only by deploy/docker/compose.local.yml.
ARG BASE=python:3.11.11-slim-bookworm
FROM ${BASE} AS build
ARG PIP_NO_INDEX=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_FIND_LINKS=/wheels
WORKDIR /src
COPY deploy/docker/wheels /wheels
COPY constraints.txt deploy/docker/local/mongodb.requirements ./
RUN python3 -m venv /opt/nx \
    && /opt/nx/bin/pip install -c constraints.txt -r mongodb.requirements

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/nx/bin:$PATH
COPY --from=build /opt/nx /opt/nx
RUN groupadd --system --gid 10001 nx \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data nx \
    && install -d -o 10001 -g 10001 /data /data/db
USER 10001
EXPOSE 27017
# The server refuses to start while its pid file names a live process; after a
# crash the restarted container's own pid 1 is that process, so the file goes first.
CMD ["sh", "-c", "rm -f /tmp/nx-27017.pid && exec nx-27017 --host 0.0.0.0 -p 27017 --data-dir /data/db --pid-file /tmp/nx-27017.pid --log-file /tmp/nx-27017.log"]
