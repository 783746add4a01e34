"""Every corpus file through real workers: Processed with verified artifacts, or Failed with a kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from dp3 import layout
from dp3.events import ErrorKind, Status
from tests.integration.dispatcher.harness import detected, publish

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPECIFIC_KINDS = {ErrorKind.CORRUPT_IMAGE, ErrorKind.UNSUPPORTED_FORMAT, ErrorKind.TOO_LARGE, ErrorKind.EMPTY_FILE}


def _corpus_files(corpus: Path) -> list[Path]:
    # README files are not photos: the scanner never emits Detected for them.
    return sorted(p for p in corpus.rglob("*") if p.is_file() and not p.name.startswith("README"))


def _mean_difference(a: Path, b: Path) -> float:
    with Image.open(a) as first, Image.open(b) as second:
        assert first.size == second.size, f"{a.name} {first.size} vs {b.name} {second.size}"
        difference = ImageChops.difference(first.convert("RGB"), second.convert("RGB"))
        return sum(ImageStat.Stat(difference).mean) / 3


def test_every_corpus_file_ends_processed_or_failed_with_a_specific_kind(
    corpus: Path, amqp_url: str, outcomes, start_dispatcher
) -> None:
    files = _corpus_files(corpus)
    assert len(files) > 90
    entries = {detected(path, corpus).id: (path, detected(path, corpus)) for path in files}
    dispatcher = start_dispatcher(DP3_WORKER_PROVIDER="local", DP3_WORKERS_MAX="2")
    publish(amqp_url, [entry for _path, entry in entries.values()])
    final = outcomes.wait_all(set(entries), timeout=180)
    staging = dispatcher.home / "staging"

    processed = {i for i, e in final.items() if e.status is Status.PROCESSED}
    for photo_id, event in final.items():
        if event.status is Status.FAILED:
            assert event.error is not None and event.error.kind in SPECIFIC_KINDS, (photo_id, event.error)
            assert event.error.message
            assert not (staging / photo_id).exists()
            continue
        assert event.status is Status.PROCESSED, (photo_id, event.status)
        folder = staging / photo_id
        meta = json.loads((folder / layout.META_NAME).read_text())
        assert meta == event.meta and meta["sha256"] == entries[photo_id][1].sha256
        with Image.open(folder / layout.thumbnail_name(photo_id)) as thumbnail:
            assert thumbnail.format == "JPEG" and thumbnail.width <= 120 and thumbnail.height <= 90
        with Image.open(folder / layout.web_name(photo_id)) as web:
            assert web.format == "JPEG" and web.width <= 640 and web.height <= 480
    assert len(processed) >= 0.85 * len(files), f"only {len(processed)} of {len(files)} rendered"

    by_name = {path.relative_to(corpus).as_posix(): photo_id for photo_id, (path, _e) in entries.items()}
    # The 16 orientation samples: upright, so each family agrees pixel-wise with its _1.
    for family in ("landscape", "portrait"):
        ids = [by_name[f"jpg/orientation/{family}_{n}.jpg"] for n in range(1, 9)]
        assert all(i in processed for i in ids)
        reference = staging / ids[0] / layout.web_name(ids[0])
        for other in ids[1:]:
            difference = _mean_difference(reference, staging / other / layout.web_name(other))
            assert difference < 8, f"{other} differs from {ids[0]} by {difference:.1f} on average"
        with Image.open(reference) as upright:
            assert (upright.width > upright.height) == (family == "landscape")
    # GPS samples carry their coordinates.
    gps_ids = [i for name, i in by_name.items() if name.startswith("jpg/gps/")]
    assert gps_ids
    for photo_id in gps_ids:
        position = final[photo_id].meta["exif"]["gps"]
        assert -90 <= position["latitude"] <= 90 and -180 <= position["longitude"] <= 180
        assert position["latitude"] != 0 or position["longitude"] != 0
