"""Pure rules on names: which inbox entries are never photos, and whose a photo is.

The per-name rule lives in :mod:`dp3.inbox_names` (the intake refuses the same
names for uploads); this module applies it along inbox paths.

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

from dp3.inbox_names import CLUTTER_NAMES, TEMPORARY_SUFFIXES, IgnoreReason, name_ignore_reason

__all__ = [
    "CLUTTER_NAMES",
    "TEMPORARY_SUFFIXES",
    "IgnoreReason",
    "name_ignore_reason",
    "owner_of",
    "path_ignore_reason",
    "relative_parts",
]


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
