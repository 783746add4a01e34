"""Field devices: the token format, its hashing, and the ``devices`` registry.

A field device (a laptop at a dig site running ``dp3-field``) is bound to one
photographer's folder and holds one bearer token, shown once when an
administrator adds it in the portal (docs/field-uploads.md):

    dp3d_<device id>_<secret>        device id: 12 hex, secret: token_urlsafe(32)

The device id in the clear lets the intake find the record with one indexed
read; the secret is what proves the caller. Only ``sha256(token)`` is stored:
the secret has 256 bits of entropy, so a slow password hash would buy nothing
and cost a hash per request. The comparison with the stored hash is
constant-time all the same, so a timing difference never tells an attacker how
much of a guess was right.

The registry is the MongoDB collection ``devices``, owned by the portal (it
creates, lists and revokes) and read by the intake (it finds by token and
marks ``last_seen_at``). Both go through the functions here, so the format and
the rules exist once. The token format and hashing are pure; the registry
functions are thin I/O over a synchronous pymongo collection (the portal's
async code runs them in a thread, as it does its other blocking calls).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pymongo.collection import Collection

COLLECTION = "devices"
"""The MongoDB collection of field devices (in the portal's database, ``DP3_MONGO_DATABASE``)."""

TOKEN_PREFIX = "dp3d"  # noqa: S105 - the public prefix of every token, not a secret
DEVICE_ID_HEX = 12
SECRET_BYTES = 32
LAST_SEEN_EVERY = dt.timedelta(minutes=1)
"""``last_seen_at`` is written at most this often per device: one write a minute, not one a chunk."""

_DEVICE_ID = re.compile(r"[0-9a-f]{12}")
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet. The
# secret may itself contain "_", so the token is split at the first two "_" only.
_SECRET = re.compile(r"[A-Za-z0-9_-]{43}")


class MalformedToken(ValueError):
    """A string that is not a device token; the message says which part is wrong.

    A ``ValueError``, not a :class:`dp3.errors.DP3Error`: callers catch it as a bad value.
    """


class DeviceToken(BaseModel):
    """A token taken apart: the device it names and the whole string (to hash)."""

    model_config = ConfigDict(frozen=True)

    device_id: str
    token: str = Field(repr=False)


class DeviceRecord(BaseModel):
    """One document of the ``devices`` collection (docs/field-uploads.md)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    id: str = Field(alias="_id", description="the device id, 12 hex")
    owner: str = Field(description="the photographer's folder (FIRST-LAST) it may write to")
    label: str = Field(description="what the administrator called it")
    token_sha256: str = Field(repr=False, description="hex sha256 of the whole token")
    created_at: dt.datetime
    last_seen_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def to_document(self) -> dict[str, Any]:
        """The MongoDB document, ``_id`` included."""
        return self.model_dump(by_alias=True)


def new_device_id() -> str:
    return secrets.token_hex(DEVICE_ID_HEX // 2)


def new_token(device_id: str | None = None) -> str:
    """A fresh token for ``device_id`` (a new id when None)."""
    device_id = new_device_id() if device_id is None else device_id
    if not _DEVICE_ID.fullmatch(device_id):
        raise ValueError(f"a device id is {DEVICE_ID_HEX} lower-case hex digits, got {device_id!r}")
    return f"{TOKEN_PREFIX}_{device_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def parse_token(token: str) -> DeviceToken:
    """The device id of a well-formed token; :class:`MalformedToken` naming what is wrong otherwise.

    The message never repeats the token, which may be a real secret pasted
    with a typo: it would end up in a log.
    """
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        raise MalformedToken(f"a device token starts with {TOKEN_PREFIX}_<device id>_")
    _, device_id, secret = parts
    if not _DEVICE_ID.fullmatch(device_id):
        raise MalformedToken(f"the device id in a token is {DEVICE_ID_HEX} lower-case hex digits")
    if not _SECRET.fullmatch(secret):
        raise MalformedToken("the secret in a token is 43 characters of URL-safe base64")
    return DeviceToken(device_id=device_id, token=token)


def token_sha256(token: str) -> str:
    """The hex sha256 the registry stores for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_sha256: str) -> bool:
    """Whether ``token`` hashes to ``stored_sha256``, compared in constant time."""
    return hmac.compare_digest(token_sha256(token).encode(), stored_sha256.encode())


def should_touch(last_seen_at: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a call at ``now`` updates ``last_seen_at`` (at most once per :data:`LAST_SEEN_EVERY`)."""
    return last_seen_at is None or now - _aware(last_seen_at) >= LAST_SEEN_EVERY


def _aware(moment: dt.datetime) -> dt.datetime:
    # pymongo returns naive UTC datetimes unless the client is tz_aware.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# -- the registry (I/O over a pymongo collection) ------------------------------

Devices = Collection[dict[str, Any]]


def create(devices: Devices, *, owner: str, label: str, now: dt.datetime | None = None) -> tuple[DeviceRecord, str]:
    """Add a device for ``owner``; returns its record and its token, which is never available again."""
    if not owner or "/" in owner or owner in (".", ".."):
        raise ValueError(f"owner must be one folder name, got {owner!r}")
    device_id = new_device_id()
    token = new_token(device_id)
    record = DeviceRecord(
        id=device_id,
        owner=owner,
        label=label.strip() or owner,
        token_sha256=token_sha256(token),
        created_at=now or _now(),
    )
    devices.insert_one(record.to_document())
    return record, token


def list_devices(devices: Devices) -> list[DeviceRecord]:
    """Every device, revoked ones included (the portal shows them struck out), oldest first."""
    return [DeviceRecord.model_validate(doc) for doc in devices.find({}).sort("created_at", 1)]


def revoke(devices: Devices, device_id: str, now: dt.datetime | None = None) -> bool:
    """Revoke a device's token; True when it was active. Revoking twice keeps the first time."""
    result = devices.update_one({"_id": device_id, "revoked_at": None}, {"$set": {"revoked_at": now or _now()}})
    return result.modified_count == 1


def _matching(devices: Devices, token: str) -> DeviceRecord | None:
    parsed = parse_token(token)
    doc = devices.find_one({"_id": parsed.device_id})
    if doc is None:
        return None
    record = DeviceRecord.model_validate(doc)
    return record if token_matches(token, record.token_sha256) else None


def find_by_token(devices: Devices, token: str) -> DeviceRecord | None:
    """The active device this token belongs to; None for an unknown or revoked one.

    Raises :class:`MalformedToken` for a string that is not a token at all, so
    the caller can tell "malformed" from "unknown" as the contract asks.
    """
    record = _matching(devices, token)
    return None if record is None or record.revoked else record


def lookup(devices: Devices, token: str) -> tuple[DeviceRecord | None, str]:
    """The active device of ``token`` and, when there is none, why: ``unknown`` or ``revoked``.

    Raises :class:`MalformedToken` like :func:`find_by_token`.
    """
    record = _matching(devices, token)
    if record is None:
        return None, "unknown"
    if record.revoked:
        return None, "revoked"
    return record, ""


def touch_last_seen(devices: Devices, record: DeviceRecord, now: dt.datetime | None = None) -> bool:
    """Set ``last_seen_at`` to now unless it was set within the last minute; True when written.

    The filter repeats the condition, so two intake workers racing write once.
    """
    now = now or _now()
    if not should_touch(record.last_seen_at, now):
        return False
    threshold = now - LAST_SEEN_EVERY
    result = devices.update_one(
        {"_id": record.id, "$or": [{"last_seen_at": None}, {"last_seen_at": {"$lte": threshold}}]},
        {"$set": {"last_seen_at": now}},
    )
    return result.modified_count == 1
