"""One full pass over the inbox with ``os.scandir``, never following a symlink.

The walk only lists and ``lstat``s: no file is opened. It reports every
regular file with its key, and every entry it refuses (hidden or temporary
names, symlinks, fifos, folders it may not list) with the reason, so the
scanner can log each one once. Hidden folders (``.dropbox.cache`` ...) are
not descended into.
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass, field

from dp3_scanner.index import FileKey
from dp3_scanner.names import IgnoreReason, name_ignore_reason

log = logging.getLogger(__name__)


@dataclass
class WalkResult:
    files: dict[str, FileKey] = field(default_factory=dict)
    """Regular files with acceptable names -> (size, mtime_ns, inode, ctime_ns)."""
    refused: dict[str, IgnoreReason] = field(default_factory=dict)
    """Entries never considered, and why."""
    unlistable: list[str] = field(default_factory=list)
    """Folders that could not be listed: what was known below them is kept, not forgotten."""
    total_bytes: int = 0


def walk_inbox(inbox: str) -> WalkResult:
    """Everything below ``inbox`` (an absolute path), breadth by folder."""
    result = WalkResult()
    files, refused = result.files, result.refused
    folders = [inbox]
    total = 0
    while folders:
        folder = folders.pop()
        try:
            entries = os.scandir(folder)
        except FileNotFoundError:
            continue  # removed while we walked
        except OSError:
            result.unlistable.append(folder)
            if folder != inbox:
                refused[folder] = IgnoreReason.UNREADABLE_FOLDER
            continue
        with entries:
            for entry in entries:
                reason = name_ignore_reason(entry.name)
                if reason is not None:
                    refused[entry.path] = reason
                    continue
                try:
                    if entry.is_symlink():
                        refused[entry.path] = IgnoreReason.SYMLINK
                    elif entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    else:
                        info = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(info.st_mode):
                            files[entry.path] = (info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns)
                            total += info.st_size
                        else:
                            refused[entry.path] = IgnoreReason.NOT_REGULAR
                except FileNotFoundError:
                    continue
    result.total_bytes = total
    return result
