"""Re-uploads of archived bytes become Duplicate, learned from the journal (issue 4, item 6)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dp3.broker import Publisher
from dp3.events import JournalEntry, Status
from tests.integration.scanner.conftest import Journal
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration


def archived_events(entry: JournalEntry, archives: list[str]) -> tuple[JournalEntry, JournalEntry]:
    archived = entry.next(Status.ARCHIVED, service="archiver", archives=archives)
    return archived, archived.next(Status.COLLECTED, service="archiver")


def test_a_re_upload_of_an_archived_photo_is_a_duplicate(
    scanner, journal: Journal, inbox: Path, corpus: Path, amqp_url: str
) -> None:
    running = scanner()
    data = (corpus / "jpg/gps/DSCN0021.jpg").read_bytes()
    original = inbox / "JAEGER-NICHOLAS" / "DSC00372.JPG"
    original.parent.mkdir()
    original.write_bytes(data)
    [detected] = journal.wait(original)

    # The archiver's side, played by the test: archive, delete the original, collect.
    archives = ["/data/archive-a/2008-10-22", "/data/archive-b/2008-10-22"]
    archived, collected = archived_events(detected, archives)
    publisher = Publisher(amqp_url)
    publisher.publish(archived)
    wait_for(lambda: running.app.index.archived(detected.sha256 or "") is not None, 20, "the scanner to learn it")
    original.unlink()
    publisher.publish(collected)
    wait_for(lambda: running.app.index.get(str(original)) is None, 20, "the collected path to be forgotten")

    # Same bytes, another owner and name.
    copy = inbox / "REEDER-PHILIP" / "copy of it.jpg"
    copy.parent.mkdir()
    copy.write_bytes(data)
    [duplicate] = journal.wait(copy, Status.DUPLICATE)
    assert duplicate.duplicate_of == detected.id
    assert duplicate.archives == archives
    assert duplicate.sha256 == hashlib.sha256(data).hexdigest()
    assert duplicate.owner == "REEDER-PHILIP"

    # Same bytes again under the very same name: a re-upload too, not a new photo.
    original.write_bytes(data)
    [again] = journal.wait(original, Status.DUPLICATE)
    assert again.duplicate_of == detected.id
    running.wait_rescans(2)
    assert len(journal.about(copy)) == 1 and len(journal.about(original, Status.DETECTED)) == 1
    publisher.close()


def test_the_archived_original_still_in_the_inbox_is_not_its_own_duplicate(
    scanner, journal: Journal, inbox: Path, corpus: Path, amqp_url: str
) -> None:
    running = scanner(redrive_seconds=1.0, rescan_seconds=0.3)
    data = (corpus / "jpg/gps/DSCN0025.jpg").read_bytes()
    original = inbox / "ANNA-LIND" / "a.jpg"
    original.parent.mkdir()
    original.write_bytes(data)
    [detected] = journal.wait(original)
    archived, _collected = archived_events(detected, ["/a/2008-10-22"])
    publisher = Publisher(amqp_url)
    publisher.publish(archived)
    wait_for(lambda: running.app.index.archived(detected.sha256 or "") is not None, 20, "the scanner to learn it")
    # Not yet collected: the re-drive keeps saying Detected, the same photo.
    redriven = journal.wait(original, Status.DETECTED, count=2)
    assert redriven[1].id == detected.id and redriven[1].attempt == 1
    assert journal.about(original, Status.DUPLICATE) == []
    publisher.close()
