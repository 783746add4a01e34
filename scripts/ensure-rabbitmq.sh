#!/usr/bin/env bash
# Make sure a RabbitMQ broker answers on this machine; start it if it is installed but down.
set -euo pipefail
if ! command -v rabbitmqctl >/dev/null 2>&1; then
  echo "RabbitMQ is not installed: run 'apt-get install rabbitmq-server' (or set DP3_AMQP_URL to a broker)" >&2
  exit 1
fi
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached
  rabbitmqctl -q --timeout 120 await_startup
fi
# Queue depths and rates for the dashboards (a no-op when already enabled; no restart needed).
rabbitmq-plugins -q enable rabbitmq_prometheus >/dev/null
