"""Names are bytes: the one readable, reversible text form of a file name, and names that fit NAME_MAX.

A Linux file name is any bytes but ``/`` and NUL, up to 255 bytes. Python
hands such a name over as a ``str`` with lone surrogates (``surrogateescape``)
where the bytes are not UTF-8 (Latin-1 from an SMB share, an old zip); such a
string cannot be written as JSON, to SQLite or to MongoDB. So every name DP3
stores or shows goes through :func:`escape`:

* valid UTF-8 stays as it is (``Café "best" -1.JPG`` is unchanged);
* each byte that is not part of valid UTF-8 becomes ``%XX`` (``caf\\xe9.jpg`` ->
  ``caf%E9.jpg``);
* control characters (C0, DEL, C1), line and paragraph separators and the
  bidirectional overrides become the ``%XX`` of their UTF-8 bytes, so a name
  can never break a log line or reverse what the gallery shows;
* a literal ``%`` becomes ``%25`` only where two hex digits follow it, so
  ``100%.jpg`` keeps its name and ``%41.jpg`` is not mistaken for ``A.jpg``.

:func:`unescape` gives the exact bytes back (``unescape(escape(b)) == b``
for every ``b``), so the escaped form is one-to-one: two different names
never escape alike.

Derived names (the photo id, ``<id>.json``, ``<stem>_THUMBNAIL.jpg``, the
archiver's collision names) must stay within :data:`NAME_MAX` bytes. A name
too long for its budget is cut by :func:`fit`: the head of its stem (never
in the middle of a character or of a ``%XX``), ``~n`` and 12 hex digits of the
sha256 of the whole name (so shortened names stay unique and are the same on
every run), then its extension. The exact original name is never lost: the
event carries the original path's bytes (``JournalEntry.path_bytes``).
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import PurePosixPath

NAME_MAX = 255
"""Bytes in one file name on Linux file systems (ext4, xfs, btrfs, tmpfs)."""

EXTENSION_MAX = 16
"""A suffix longer than this (in bytes) is not treated as an extension worth keeping when shortening."""

SHORTENED_MARK = "~n"
"""Between a shortened name's head and its 12-hex name hash (``n`` is not a hex digit: no clash with ``~<sha>``)."""

HASH_DIGITS = 12

_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")


def _needs_escape(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS


def escape(raw: bytes) -> str:
    """The readable, reversible text form of a name (or a path: ``/`` is kept); see the module docstring."""
    text = raw.decode("utf-8", "surrogateescape")
    out: list[str] = []
    for index, char in enumerate(text):
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"%{code - 0xDC00:02X}")
        elif _needs_escape(char):
            out.extend(f"%{byte:02X}" for byte in char.encode())
        elif char == "%" and _HEX_PAIR.match(text, index + 1):
            out.append("%25")
        else:
            out.append(char)
    return "".join(out)


def unescape(text: str) -> bytes:
    """The exact bytes :func:`escape` was given."""
    out = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%" and _HEX_PAIR.match(text, index + 1):
            out.append(int(text[index + 1 : index + 3], 16))
            index += 3
            continue
        out += char.encode("utf-8", "surrogateescape")
        index += 1
    return bytes(out)


def escape_os(name: str) -> str:
    """:func:`escape` of a name or path as ``os`` functions return it (``surrogateescape`` str)."""
    return escape(os.fsencode(name))


def is_plain(name: str) -> bool:
    """True when ``name`` (an ``os`` str) is its own escaped form: valid UTF-8, nothing escaped."""
    return escape_os(name) == name


def name_hash(name: str) -> str:
    """12 hex digits naming ``name`` (an escaped name), the suffix of its shortened form."""
    return hashlib.sha256(name.encode()).hexdigest()[:HASH_DIGITS]


def split_extension(name: str) -> tuple[str, str]:
    """``(stem, extension)`` with the extension kept only if it is short (``.JPG``, ``.jpeg``, ``.heic``)."""
    suffix = PurePosixPath(name).suffix
    if not suffix or suffix == name or len(suffix.encode()) > EXTENSION_MAX:
        return name, ""
    return name[: -len(suffix)], suffix


def head_within(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit`` UTF-8 bytes, cut neither in a character nor a ``%XX``."""
    if len(text.encode()) <= limit:
        return text
    size = 0
    end = 0
    for index, char in enumerate(text):
        size += len(char.encode("utf-8", "surrogatepass"))
        if size > limit:
            break
        end = index + 1
    head = text[:end]
    # Never leave half an escape ("%E" of "%E9") at the end.
    for back in (1, 2):
        if len(head) >= back and head[-back] == "%" and _HEX_PAIR.match(text, len(head) - back + 1):
            return head[:-back]
    return head


def fit(name: str, limit: int) -> str:
    """``name`` if it has at most ``limit`` bytes, else ``<head>~n<hash><extension>`` of exactly that budget or less."""
    if len(name.encode()) <= limit:
        return name
    stem, extension = split_extension(name)
    tail = f"{SHORTENED_MARK}{name_hash(name)}{extension}"
    room = limit - len(tail.encode())
    if room < 1:
        raise ValueError(f"a limit of {limit} bytes leaves no room for a shortened name")
    return head_within(stem, room) + tail


def tagged(name: str, tag: str, limit: int) -> str:
    """``<stem>~<tag><extension>`` within ``limit`` bytes (the stem is shortened by :func:`fit` if needed)."""
    stem, extension = split_extension(name)
    tail = f"~{tag}{extension}"
    return fit(stem, limit - len(tail.encode())) + tail


def readable(raw: bytes) -> str:
    """A name as a person should see it: UTF-8 as it is, else a Windows-1252 reading (what an SMB share or an
    old zip most often holds), control characters escaped either way. For display only: not reversible."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        raw = raw.decode("cp1252", "replace").encode()
    return escape(raw)
