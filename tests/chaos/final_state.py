"""What must be true once a whole-stack run has settled, whatever was done to it on the way.

Shared by the chaos and store-fault tests. ``expected`` maps each dropped
file's inbox path to its bytes and, for a bad one, the failure kind it must
record. Each check says what it found, so a failure names the photo.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import httpx

from dp3.files import TEMP_PREFIX
from dp3.layout import STORE_MARKER
from tests.rabbit import rabbitmqctl, wait_for
from tests.stack import Stack, all_photos, export_journal, sha256_hex

FINAL = "Collected"


@dataclass(frozen=True)
class Expected:
    data: bytes
    failure: str | None = None


def settled(stack: Stack, expected: dict[str, Expected]) -> bool:
    """Every dropped photo is Collected in the catalog and gone from the inbox (False while the portal restarts)."""
    try:
        photos = all_photos(stack)
    except httpx.HTTPError:
        return False
    final = {p["path"] for p in photos if p["status"] == FINAL}
    return final >= set(expected) and not any(Path(path).exists() for path in expected)


def progress(stack: Stack, expected: dict[str, Expected]) -> str:
    """One line for a timeout message: how far the run got."""
    try:
        statuses = Counter(p["status"] for p in all_photos(stack) if p["path"] in expected)
    except Exception as exc:
        return f"(catalog unreachable: {exc!r})"
    left = sum(1 for path in expected if Path(path).exists())
    return f"{dict(statuses)} of {len(expected)}; {left} still in the inbox"


def assert_final_state(stack: Stack, expected: dict[str, Expected], vhost: str | None = None) -> None:
    if vhost is not None:
        # "Settled" is seen in the catalog; replayed events (redeliveries after the kills) and the
        # last steps after a publish (removing staging) may still be under way: let them finish.
        # (A settle step, not a check: the assertions below judge the state either way.)
        try:
            wait_for(lambda: _queues_idle(vhost), 60, f"every queue in {vhost} empty and acked", interval=1)
        except AssertionError:
            print(f"queues still busy after settling: {_queue_counts(vhost)}")
    photos = all_photos(stack)
    _catalog_once_each(photos, expected)
    by_path = {p["path"]: p for p in photos}
    for path, want in expected.items():
        _archived_everywhere(stack, by_path[path], want)
    _inbox_empty(stack)
    _no_store_holds_twice(stack, expected)
    _counts_match_disk(stack, photos)
    _journal_in_order(stack, photos)
    _staging_empty(stack)
    if vhost is not None:
        _nothing_dead_lettered(vhost)


def vhost_of(amqp_url: str) -> str:
    return unquote(urlparse(amqp_url).path.lstrip("/"))


def _catalog_once_each(photos: list[dict[str, Any]], expected: dict[str, Expected]) -> None:
    ids = Counter(p["id"] for p in photos)
    assert not [i for i, n in ids.items() if n > 1], f"photos listed twice: {[i for i, n in ids.items() if n > 1]}"
    paths = Counter(p["path"] for p in photos)
    assert set(paths) == set(expected), (
        f"catalog paths differ: missing {sorted(set(expected) - set(paths))[:5]}, "
        f"extra {sorted(set(paths) - set(expected))[:5]}"
    )
    twice = [path for path, n in paths.items() if n > 1]
    assert not twice, f"one inbox file became several photos: {twice[:5]}"
    not_final = [(p["id"], p["status"]) for p in photos if p["status"] != FINAL]
    assert not not_final, f"photos not in their final state: {not_final[:10]}"


def _archived_everywhere(stack: Stack, photo: dict[str, Any], want: Expected) -> None:
    assert photo["sha256"] == sha256_hex(want.data), photo["id"]
    if want.failure is None:
        assert photo["error"] is None and not photo["failed"], (photo["id"], photo["error"])
    else:
        assert photo["failed"] and photo["error"]["kind"] == want.failure, (photo["id"], photo["error"])
    folders = [Path(folder) for folder in photo["archives"]]
    assert sorted(folder.parent for folder in folders) == sorted(stack.stores), (photo["id"], folders)
    for folder in folders:
        # A SIGKILLed archiver leaves its temporary sidecars (fsck --repair removes them later).
        sidecars = [json.loads(p.read_text()) for p in folder.glob("*.json") if not p.name.startswith(TEMP_PREFIX)]
        mine = [s for s in sidecars if s.get("id") == photo["id"]]
        assert len(mine) == 1, (folder, [(s.get("name"), s.get("sha256"), s.get("error")) for s in mine])
        [sidecar] = mine
        stored = folder / (sidecar.get("stored_name") or photo["id"])
        assert stored.read_bytes() == want.data, f"{stored} differs from what was dropped"
        journaled = [entry["status"] for entry in sidecar.get("journal", [])]
        assert "Archived" in journaled and FINAL in journaled, (stored, journaled)
        stem = Path(stored.name).stem
        artifacts = [folder / f"{stem}_THUMBNAIL.jpg", folder / f"{stem}_WEB.jpg"]
        if want.failure is None:
            assert all(a.is_file() and a.stat().st_size > 0 for a in artifacts), artifacts
        else:
            assert not any(a.exists() for a in artifacts), artifacts
            assert want.failure in json.dumps(sidecar), f"{stored}: sidecar does not record {want.failure}"


def _inbox_empty(stack: Stack) -> None:
    left = sorted(str(p) for p in stack.inbox.rglob("*") if p.is_file() or p.is_symlink())
    assert not left, f"{len(left)} files left in the inbox: {left[:5]}"


def _originals(store: Path) -> list[Path]:
    return [
        p
        for p in store.rglob("*")
        if p.is_file()
        and p.name != STORE_MARKER
        and not p.name.startswith(TEMP_PREFIX)
        and p.suffix != ".json"
        and not p.stem.endswith(("_THUMBNAIL", "_WEB"))
    ]


def _no_store_holds_twice(stack: Stack, expected: dict[str, Expected]) -> None:
    want = sorted(sha256_hex(e.data) for e in expected.values())
    for store in stack.stores:
        held = Counter(sha256_hex(p.read_bytes()) for p in _originals(store))
        twice = [sha for sha, n in held.items() if n > 1]
        assert not twice, f"{store} holds {len(twice)} photos twice"
        assert sorted(held.elements()) == want, f"{store} holds {sum(held.values())} originals, {len(want)} expected"


def _counts_match_disk(stack: Stack, photos: list[dict[str, Any]]) -> None:
    stats = stack.api("/api/stats")
    per_status = Counter(p["status"] for p in photos)
    for status in ("Detected", "Processed", "Archived", "Collected", "Failed", "Duplicate"):
        assert stats[status] == per_status.get(status, 0), (status, stats, dict(per_status))
    for store in stack.stores:
        on_disk = len(_originals(store))
        assert stats[FINAL] == on_disk, f"catalog says {stats[FINAL]} collected, {store} holds {on_disk}"


def _journal_in_order(stack: Stack, photos: list[dict[str, Any]]) -> None:
    history: dict[str, list[str]] = {}
    for entry in export_journal(stack):
        history.setdefault(entry["id"], []).append(entry["status"])
    for photo in photos:
        steps = history[photo["id"]]
        assert "Duplicate" not in steps, f"{photo['id']}: distinct bytes taken for a re-upload: {steps}"
        first_seen = list(dict.fromkeys(steps))
        must = ["Detected", "Failed" if photo["failed"] else "Processed", "Archived", FINAL]
        assert first_seen == must, f"{photo['id']}: journal {steps}"


def _staging_empty(stack: Stack) -> None:
    staging = stack.home / "staging"
    left = sorted(p.name for p in staging.iterdir() if not p.name.startswith(TEMP_PREFIX)) if staging.is_dir() else []
    assert not left, f"staging still holds {len(left)} photos' artifacts: {left[:5]}"


def _queue_counts(vhost: str) -> dict[str, tuple[int, int]]:
    """Queue name -> (messages, unacknowledged)."""
    lines = rabbitmqctl("list_queues", "-p", vhost, "name", "messages", "messages_unacknowledged").splitlines()
    return {
        parts[0]: (int(parts[1]), int(parts[2]))
        for line in lines
        if len(parts := line.split("\t")) == 3 and parts[1].isdigit() and parts[2].isdigit()
    }


def _queues_idle(vhost: str) -> bool:
    """Nothing waiting or in flight in any stage's queue, twice in a row a second apart."""
    for attempt in range(2):
        counts = _queue_counts(vhost)
        if not counts or any(sum(n) for name, n in counts.items() if name != "dp3.dead"):
            return False
        if attempt == 0:
            time.sleep(1)
    return True


def _nothing_dead_lettered(vhost: str) -> None:
    counts = _queue_counts(vhost)
    assert counts.get("dp3.dead", (0, 0))[0] == 0, f"messages dead-lettered: {counts}"
