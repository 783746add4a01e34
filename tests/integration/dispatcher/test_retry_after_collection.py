"""A photo whose render failed is retried after collection, from the stores' verified copy (issue 14 item 3).

A render failure is archived (without artifacts) and collected like any
other, so its original leaves the inbox. Before, the retry needed status
``Failed`` and an original in the inbox, so such a photo could never be
rendered again. Here the whole one-machine stack (scanner, dispatcher with a
real Work Queue worker, archiver, portal) runs twice on one home: first with
a memory limit too small for a 16-bit PNG (it ends ``too_large``, collected),
then with the limit raised, when the API's retry renders it from the stores.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.rabbit import create_vhost, delete_vhost, wait_for
from tests.stack import Stack, all_photos, sha256_hex
from tests.unit.dispatcher import heavy_images

pytestmark = pytest.mark.integration


def only_photo(stack: Stack) -> dict[str, Any] | None:
    photos = all_photos(stack)
    return photos[0] if len(photos) == 1 else None


def store_files(stack: Stack) -> dict[str, bytes]:
    return {
        str(path.relative_to(stack.home)): path.read_bytes()
        for store in stack.stores
        for path in sorted(store.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


@dataclass
class Retried:
    """A stack on which a 16-bit PNG failed too_large and was collected, restarted with the limit raised."""

    stack: Stack
    first: dict[str, Any]
    data: bytes
    owner: Path

    def retry(self) -> httpx.Response:
        url = f"http://127.0.0.1:{self.stack.portal_port}/api/photos/{self.first['id']}/retry"
        return httpx.post(url, auth=("admin", self.stack.password), json={}, timeout=10)


@contextlib.contextmanager
def collected_failure(
    tmp_path: Path, name: str, before_restart: Callable[[Stack, bytes], None] = lambda _stack, _data: None
) -> Iterator[Retried]:
    """Drop a 16-bit PNG (about 150 MB to decode) under a 100 MB limit, wait until it is a collected
    too_large, run ``before_restart``, then start the stack again with 1024 MB."""
    home = tmp_path / "home"
    vhost, url = create_vhost(name)
    stack = Stack(home, url, {"DP3_TASK_MEMORY_MB": "100"})
    try:
        stack.start()
        owner = stack.inbox / "ANNA-SMITH"
        owner.mkdir(parents=True, exist_ok=True)
        data = heavy_images.gray16_png(tmp_path / "scan16.png", (3000, 2500)).read_bytes()
        (owner / "scan16.png").write_bytes(data)

        def failed_and_collected() -> bool:
            found = only_photo(stack)
            return bool(found and found["status"] == "Collected" and found["failed"])

        wait_for(failed_and_collected, 120, "the photo to fail too_large and be collected")
        first = only_photo(stack)
        assert first is not None and first["error"]["kind"] == "too_large", first
        before_restart(stack, data)
        stack.stop()
        stack = Stack(home, url, {"DP3_TASK_MEMORY_MB": "1024"})  # the operator raises the limit
        stack.start()
        yield Retried(stack, first, data, owner)
    except BaseException:
        print(stack.tail_logs(80))
        raise
    finally:
        try:
            stack.stop()
        finally:
            delete_vhost(vhost)


def test_a_collected_render_failure_is_rendered_again_from_the_stores(tmp_path: Path) -> None:
    originals_before: dict[str, bytes] = {}

    def originals(stack: Stack, data: bytes) -> None:
        originals_before.update((name, content) for name, content in store_files(stack).items() if content == data)

    with collected_failure(tmp_path, "dp3-retry", originals) as retried:
        stack, first, data, owner = retried.stack, retried.first, retried.data, retried.owner
        assert "DP3_TASK_MEMORY_MB" in first["error"]["message"]
        assert not (owner / "scan16.png").exists()  # collected: the inbox no longer has it
        assert len(originals_before) == 2  # one verified copy per store
        # The user retries through the API.
        photo_id = first["id"]
        base = f"http://127.0.0.1:{stack.portal_port}/api/photos/{photo_id}/retry"
        auth = ("admin", stack.password)
        assert httpx.post(base, auth=auth, data={"x": "1"}, timeout=10).status_code == 415  # no form posts
        response = retried.retry()
        assert response.status_code == 202, response.text
        assert response.json()["attempt"] == 1

        def processed_and_collected() -> bool:
            found = only_photo(stack)
            return bool(found and found["status"] == "Collected" and not found["failed"])

        wait_for(processed_and_collected, 120, "the retried photo to be rendered, archived and collected")
        detail = stack.api(f"/api/photos/{photo_id}")
        assert detail["meta"]["sha256"] == sha256_hex(data) and detail["meta"]["format"] == "PNG"
        assert detail["error"] is None
        # The originals in the stores are the same files, untouched; the artifacts are beside them now.
        after = store_files(stack)
        assert {name: content for name, content in after.items() if content == data} == originals_before
        for store in stack.stores:
            names = sorted(path.name for path in store.rglob("*") if path.is_file() and not path.name.startswith("."))
            assert any(name.endswith("_THUMBNAIL.jpg") for name in names), names
            assert any(name.endswith("_WEB.jpg") for name in names), names
            sidecars = [path for path in store.rglob("*.json") if not path.name.startswith(".")]
            assert len(sidecars) == 1, sidecars
            journal = json.loads(sidecars[0].read_text())["journal"]
            event_ids = [event["event_id"] for event in journal]
            assert len(event_ids) == len(set(event_ids))  # no archive entry twice
        assert not list(stack.inbox.rglob("scan16.png"))  # nothing put back, nothing deleted twice
        logs = "".join(log.read_text(errors="replace") for log in (stack.home / "logs").glob("dispatcher*.log"))
        assert "rendering the stores' verified copy" in logs
