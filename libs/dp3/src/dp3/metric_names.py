"""Metric names one service registers and another reads from its ``/metrics``: declared once.

The portal's status page reads the archiver's store health and the
dispatcher's connected workers over HTTP; a rename on one side alone would
show "unknown" with no error anywhere. Both sides take the names from here
(``tests/unit/test_metric_names.py`` checks the registered metrics against
them). These are sample names as exposed (a counter's ``_total`` included).
"""

from __future__ import annotations

DISPATCHER_WORKERS_CONNECTED = "dp3_dispatcher_workers_connected"

ARCHIVER_STORE_PREFIX = "dp3_archiver_store_"
"""Every per-store series starts so; the portal scans for this prefix."""
ARCHIVER_STORE_UP = "dp3_archiver_store_up"
ARCHIVER_STORE_PROBLEM_SINCE = "dp3_archiver_store_problem_since_seconds"
ARCHIVER_STORE_PROBLEM_UNTIL = "dp3_archiver_store_problem_until_seconds"
ARCHIVER_STORE_ERRORS = "dp3_archiver_store_errors_total"
ARCHIVER_STORE_ALIAS = "dp3_archiver_store_alias"

STORE_LABEL = "store"
"""The label naming a store (its configured path) on every per-store series."""
KIND_LABEL = "kind"
OTHER_LABEL = "other"
REASON_LABEL = "reason"

READ_BY_PORTAL = {
    DISPATCHER_WORKERS_CONNECTED: (),
    ARCHIVER_STORE_UP: (STORE_LABEL,),
    ARCHIVER_STORE_PROBLEM_SINCE: (STORE_LABEL,),
    ARCHIVER_STORE_PROBLEM_UNTIL: (STORE_LABEL,),
    ARCHIVER_STORE_ERRORS: (STORE_LABEL, KIND_LABEL),
    ARCHIVER_STORE_ALIAS: (STORE_LABEL, OTHER_LABEL, REASON_LABEL),
}
"""Each name the portal reads, with the labels it reads on it."""
