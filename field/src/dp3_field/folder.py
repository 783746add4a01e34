"""The watched folder: which files have finished arriving. Polling, so it works alike on every laptop.

A camera card import (or a copy from a phone) writes files for seconds to
minutes. A file counts as finished by the scanner's own rule,
:mod:`dp3.stability`: the same size, mtime, inode and ctime for
``DP3_FIELD_STABLE_SECONDS`` of the agent's clock. A file already read with
that very stat (the queue remembers it) is skipped at the cost of one
``stat``. Hidden names (a dot first: partial downloads, OS caches) and
symlinks are never read.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dp3.stability import FileState, Watched, is_stable, observe

FileKey = tuple[int, int, int, int]


def file_key(info: os.stat_result) -> FileKey:
    return (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)


def _walk(root: Path, skip: Path | None) -> Iterator[tuple[Path, os.stat_result]]:
    try:
        entries = list(os.scandir(root))
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        if skip is not None and path == skip:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode):
            yield from _walk(path, skip)
        elif stat.S_ISREG(info.st_mode):
            yield path, info


class FolderWatch:
    """Finished files under ``root``, each reported once per stat (``known`` says which were read)."""

    def __init__(
        self,
        root: Path,
        stable_seconds: float,
        known: Callable[[str], FileKey | None],
        *,
        skip: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self._stable = stable_seconds
        self._known = known
        self._skip = skip
        self._clock = clock
        self.pending: dict[str, Watched] = {}

    def finished(self) -> list[tuple[Path, os.stat_result]]:
        """One pass: the files that have rested long enough and were not read with this stat."""
        now = self._clock()
        seen: set[str] = set()
        done: list[tuple[Path, os.stat_result]] = []
        for path, info in _walk(self.root, self._skip):
            name = str(path)
            seen.add(name)
            key = file_key(info)
            if self._known(name) == key:
                self.pending.pop(name, None)
                continue
            state = FileState(*key)
            watched = observe(self.pending.get(name), state, now)
            self.pending[name] = watched
            if is_stable(watched, state, now, self._stable):
                done.append((path, info))
        for gone in set(self.pending) - seen:
            del self.pending[gone]
        return done
