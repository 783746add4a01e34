"""dp3-field: the photographers' field agent (issue 19; the contract is docs/field-uploads.md).

It runs on a photographer's laptop at the dig site, watches the folder a
camera card is imported into, and sends each finished photo to the head
node's intake: every pending preview first (newest day first), then the
originals one at a time, oldest first, resumable at any byte. Nobody presses
anything: it retries with backoff and resumes when the link returns.

Modules, one idea each:

- :mod:`dp3_field.settings`  the agent's ``DP3_FIELD_*`` settings
- :mod:`dp3_field.pairing`   the stored pairing (head node URL, token, owner)
- :mod:`dp3_field.plan`      pure: what to send next, backoff, the deletion rule
- :mod:`dp3_field.throttle`  pure: the bandwidth cap (token bucket) and the rate meter
- :mod:`dp3_field.queue`     the durable SQLite queue (WAL, one transaction per step)
- :mod:`dp3_field.folder`    the watched folder: finished files by :mod:`dp3.stability`
- :mod:`dp3_field.preview`   the preview, rendered by :func:`dp3.render_task.render`
- :mod:`dp3_field.intake`    the head node's HTTP API: tus (tuspy, wrapped), previews, receipts
- :mod:`dp3_field.status`    what a photographer reads: the summary, ``status`` and the local page
- :mod:`dp3_field.agent`     the run loop that carries the plan out
- :mod:`dp3_field.cli`       ``dp3-field pair | run | status``
"""
