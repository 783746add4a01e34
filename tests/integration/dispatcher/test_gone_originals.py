"""A photo whose original leaves the inbox while its render waits costs the photos beside it nothing.

Work Queue fails a whole task when one input is missing (INPUT_MISS). A chaos
run (seed 950317) showed the harm: after a dispatcher restart, Detected events
came again for photos that were meanwhile archived and collected; batched
with them, a photo that was still in the inbox failed three times in a row
and ended ``render_failed`` instead of its own outcome.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dp3.events import ErrorKind, Status
from tests.integration.dispatcher.harness import (
    TASKS_SUBMITTED,
    detected,
    pillow_path,
    scrape,
    submit_one_then_a_batch,
)

pytestmark = pytest.mark.integration


def test_originals_gone_before_their_task_runs_leave_the_others_untouched(
    corpus: Path, inbox: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    owner = inbox / "ANNA-SMITH"
    photos = sorted((corpus / "jpg" / "gps").glob("*.jpg"))[:4]
    for photo in photos:
        shutil.copyfile(photo, owner / photo.name)
    notes = owner / "notes (copy).jpg"
    notes.write_text("field notes: trench B, layer 4\n" * 20)
    first, *batch = [owner / photo.name for photo in photos]
    going = batch[:2]  # collected, as it were, while their task waits for a worker
    staying = [batch[2], notes]
    entries = {path: detected(path, inbox) for path in [first, *batch, notes]}

    # No worker yet: the first photo leaves alone (an idle pool gets its first task at once);
    # the other four wait for a batch of four, which Work Queue holds until a worker comes.
    dispatcher = start_dispatcher(DP3_INBOX=str(inbox), DP3_WORKER_PROVIDER="none", DP3_RENDER_BATCH="4")
    metrics_port = dispatcher.metrics_port()
    port = dispatcher.manager_port()
    submit_one_then_a_batch(amqp_url, metrics_port, list(entries.values()))
    for path in going:
        path.unlink()

    start_worker(port, "worker", env=pillow_path())
    ids = {entries[path].id for path in [first, *staying]}
    final = outcomes.wait_all(ids, timeout=120)

    assert final[entries[first].id].status is Status.PROCESSED
    assert final[entries[batch[2]].id].status is Status.PROCESSED
    notes_outcome = final[entries[notes].id]
    assert notes_outcome.status is Status.FAILED and notes_outcome.error is not None
    assert notes_outcome.error.kind is ErrorKind.CORRUPT_IMAGE, notes_outcome.error  # its own outcome
    for path in going:  # nothing to render and nothing to report
        dispatcher.wait_log(rf"{entries[path].id}.*the original is no longer in the inbox", timeout=10)
        assert outcomes.count(entries[path].id) == 0
    # The batch went again without its two missing inputs: once, not once per attempt.
    assert scrape(metrics_port)[TASKS_SUBMITTED] == 3
