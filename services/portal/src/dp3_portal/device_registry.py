"""The portal's side of the field-device registry (``dp3.devices``): add, list, revoke.

The registry's format, token and rules live in :mod:`dp3.devices`, shared
with the intake, which speaks synchronous pymongo; the portal's pages are
asynchronous, so the calls run in a thread over a client of their own. What
an administrator may type is checked here first (:func:`owner_problem`,
:func:`label_problem`): a device bound to a folder the scanner would never
read would upload photos no one sees.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient

from dp3 import devices, filenames
from dp3.devices import DeviceRecord
from dp3.inbox_names import name_ignore_reason

LABEL_MAX = 100


def owner_problem(owner: str) -> str | None:
    """Why ``owner`` cannot be a photographer's inbox folder (``FIRST-LAST``), or None. Pure.

    The same rule as a folder the scanner takes as an owner: one plain name,
    not one it ignores (hidden or temporary).
    """
    if not owner:
        return "name the photographer's folder, e.g. JAEGER-NICHOLAS"
    if owner != owner.strip():
        return "the folder name starts or ends with a space"
    if "/" in owner or "\\" in owner:
        return "the folder is one name, without a path separator"
    if owner in (".", ".."):
        return "'.' and '..' are not folder names"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in owner):
        return "the folder name has a control character"
    if len(owner.encode("utf-8")) > filenames.NAME_MAX:
        return f"the folder name is longer than {filenames.NAME_MAX} bytes"
    reason = name_ignore_reason(owner)
    if reason is not None:
        return f"the scanner ignores such folders ({reason.value}): photos there would never be seen"
    return None


def label_problem(label: str) -> str | None:
    """Why ``label`` cannot name a device, or None (an empty label is the folder's name)."""
    if len(label) > LABEL_MAX:
        return f"the label is longer than {LABEL_MAX} characters"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in label):
        return "the label has a control character"
    return None


def pairing_command(head_node_url: str, token: str) -> str:
    """The one line a photographer runs on the laptop (the field agent's ``pair``, docs/field-uploads.md)."""
    return f"dp3-field pair {head_node_url.rstrip('/')}/ {token}"


@dataclass(frozen=True)
class NewDevice:
    """A device just added, with its token: the only moment the token exists outside the device."""

    record: DeviceRecord
    token: str


class DeviceRegistry:
    """``dp3.devices`` over its own synchronous client; every call runs in a thread."""

    def __init__(self, mongo_url: str, database: str) -> None:
        self.client: MongoClient[dict[str, Any]] = MongoClient(mongo_url)
        self.collection = self.client[database][devices.COLLECTION]

    async def add(self, owner: str, label: str, now: dt.datetime | None = None) -> NewDevice:
        """A new device for ``owner`` (checked first: :func:`owner_problem`, :func:`label_problem`)."""
        record, token = await asyncio.to_thread(devices.create, self.collection, owner=owner, label=label, now=now)
        return NewDevice(record, token)

    async def all(self) -> list[DeviceRecord]:
        return await asyncio.to_thread(devices.list_devices, self.collection)

    async def revoke(self, device_id: str) -> bool:
        return await asyncio.to_thread(devices.revoke, self.collection, device_id)

    def close(self) -> None:
        self.client.close()
