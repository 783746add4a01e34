"""DP3's shared library: the contract and the plumbing every service stands on.

Modules, one idea each:

- :mod:`dp3.events`    the journal entry (the event), statuses, error kinds, the id rule
- :mod:`dp3.topology`  which queue consumes which routing keys
- :mod:`dp3.settings`  the ``DP3_*`` settings model
- :mod:`dp3.errors`    the error tree, by what a caller does about it
- :mod:`dp3.broker`    RabbitMQ: confirmed publishing, acknowledged consuming, reconnects
- :mod:`dp3.layout`   staging and store file names (pure)
- :mod:`dp3.files`     streaming sha256, atomic writes, paths kept under a root
- :mod:`dp3.serve`     ``/metrics`` and ``/healthz`` for services without a web app
- :mod:`dp3.log`       logfmt logs carrying the photo id
- :mod:`dp3.stability` the "file has finished arriving" rule (scanner and field agent)
- :mod:`dp3.service`   a service process's start-up (settings, logs, signals, metrics)
- :mod:`dp3.cli`       the ``dp3`` operator command
"""

from dp3.events import ErrorInfo, ErrorKind, JournalEntry, Status, make_photo_id

__all__ = ["ErrorInfo", "ErrorKind", "JournalEntry", "Status", "make_photo_id"]
