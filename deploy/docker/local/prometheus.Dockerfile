# Stand-in for prom/prometheus:v2.55.1 where no registry is reachable: Debian's
# prometheus (2.42). Same entry point, working folder and user as the official
# image, so the compose file's command and volume apply unchanged; wget for the
# compose file's health check. Used only by deploy/docker/compose.local.yml.
ARG BASE=debian:bookworm-20251117-slim
FROM ${BASE}
# hadolint ignore=DL3008
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
    && install -d -o nobody -g nogroup /prometheus
WORKDIR /prometheus
USER 65534
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml"]
