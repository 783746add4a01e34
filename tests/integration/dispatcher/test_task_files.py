"""Workers never run a stale cached copy of the render task or dp3_formats (issue 14 item 9), on a real worker.

Work Queue caches an input by its local path: the same path with new content
is not sent again to a worker that holds it. The dispatcher therefore ships
each task file from a copy named by its content.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from dp3_dispatcher import dispatcher
from dp3_dispatcher.task_files import TaskFiles
from dp3_dispatcher.workqueue import Manager, OutputFile, Task
from tests.integration.dispatcher.harness import Worker

pytestmark = pytest.mark.integration


def worker_sees(manager: Manager, files: TaskFiles, out: Path) -> str:
    """What a task on the worker finds in its dp3_formats.py."""
    manager.submit(
        Task(
            f"cat {dispatcher.FORMATS_REMOTE} > seen.txt",
            inputs=files.inputs(),
            outputs=[OutputFile("seen.txt", out)],
            tag=out.name,
            cores=1,
            memory_mb=100,
            max_retries=2,
        )
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if manager.wait(1) is not None:
            return out.read_text()
    raise AssertionError("the task did not come back")


def test_a_task_file_changed_in_place_reaches_a_worker_that_cached_it(tmp_path: Path) -> None:
    # As a release installed under a running dispatcher: same path, new bytes, one long-running worker.
    module = tmp_path / "release" / "formats.py"
    module.parent.mkdir()
    module.write_text("EXIT_OK = 0  # release 1\n")
    files = TaskFiles(tmp_path / "task-files", [(module, dispatcher.FORMATS_REMOTE)])
    with Manager(0) as manager:
        worker = Worker(manager.port, workdir=tmp_path / "worker")
        try:
            assert worker_sees(manager, files, tmp_path / "first.txt") == "EXIT_OK = 0  # release 1\n"
            assert worker_sees(manager, files, tmp_path / "again.txt") == "EXIT_OK = 0  # release 1\n"
            module.write_text("EXIT_OK = 0  # release 2, one byte longer\n")
            assert worker_sees(manager, files, tmp_path / "second.txt") == "EXIT_OK = 0  # release 2, one byte longer\n"
        finally:
            worker.stop()
    copies = sorted(path.read_text() for path in (tmp_path / "task-files").rglob(dispatcher.FORMATS_REMOTE))
    assert len(copies) == 2  # one content-named copy per version, none rewritten


def test_the_dispatcher_ships_its_task_files_from_content_named_copies(tmp_path: Path) -> None:
    files = TaskFiles(tmp_path / "task-files", dispatcher.TASK_FILES)
    inputs = {spec.remote: spec for spec in files.inputs()}
    assert set(inputs) == {dispatcher.SCRIPT_REMOTE, dispatcher.FORMATS_REMOTE}
    for local, remote in dispatcher.TASK_FILES:
        shipped = Path(inputs[remote].local)
        assert shipped.read_bytes() == local.read_bytes() and inputs[remote].cache
        assert shipped.parent.parent == tmp_path / "task-files"
        assert shipped.parent.name == hashlib.sha256(local.read_bytes()).hexdigest()[:16]
    assert files.inputs() == tuple(inputs.values())  # unchanged files: the same copies, not read again
