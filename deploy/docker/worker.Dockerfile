# A Work Queue worker as a cluster node would have it: Debian's Python and
# Pillow, no DP3 code (the render task arrives with each task).
#   docker build -f deploy/docker/worker.Dockerfile -t dp3-worker .
# BASE: a machine without a registry passes a local bookworm (scripts/build-base-image.sh).
ARG BASE=debian:bookworm-20251117-slim
FROM ${BASE}

RUN apt-get update \
    && apt-get install -y --no-install-recommends coop-computing-tools=9.9-2+b4 python3=3.11.2-1+b1 python3-pil=9.4.0-1.1+deb12u1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --create-home worker
USER 10001
WORKDIR /home/worker
# Connects to the dispatcher's manager; --timeout makes an idle worker leave.
ENTRYPOINT ["work_queue_worker", "--cores", "1", "--timeout", "900"]
CMD ["dispatcher", "9123"]
