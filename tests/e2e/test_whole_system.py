"""The whole corpus through the whole stack, as separate processes under supervisord.

Real RabbitMQ, the embedded MongoDB-wire server, real Work Queue workers, real
photos; plus the bad inputs a field season brings. Nothing is faked.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from dp3.files import TEMP_PREFIX
from dp3.layout import STORE_MARKER
from tests.browser import ARTIFACTS, chromium
from tests.rabbit import wait_for
from tests.stack import Stack, all_photos, catalog_photos, dp3_command, export_journal, sha256_hex, write_slowly

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OWNERS = ("JAEGER-NICHOLAS", "REEDER-PHILIP")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".tif", ".tiff", ".heic", ".heif", ".png"}


def test_corpus_and_bad_inputs_end_in_the_right_state(stack: Stack, corpus: Path) -> None:
    images = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    assert len(images) >= 100
    expected: dict[str, bytes] = {}  # inbox path -> bytes that must be archived
    for index, source in enumerate(images):
        target = stack.inbox / OWNERS[index % 2] / source.parent.relative_to(corpus) / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        expected[str(target)] = source.read_bytes()

    owner_dir = stack.inbox / OWNERS[0]
    canon = (corpus / "jpg" / "Canon_40D.jpg").read_bytes()
    bad = {
        owner_dir / "empty.jpg": (b"", "empty_file"),
        owner_dir / "truncated.jpg": (canon[: len(canon) // 2], "corrupt_image"),
        owner_dir / "notes.jpg": (b"field notes, day 3: trench B\n" * 20, "corrupt_image"),
    }
    for path, (data, _) in bad.items():
        path.write_bytes(data)
        expected[str(path)] = data
    root_photo = stack.inbox / "loose photo.jpg"
    root_photo.write_bytes(canon)
    slow = owner_dir / "slow upload (2).jpg"
    # Bytes of its own: the same bytes as the corpus copy dropped above would make it a
    # Duplicate or a photo of its own depending on which is archived first.
    slow_bytes = with_comment((corpus / "jpg" / "gps" / "DSCN0010.jpg").read_bytes(), b"slow upload")
    expected[str(slow)] = slow_bytes
    writer = threading.Thread(target=write_slowly, args=(slow, slow_bytes, 4.0))
    writer.start()
    writer.join()

    def settled() -> bool:
        photos = all_photos(stack)
        final = {p["path"] for p in photos if p["status"] == "Collected"}
        return final >= set(expected) and any(p["path"] == str(root_photo) for p in photos)

    wait_for(settled, 420, "every photo collected", interval=2)
    photos = {p["path"]: p for p in all_photos(stack)}

    # Every good photo Collected, byte-identical in both stores with its artifacts and sidecar;
    # every bad one Failed with the right kind, its original preserved in the stores.
    for inbox_path, data in expected.items():
        photo = photos[inbox_path]
        assert photo["status"] == "Collected", photo
        assert photo["sha256"] == sha256_hex(data)
        kind = next((kind for bad_path, (_, kind) in bad.items() if str(bad_path) == inbox_path), None)
        if kind is None:
            assert photo["error"] is None, photo
        else:
            assert photo["failed"] and photo["error"]["kind"] == kind, photo
        assert len(photo["archives"]) == 2
        for folder in map(Path, photo["archives"]):
            assert folder.parent in stack.stores
            sidecars = [json.loads(p.read_text()) for p in folder.glob("*.json") if not p.name.startswith(TEMP_PREFIX)]
            [sidecar] = [s for s in sidecars if s.get("id") == photo["id"]]
            stored = folder / (sidecar.get("stored_name") or photo["id"])
            assert stored.read_bytes() == data, stored
            stem = Path(stored.name).stem
            artifacts = {folder / f"{stem}_THUMBNAIL.jpg", folder / f"{stem}_WEB.jpg"}
            if kind is None:
                assert all(a.stat().st_size > 0 for a in artifacts), artifacts
            else:
                assert not any(a.exists() for a in artifacts)
                assert json.dumps(sidecar).count(kind) >= 1

    # The root photo stays where it is, with no_owner; the inbox is otherwise empty.
    root = photos[str(root_photo)]
    assert root["status"] == "Failed" and root["error"]["kind"] == "no_owner"
    left = sorted(str(p) for p in stack.inbox.rglob("*") if p.is_file() or p.is_symlink())
    assert left == [str(root_photo)]

    # No store holds a photo twice: one original per collected photo, in each store.
    for store in stack.stores:
        originals = [
            p
            for p in store.rglob("*")
            if p.is_file()
            and p.name != STORE_MARKER
            and not p.name.startswith(TEMP_PREFIX)
            and p.suffix != ".json"
            and not p.stem.endswith(("_THUMBNAIL", "_WEB"))
        ]
        assert sorted(sha256_hex(p.read_bytes()) for p in originals) == sorted(sha256_hex(d) for d in expected.values())

    # The API's counts equal the journal's, and the journal shows each photo's transitions in order.
    journal = export_journal(stack)
    final_status: dict[str, str] = {}
    history: dict[str, list[str]] = {}
    for entry in journal:
        history.setdefault(entry["id"], []).append(entry["status"])
        final_status[entry["id"]] = entry["status"]
    stats = stack.api("/api/stats")
    for status in ("Detected", "Processed", "Archived", "Collected", "Failed", "Duplicate"):
        assert stats[status] == sum(1 for s in final_status.values() if s == status), (status, stats)
    order = {"Detected": 0, "Processed": 1, "Failed": 1, "Archived": 2, "Collected": 3}
    for photo in photos.values():
        steps = [s for s in history[photo["id"]] if s != "Duplicate"]
        first_seen = list(dict.fromkeys(steps))
        assert [order[s] for s in first_seen] == sorted(order[s] for s in first_seen), (photo["id"], steps)
        if photo["status"] == "Collected":
            must = ["Detected", "Failed" if photo["failed"] else "Processed", "Archived", "Collected"]
            assert first_seen == must, (photo["id"], steps)

    # The catalog rebuilt from one store's sidecars, as the archiver wrote them, holds every
    # collected photo as the live catalog (recorded from the journal) does, and nothing else.
    store = stack.stores[1]
    dp3_command(stack, "catalog", "rebuild", "--from", str(store), DP3_MONGO_DATABASE="dp3_rebuilt")
    live, rebuilt = catalog_photos(stack, "dp3"), catalog_photos(stack, "dp3_rebuilt")
    collected = {photo_id for photo_id, doc in live.items() if doc["status"] == "Collected"}
    assert collected and collected <= set(rebuilt) <= set(live), sorted(set(rebuilt) ^ collected)[:5]
    same = ("status", "owner", "path", "datetime", "sha256", "size", "failed", "error_kind", "stored_name", "model")
    for photo_id in collected:
        want = {key: live[photo_id].get(key) for key in same}
        got = {key: rebuilt[photo_id].get(key) for key in same}
        assert got == want, photo_id
        assert sorted(rebuilt[photo_id]["archives"]) == sorted(live[photo_id]["archives"]), photo_id

    look_at_the_gallery(stack, owners=sorted({photo["owner"] for photo in photos.values() if photo["owner"]}))


def look_at_the_gallery(stack: Stack, owners: list[str]) -> None:
    """A researcher's view of the processed corpus in a real browser: the workers' thumbnails, a filter."""
    url = f"http://127.0.0.1:{stack.portal_port}"
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(url + "/")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", stack.password)
        page.click("button[type=submit]")
        expect(page).to_have_url(url + "/")
        thumbnails = page.locator("#gallery img")
        expect(thumbnails.first).to_be_visible()
        for index in range(min(thumbnails.count(), 12)):
            thumbnail = thumbnails.nth(index)
            thumbnail.scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
            width, height = thumbnail.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert 0 < width <= 120 and 0 < height <= 90, (index, width, height)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "e2e-gallery.png"))
        for owner in owners:
            page.select_option("select[name=owner]", owner)
            page.click("form.filters button[type=submit]")
            expect(page).to_have_url(re.compile(rf"[?&]owner={re.escape(owner)}(&|$)"))  # the filtered page, loaded
            tiles = page.locator("#gallery a.tile")
            expect(tiles.first).to_be_visible()
            shown = [tiles.nth(i).get_attribute("data-photo-id") or "" for i in range(tiles.count())]
            assert shown and all(photo_id.startswith(owner + "_") for photo_id in shown), (owner, shown[:5])


def with_comment(jpeg: bytes, comment: bytes) -> bytes:
    """The same JPEG with a COM segment after its SOI marker: other bytes, same picture."""
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + jpeg[2:]
