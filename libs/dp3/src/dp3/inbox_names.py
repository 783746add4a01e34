"""Names in the inbox that are never photos: the scanner skips them, the intake refuses them.

Sync clients write partial downloads under temporary names and keep caches in
hidden folders (the full list and why: docs/scanner.md). The scanner applies
this rule to every path component below the inbox; the intake refuses an
upload under such a name, since the scanner would never see it, and relies on
it for its own temporary names (``.dp3-tmp-*``, hidden).
"""

from __future__ import annotations

import enum

TEMPORARY_SUFFIXES = (
    ".partial",
    ".part",
    ".tmp",
    ".temp",
    ".crdownload",
    ".download",
    ".opdownload",
    ".!sync",
    ".!qb",
    ".filepart",
    ".dropbox",
    ".icloud",
)
CLUTTER_NAMES = frozenset(
    {"thumbs.db", "desktop.ini", "icon\r", "$recycle.bin", "system volume information", "@eadir", "lost+found"}
)


class IgnoreReason(enum.StrEnum):
    """Why an inbox entry is not a photo; the label of ``dp3_scanner_ignored_total``."""

    HIDDEN = "hidden"  # a dot name, or OS clutter
    TEMPORARY = "temporary"  # a sync client's or browser's partial download
    SYMLINK = "symlink"  # never followed
    NOT_REGULAR = "not_regular"  # fifo, socket, device
    UNSUPPORTED_TYPE = "unsupported_type"  # neither a photo extension nor a photo's content
    UNREADABLE_FOLDER = "unreadable_folder"  # a folder the scanner may not list


def name_ignore_reason(name: str) -> IgnoreReason | None:
    """Why one path component is never a photo (or a folder of photos), or None."""
    lowered = name.lower()
    if lowered.startswith(".") or lowered in CLUTTER_NAMES:
        return IgnoreReason.HIDDEN
    if lowered.startswith("~") or lowered.endswith("~") or lowered.endswith(TEMPORARY_SUFFIXES):
        return IgnoreReason.TEMPORARY
    return None
