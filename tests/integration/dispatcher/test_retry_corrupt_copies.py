"""A retry after collection when the stores' copies of the original are damaged (issue 14 item 3).

The retry renders only bytes that hash to the photo's sha256: a copy damaged
in one store is passed over for the other's; with every copy damaged the
photo fails with a specific reason the photo's page shows, and nothing in
the stores is deleted or overwritten with other bytes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.dispatcher.test_retry_after_collection import collected_failure, only_photo, store_files
from tests.rabbit import wait_for
from tests.stack import Stack

pytestmark = pytest.mark.integration


def damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damaged", [1, 2])
def test_a_retry_renders_only_a_verified_store_copy(tmp_path: Path, damaged: int) -> None:
    before: dict[str, bytes] = {}

    def damage_copies(stack: Stack, data: bytes) -> None:
        originals = [stack.home / name for name, content in store_files(stack).items() if content == data]
        assert len(originals) == 2
        for path in originals[:damaged]:
            damage(path)
        before.update(store_files(stack))

    with collected_failure(tmp_path, "dp3-retry-damaged", damage_copies) as retried:
        response = retried.retry()
        assert response.status_code == 202, response.text
        if damaged == 1:

            def rendered() -> bool:
                found = only_photo(retried.stack)
                return bool(found and found["status"] == "Collected" and not found["failed"])

            wait_for(rendered, 120, "the retry to render the intact copy")
        else:

            def refused() -> bool:
                found = only_photo(retried.stack)
                return bool(found and found["error"] and "no store holds a copy" in found["error"]["message"])

            wait_for(refused, 120, "the retry to fail, and say so, for want of a verified copy")
            assert only_photo(retried.stack)["error"]["kind"] == "unreadable"  # type: ignore[index]
        after = store_files(retried.stack)
        for name, content in before.items():  # nothing deleted; a damaged copy only ever repaired
            assert name in after, name
            assert after[name] in (content, retried.data) if name.endswith(".png") else True, name
