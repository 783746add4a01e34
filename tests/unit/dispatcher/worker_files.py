"""The render task as a worker holds it: the files the dispatcher ships, alone in a folder of their own."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from dp3_dispatcher.dispatcher import SCRIPT_REMOTE, TASK_FILES


def worker_copy(folder: Path | None = None) -> Path:
    """Copy every file a task ships into ``folder`` (a new temporary one by default); the script's path there."""
    target = folder if folder is not None else Path(tempfile.mkdtemp(prefix="dp3-worker-files-"))
    target.mkdir(parents=True, exist_ok=True)
    for local, remote in TASK_FILES:
        shutil.copyfile(local, target / remote)
    return target / SCRIPT_REMOTE
