"""``/metrics`` and ``/healthz`` for services that have no web app of their own.

A tiny threaded HTTP server in a daemon thread: Prometheus scrapes
``/metrics``; compose and the process manager probe ``/healthz``, which answers
200 while the service's own health check says so and 503 otherwise.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, str]]
"""Returns (healthy, a short reason shown in the response body)."""


def start_metrics_server(port: int, health: HealthCheck, host: str = "0.0.0.0") -> ThreadingHTTPServer:  # noqa: S104 - scraped from other containers
    """Serve /metrics and /healthz on ``port`` (0 picks a free one) from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                healthy, reason = health()
                self._reply(200 if healthy else 503, (reason or ("ok" if healthy else "unhealthy")).encode() + b"\n")
            else:
                self._reply(404, b"not found\n")

        def _reply(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - scrapes are not news
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="dp3-metrics", daemon=True).start()
    log.info("serving /metrics and /healthz on port %d", server.server_address[1])
    return server
