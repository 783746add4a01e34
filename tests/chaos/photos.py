"""Distinct photos made from the corpus, generated at test start into a temporary folder.

Each is a corpus JPEG, scaled down (the chaos test is about the pipeline, not
render cost), cropped by a seeded offset and re-encoded at a seeded quality,
with the source's EXIF kept (capture time, orientation) and a JPEG comment
naming its number, so no two share their bytes even when the crop and quality
repeat. A few are bad on purpose (truncated, or not an image at all) and must
end up archived with their failure recorded.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

OWNERS = ("JAEGER-NICHOLAS", "REEDER-PHILIP", "HALL-DEBORAH")
SOURCE_FOLDERS = ("jpg", "jpg/exif-org", "jpg/gps", "jpg/orientation", "jpg/xmp")
MAX_SIDE = 900
BAD_EVERY = 50
"""One photo in this many is bad: alternately truncated and not an image."""


@dataclass(frozen=True)
class Photo:
    """One file to drop: where it goes under the inbox, its bytes, and the failure it must record (if bad)."""

    relative: Path
    data: bytes
    failure: str | None = None


@dataclass(frozen=True)
class _Source:
    image: Image.Image
    exif: bytes | None


def corpus_sources(corpus: Path) -> list[Path]:
    found: list[Path] = []
    for folder in SOURCE_FOLDERS:
        found += sorted(p for p in (corpus / folder).glob("*.jpg") if p.name != "corrupted.jpg")
    return found


def _load(path: Path) -> _Source | None:
    try:
        with Image.open(path) as image:
            image.draft("RGB", (MAX_SIDE, MAX_SIDE))
            exif = image.info.get("exif")
            loaded = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    loaded.thumbnail((MAX_SIDE, MAX_SIDE))
    return _Source(loaded, exif if isinstance(exif, bytes) else None)


def make_photos(corpus: Path, count: int, seed: int) -> list[Photo]:
    """``count`` photos with distinct bytes under three photographers' folders; deterministic for ``seed``."""
    rng = random.Random(seed)
    sources = [source for path in corpus_sources(corpus) if (source := _load(path)) is not None]
    assert len(sources) >= 20, f"too few decodable corpus photos ({len(sources)})"
    photos: list[Photo] = []
    for number in range(count):
        owner = OWNERS[number % len(OWNERS)]
        # Names as the field brings them: camera names, spaces, a non-ASCII one now and then.
        name = rng.choice(("DSC{:05d}.JPG", "IMG_{:04d}.jpg", "photo {} (copy).jpg", "séance {}.jpeg")).format(number)
        relative = Path(owner) / f"day-{number % 4 + 1}" / name
        data = _encode(sources[number % len(sources)], number, rng)
        failure = None
        if number % BAD_EVERY == BAD_EVERY - 1:
            if (number // BAD_EVERY) % 2 == 0:
                data = data[: len(data) // 3]
            else:
                data = f"field notes {number}: trench B, layer 4\n".encode() * 40
            failure = "corrupt_image"
        photos.append(Photo(relative, data, failure))
    assert len({photo.data for photo in photos}) == count
    return photos


def _encode(source: _Source, number: int, rng: random.Random) -> bytes:
    image = source.image
    width, height = image.size
    left, top = rng.randrange(0, max(1, width // 8)), rng.randrange(0, max(1, height // 8))
    right, bottom = width - rng.randrange(0, max(1, width // 8)), height - rng.randrange(0, max(1, height // 8))
    cropped = image.crop((left, top, max(right, left + 16), max(bottom, top + 16)))
    out = io.BytesIO()
    options: dict[str, object] = {"quality": rng.randrange(60, 96), "comment": f"dp3 chaos photo {number}".encode()}
    if source.exif:
        options["exif"] = source.exif
    cropped.save(out, "JPEG", **options)
    return out.getvalue()
