"""The scanner as a process: files that arrive while it is down are found; a restart re-emits nothing."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from dp3.events import Status
from tests.integration.scanner.conftest import Journal
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_files_added_while_stopped_are_emitted_after_start_and_old_ones_are_not_re_emitted(
    scanner_process, journal: Journal, inbox: Path, corpus: Path, how: signal.Signals
) -> None:
    data = (corpus / "jpg/gps/DSCN0012.jpg").read_bytes()
    owner = inbox / "JAEGER-NICHOLAS"
    owner.mkdir()
    first = [owner / f"first-{n}.jpg" for n in range(3)]
    for path in first:
        path.write_bytes(data + path.name.encode())

    process = scanner_process()
    for path in first:
        journal.wait(path)
    done = process.rescans()  # a rescan after the events: the loop has recorded them in its index
    wait_for(lambda: process.rescans() > done, 20, "a rescan after the events")
    process.stop(how)

    while_down = [owner / "sub folder" / f"while-down-{n}.jpg" for n in range(3)]
    while_down[0].parent.mkdir()
    for path in while_down:
        path.write_bytes(data + path.name.encode())

    process = scanner_process()
    for path in while_down:
        [event] = journal.wait(path)
        assert event.owner == "JAEGER-NICHOLAS"
    # Anything the start-up rescan would re-emit is emitted before a file dropped after it.
    wait_for(lambda: process.rescans() >= 2, 20, "two rescans in the restarted scanner")
    marker = owner / "marker.jpg"
    marker.write_bytes(data)
    journal.wait(marker)
    for path in first:
        assert len(journal.about(path)) == 1, f"{path.name} was re-emitted after the restart"
    for path in while_down:
        assert len(journal.about(path, Status.DETECTED)) == 1
    # Counted once the broker confirmed the publish, which may be just after a consumer saw it.
    counted = 'dp3_scanner_detected_total{owner="JAEGER-NICHOLAS"} 4.0'
    wait_for(lambda: counted in process.get("metrics"), 10, counted)
    process.stop()
    assert process.process.returncode == 0, "".join(process.log[-20:])
