# Stand-in for rabbitmq:3.13.7-management where no registry is reachable:
# Debian's rabbitmq-server (3.10), its management and Prometheus plugins
# enabled by the enabled_plugins file the compose file mounts. Used only by
# deploy/docker/compose.local.yml.
ARG BASE=debian:bookworm-20251117-slim
FROM ${BASE}
# No init system in a build: policy-rc.d keeps the package from starting a
# broker. The user first, with the official image's uid, so USER can be numeric.
# hadolint ignore=DL3008
RUN groupadd --system --gid 999 rabbitmq \
    && useradd --system --uid 999 --gid 999 --home-dir /var/lib/rabbitmq --shell /bin/false rabbitmq \
    && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d /var/lib/rabbitmq/mnesia \
    && install -d -o rabbitmq -g rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
# As in the official image: logs to the console, the broker as its own user.
ENV RABBITMQ_LOGS=- RABBITMQ_SASL_LOGS=-
USER 999
EXPOSE 5672 15672 15692
CMD ["/usr/lib/rabbitmq/bin/rabbitmq-server"]
