"""One photo never sinks its batch, under the real per-photo limits (issue 14 items 3 and 4).

A real dispatcher and a real Work Queue worker render a batch that mixes good
camera photos with photos that break the limits for real: a 16-bit PNG whose
decode needs more than ``DP3_TASK_MEMORY_MB`` (refused from its header), one
that takes longer than ``DP3_TASK_MAX_SECONDS`` (its render process is
killed), and a file that is no image. Before, one such photo failed the whole
task, every photo of it was charged an attempt, and all ended
``render_failed`` together.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from dp3 import formats
from dp3.events import ErrorKind, Status
from tests.integration.dispatcher.harness import (
    detected,
    pillow_path,
    submit_one_then_a_batch,
)
from tests.unit.dispatcher import heavy_images

pytestmark = pytest.mark.integration


def test_photos_over_the_limits_fail_alone_with_their_own_kind(
    corpus: Path, inbox: Path, amqp_url: str, outcomes, start_dispatcher, start_worker
) -> None:
    owner = inbox / "ANNA-SMITH"
    good = []
    for photo in sorted((corpus / "jpg" / "gps").glob("*.jpg"))[:5]:
        shutil.copyfile(photo, owner / photo.name)
        good.append(owner / photo.name)
    heavy = heavy_images.zero_png(owner / "scan16.png", (12000, 10000), bits=16)  # 120 MP x 10 bytes: 1.2 GB
    slow = heavy_images.zero_png(owner / "panorama.png", (20000, 16000))  # about 2 s to decode here
    notes = owner / "notes.jpg"
    notes.write_text("field notes: trench B, layer 4\n" * 20)
    first, *others = good
    batch = [*others, heavy, slow, notes]
    entries = {path: detected(path, inbox) for path in [first, *batch]}

    dispatcher = start_dispatcher(
        DP3_INBOX=str(inbox),
        DP3_WORKER_PROVIDER="none",
        DP3_RENDER_BATCH=str(len(batch)),
        DP3_TASK_MEMORY_MB="1024",
        DP3_TASK_MAX_SECONDS="1",
        DP3_MAX_PIXELS="2000000000",
    )
    metrics_port = dispatcher.metrics_port()
    port = dispatcher.manager_port()
    submit_one_then_a_batch(amqp_url, metrics_port, list(entries.values()))
    # No worker yet: the first photo leaves alone, the other seven wait as one batch.
    worker = start_worker(port, "worker", env=pillow_path())
    final = outcomes.wait_all({entry.id for entry in entries.values()}, timeout=240)

    for path in good:
        assert final[entries[path].id].status is Status.PROCESSED, final[entries[path].id].error
    too_large = final[entries[heavy].id]
    assert too_large.status is Status.FAILED and too_large.error is not None
    assert too_large.error.kind is ErrorKind.TOO_LARGE, too_large.error
    assert "DP3_TASK_MEMORY_MB" in too_large.error.message and "not decoded" in too_large.error.message
    timed_out = final[entries[slow].id]
    assert timed_out.status is Status.FAILED and timed_out.error is not None
    assert timed_out.error.kind is ErrorKind.RENDER_TIMEOUT, timed_out.error
    assert "DP3_TASK_MAX_SECONDS" in timed_out.error.message
    not_an_image = final[entries[notes].id]
    assert not_an_image.error is not None and not_an_image.error.kind is ErrorKind.CORRUPT_IMAGE

    # Only the photo over the time limit was charged attempts; the photos beside it were not.
    log = dispatcher.log()
    charged = [line for line in log.splitlines() if re.search(r"render attempt \d+ failed", line)]
    assert not [line for line in charged for path in good if entries[path].id in line], charged
    assert len([line for line in charged if entries[slow].id in line]) == 2, charged  # then its third: Failed
    # The worker got the shared contracts as a file of the task, byte for byte the library's module.
    shipped = Path(formats.__file__).read_bytes()
    assert [path for path in worker.log_path.parent.rglob("*") if path.is_file() and path.read_bytes() == shipped]
