"""The sidecar format: what the archiver writes is what every reader (its own, catalog rebuild) parses."""

from __future__ import annotations

import json

from dp3 import sidecar
from dp3.events import JournalEntry, Status
from dp3_archiver import sidecar as archiver_sidecar

SHA = "a" * 64


def _written() -> bytes:
    fields = {"owner": "ANNA", "path": "/inbox/ANNA/a.jpg", "sha256": SHA, "size": 3}
    processed = JournalEntry.model_validate({"id": "ANNA_1_a.jpg", "status": "Processed", "datetime": 1, **fields})
    files = {"original": sidecar.FileRecord("original", "ANNA_1_a.jpg", SHA, 3)}
    document = archiver_sidecar.merged(
        None, processed, name="ANNA_1_a.jpg", date="1970-01-01", files=files, missing_artifacts=False
    )
    return sidecar.dumps(document)


def test_the_archivers_sidecar_reads_back_through_the_shared_readers() -> None:
    data = _written()
    parsed = sidecar.loads(data)
    assert parsed is not None and parsed["format"] == sidecar.FORMAT
    assert sidecar.file_records(parsed) == {"original": sidecar.FileRecord("original", "ANNA_1_a.jpg", SHA, 3)}
    (entry,) = sidecar.journal_entries(json.loads(data))
    assert JournalEntry.model_validate(entry).status is Status.PROCESSED
    assert sidecar.dumps(parsed) == data  # canonical: the same sidecar, the same bytes


def test_loads_refuses_what_is_not_a_current_sidecar() -> None:
    for data in (None, b"", b"{torn", b"\xff", b"[]", b'{"sha256": "x"}', b'{"format": "dp3-sidecar/1"}'):
        assert sidecar.loads(data) is None, data


def test_journal_entries_takes_every_shape_a_sidecar_has_had() -> None:
    entry = {"id": "p", "status": "Processed"}
    for key in sidecar.JOURNAL_KEYS:
        assert sidecar.journal_entries({key: [entry, "junk"]}) == [entry]
    assert sidecar.journal_entries([entry, 3]) == [entry]
    assert sidecar.journal_entries(entry) == [entry]
    assert sidecar.journal_entries({"id": "p"}) == []
    assert sidecar.journal_entries("text") == []
