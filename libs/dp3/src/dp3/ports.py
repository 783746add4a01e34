"""The default TCP ports of DP3's programs, and a free port for the ones that pick their own.

One table, read by each service's settings, by ``deploy/local/stack.py`` and by
the tests; ``docker-compose.yml`` and the Prometheus config repeat these
numbers in YAML (``tests/unit/deploy/test_default_ports.py`` keeps them equal).
"""

from __future__ import annotations

import socket

SCANNER_METRICS = 9101
DISPATCHER_METRICS = 9102
ARCHIVER_METRICS = 9103
PORTAL = 8000
"""The portal's web port; its /metrics are served there too."""
INTAKE = 8010
"""The intake's HTTP port (tus uploads, previews, receipts); its /metrics are served there too."""
WORK_QUEUE = 9123
"""The dispatcher's Work Queue manager, which workers connect to."""
EMBEDDED_MONGO = 27017
"""The embedded MongoDB-wire server of a one-machine stack."""

METRICS = {"scanner": SCANNER_METRICS, "dispatcher": DISPATCHER_METRICS, "archiver": ARCHIVER_METRICS}
"""Each back-end service's /metrics and /healthz port (``DP3_METRICS_PORT`` unset)."""

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now on 127.0.0.1 and not handed out before by this process (the OS may offer one again)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
