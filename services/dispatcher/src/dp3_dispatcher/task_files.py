"""The files every render task ships beside its photos, sent under names that change with their content.

Work Queue keeps an input sent with ``cache=True`` on the worker under a name
made from the *local path* (cctools 8: ``file-<md5 of the path>-<basename>``),
and never sends it again to a worker that holds that name. A file changed in
place (a release installed under a running dispatcher) would go on running
in its old version on every worker that had already run a task, and in the
new one on the others: two contracts at once. So each file is sent from a
copy whose path holds its content's sha256 (new bytes, new path, new cache
name), in ``$DP3_WORK_QUEUE_SCRATCH/task-files/`` (a few tens of KB per release).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from dp3.files import TEMP_PREFIX
from dp3_dispatcher.workqueue import InputFile

DIGEST_CHARS = 16

_Signature = tuple[int, int, int, int]


class TaskFiles:
    """``(local, remote)`` files as Work Queue inputs, each from a content-named copy under ``folder``."""

    def __init__(self, folder: Path, files: Sequence[tuple[Path, str]]) -> None:
        self._folder = folder
        self._files = tuple(files)
        self._lock = threading.Lock()
        self._copies: dict[Path, tuple[_Signature, Path]] = {}

    def inputs(self) -> tuple[InputFile, ...]:
        """Cached inputs for the files as they are now; a file is read again only when its stat changed."""
        with self._lock:
            return tuple(InputFile(self._copy(local, remote), remote, cache=True) for local, remote in self._files)

    def _copy(self, local: Path, remote: str) -> Path:
        status = local.stat()
        signature = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
        known = self._copies.get(local)
        if known is not None and known[0] == signature and known[1].is_file():
            return known[1]
        data = local.read_bytes()
        copy = self._folder / hashlib.sha256(data).hexdigest()[:DIGEST_CHARS] / remote
        if not copy.is_file():
            copy.parent.mkdir(parents=True, exist_ok=True)
            temporary = copy.with_name(f"{TEMP_PREFIX}{remote}")
            temporary.write_bytes(data)
            os.replace(temporary, copy)
        self._copies[local] = (signature, copy)
        return copy
