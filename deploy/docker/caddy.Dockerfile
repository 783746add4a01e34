# The TLS front of the gallery (compose profile "tls"): Debian's Caddy, as a
# non-root user, with deploy/caddy/Caddyfile (the one the head node runs by hand).
#   docker build -f deploy/docker/caddy.Dockerfile -t dp3-caddy .
# BASE: a machine without a registry passes a local bookworm (scripts/build-base-image.sh).
ARG BASE=debian:bookworm-20251117-slim
FROM ${BASE}
# wget: the health check asks Caddy's admin endpoint (127.0.0.1:2019, inside the container only).
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
    && apt-get update \
    && apt-get install -y --no-install-recommends caddy=2.6.2-5 wget=1.21.3-1+deb12u1 \
    && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d \
    && groupadd --system --gid 10001 dp3 \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data dp3 \
    && install -d -o 10001 -g 10001 /data /config
# Certificates and Caddy's own CA live in /data (a volume): kept across restarts.
ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config
# Unprivileged ports inside the container; compose publishes them as 443 and 80.
ENV DP3_CADDY_HTTP_PORT=8080 DP3_CADDY_HTTPS_PORT=8443 DP3_PORTAL_UPSTREAM=portal:8000
COPY deploy/caddy/Caddyfile /etc/caddy/Caddyfile
USER 10001
EXPOSE 8080 8443
CMD ["caddy", "run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]
