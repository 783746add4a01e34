"""Pure rules on names: which inbox entries are never photos, and whose a photo is.

Sync clients write partial downloads under temporary names and keep caches in
hidden folders; none of those may ever be emitted, whatever their content.
The rules look at every path component below the inbox, so a file inside a
hidden folder is as hidden as a hidden file.

Never emitted (case-insensitive), see docs/scanner.md:

* names starting with ``.`` (dot files and folders: ``.dropbox.cache``,
  ``.dropbox``, ``.sync``, ``.stfolder``, ``.stversions``, ``.Trash-1000``,
  ``.DS_Store``, ``._*`` AppleDouble, Syncthing ``.syncthing.*.tmp``, DP3's own
  ``.dp3-tmp-*``);
* names starting with ``~`` (``~$report.docx`` lock files, ``~*.tmp``);
* names ending with ``~`` (editor backups);
* suffixes of partial downloads: ``.partial``, ``.part``, ``.tmp``, ``.temp``,
  ``.crdownload``, ``.download``, ``.opdownload``, ``.!sync`` (Resilio),
  ``.!qb``, ``.filepart`` (WinSCP), ``.dropbox``, ``.icloud``;
* OS clutter: ``Thumbs.db``, ``desktop.ini``, ``Icon\\r``,
  ``$RECYCLE.BIN``, ``System Volume Information``, ``@eaDir`` (Synology).
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


def relative_parts(inbox: str, path: str) -> tuple[str, ...] | None:
    """The components of ``path`` below ``inbox`` (both absolute, normalised), or None if outside."""
    prefix = inbox.rstrip("/") + "/"
    if not path.startswith(prefix):
        return None
    rest = path[len(prefix) :]
    parts = tuple(rest.split("/"))
    if not rest or any(part in ("", ".", "..") for part in parts):
        return None
    return parts


def path_ignore_reason(parts: tuple[str, ...]) -> IgnoreReason | None:
    """The first name-based reason found along the relative path, or None."""
    for part in parts:
        reason = name_ignore_reason(part)
        if reason is not None:
            return reason
    return None


def owner_of(parts: tuple[str, ...]) -> str | None:
    """The first folder below the inbox (``JAEGER-NICHOLAS/x/y.jpg`` -> ``JAEGER-NICHOLAS``); None in the root."""
    return parts[0] if len(parts) > 1 else None
