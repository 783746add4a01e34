"""Names are bytes through the real dispatcher and a real Work Queue worker (issue 14, items 2 and 5)."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from dp3 import layout
from dp3.events import ErrorKind, JournalEntry, Status
from dp3.filenames import NAME_MAX
from tests.integration.dispatcher.harness import detected, publish
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration


def _jpeg(path: Path, colour: tuple[int, int, int]) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), colour).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue())


def test_non_utf8_and_long_names_render_and_stage_within_name_max(
    inbox: Path, amqp_url: str, outcomes, start_dispatcher
) -> None:
    owner = Path(os.fsdecode(os.fsencode(inbox) + b"/M\xdcLLER-J\xd6RG"))
    owner.mkdir()
    latin = Path(os.fsdecode(os.fsencode(owner) + b"/caf\xe9 \xab1\xbb.jpg"))
    _jpeg(latin, (200, 30, 30))
    longest = owner / ("L" * 251 + ".JPG")  # 255 bytes: the seed's id would be far over NAME_MAX
    _jpeg(longest, (30, 200, 30))
    wide = owner / ("中" * 83 + "xy.jpg")  # 255 bytes of three-byte characters
    _jpeg(wide, (30, 30, 200))
    entries = [detected(path, inbox) for path in (latin, longest, wide)]
    # Legacy: a Detected whose id was made by the old rule from the 255-byte name.
    legacy = entries[1].model_copy(update={"id": f"{entries[1].owner}_{entries[1].datetime}_{longest.name}"})
    dispatcher = start_dispatcher(DP3_INBOX=str(inbox), DP3_WORKER_PROVIDER="local", DP3_WORKERS_MAX="1")
    publish(amqp_url, [*entries, legacy])
    final = outcomes.wait_all({e.id for e in [*entries, legacy]}, timeout=120)

    staging = dispatcher.home / "staging"
    for entry in entries:
        outcome = final[entry.id]
        assert outcome.status is Status.PROCESSED, outcome.error
        assert outcome.meta is not None and outcome.meta["sha256"] == entry.sha256
        assert os.fsencode(outcome.fs_path) == os.fsencode(entry.fs_path)  # the exact bytes travel on
        folder = staging / entry.id
        for name in (layout.thumbnail_name(entry.id), layout.web_name(entry.id), layout.META_NAME):
            assert (folder / name).is_file()
            assert len(name.encode()) <= NAME_MAX
    assert final[legacy.id].status is Status.FAILED
    assert final[legacy.id].error is not None and final[legacy.id].error.kind is ErrorKind.BAD_NAME
    assert "ENAMETOOLONG" not in dispatcher.log() and "File name too long" not in dispatcher.log()


def test_artifacts_staged_for_other_bytes_are_rendered_again(
    inbox: Path, amqp_url: str, outcomes, start_dispatcher
) -> None:
    """The fast path checks meta.json's sha256: another photo's render under this id is never re-used."""
    owner = inbox / "ANNA-SMITH"
    (owner / "edited").mkdir(parents=True)
    original, edited = owner / "DSC00372.JPG", owner / "edited" / "DSC00372.JPG"
    _jpeg(original, (200, 30, 30))
    _jpeg(edited, (30, 30, 200))
    os.utime(edited, (original.stat().st_mtime, original.stat().st_mtime))
    first, second = detected(original, inbox), detected(edited, inbox)
    dispatcher = start_dispatcher(DP3_INBOX=str(inbox), DP3_WORKER_PROVIDER="local", DP3_WORKERS_MAX="1")
    publish(amqp_url, [first])
    outcomes.wait_all({first.id}, timeout=90)
    staged = dispatcher.home / "staging" / first.id
    # The old id rule gave the edited copy the same id: its Detected now meets the original's staging.
    same_id = JournalEntry.model_validate({**second.model_dump(), "id": first.id, "event_id": "second"})
    publish(amqp_url, [same_id])
    wait_for(lambda: outcomes.count(first.id) == 2, 90, "the second outcome")
    processed = outcomes.final()
    assert processed[first.id].meta is not None and processed[first.id].meta["sha256"] == second.sha256
    assert json.loads((staged / layout.META_NAME).read_bytes())["sha256"] == second.sha256
    shutil.rmtree(staged)
