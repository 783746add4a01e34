"""Names inside a store, and the id-collision rule. Pure functions only.

A photo is stored under a *name*: its id, unless a different photo (another
sha256) already holds that id in a date folder, in which case it is stored as
``<stem>~<first 12 hex of its sha256><suffix>`` (``~<all 64>`` in the
astronomically rare case that is taken too). The name is recorded in the
sidecar and in the ``Archived``/``Collected`` events (``stored_name``), and the
artifacts follow it, so two colliding photos never share a file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dp3 import filenames, layout

_DATE_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_IN_ID = re.compile(r"_(-?\d+)_")


def collision_name(photo_id: str, sha256: str, length: int = 12) -> str:
    """``A_1_DSC.JPG`` + sha ``3f2a...`` -> ``A_1_DSC~3f2a9c1b7e0d.JPG`` (extension kept, so it still opens).

    Within :data:`dp3.layout.STORED_NAME_MAX` bytes (the stem is shortened if it must be).
    """
    return filenames.tagged(photo_id, sha256[:length], layout.STORED_NAME_MAX)


def candidate_names(photo_id: str, sha256: str) -> tuple[str, ...]:
    """Every name a photo with this id and sha256 can be stored under, in the order they are tried."""
    return (photo_id, collision_name(photo_id, sha256, 12), collision_name(photo_id, sha256, 64))


@dataclass(frozen=True)
class StoredFiles:
    """The file names of one stored photo inside its date folder."""

    name: str

    @property
    def original(self) -> str:
        return self.name

    @property
    def thumbnail(self) -> str:
        return layout.thumbnail_name(self.name)

    @property
    def web(self) -> str:
        return layout.web_name(self.name)

    @property
    def sidecar(self) -> str:
        return layout.sidecar_name(self.name)


def is_date_folder(name: str) -> bool:
    return bool(_DATE_FOLDER.match(name))


def capture_times_in_id(photo_id: str) -> list[int]:
    """Candidate capture times inside ``{owner}_{datetime}_{basename}`` (owners and names may hold ``_``)."""
    return [int(match.group(1)) for match in _TIME_IN_ID.finditer(photo_id)]


def name_of_sidecar(filename: str) -> str | None:
    """``X.JPG.json`` -> ``X.JPG``; None for anything that is not a sidecar name."""
    if not filename.endswith(".json") or filename.startswith("."):
        return None
    return filename[: -len(".json")] or None
