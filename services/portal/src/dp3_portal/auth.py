"""Users, sessions, CSRF and login slowdown.

* Users live in the ``users`` collection with argon2 hashes. An unknown name
  costs the same argon2 verification as a wrong password (against a dummy
  hash), and both get the same answer, so a login never reveals who exists.
* A session is a cookie signed with the portal's secret (itsdangerous, with
  an expiry), HttpOnly and SameSite=Lax; it holds the user name only.
* CSRF: every form carries the value of the ``dp3_csrf`` cookie (double
  submit, compared in constant time); a cross-site page can neither read the
  cookie nor, SameSite, send it with a POST.
* Repeated failures for one name or one client slow every further attempt
  down (doubling delays), so guessing is slow even across names.
* HTTP Basic credentials are accepted too, for scripts; a verified pair is
  remembered for a minute so a script does not pay argon2 on every call.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pymongo.asynchronous.database import AsyncDatabase

from dp3.files import atomic_write_bytes
from dp3_portal.store_schema import USERS

SESSION_COOKIE = "dp3_session"
CSRF_COOKIE = "dp3_csrf"
CSRF_FIELD = "csrf_token"
ADMIN = "admin"
MAX_DELAY = 30.0
FAILURE_WINDOW = 900.0
BASIC_CACHE_SECONDS = 60.0

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Constant work whether or not the user exists."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def valid_username(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "-_.@" for c in name)


def load_secret_key(configured: str | None, home: Path) -> str:
    """``DP3_SECRET_KEY``, else one generated once and kept in ``$DP3_HOME/portal-secret-key`` (0600)."""
    if configured:
        return configured
    path = home / "portal-secret-key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, key.encode())
    path.chmod(0o600)
    return path.read_text().strip()


class Users:
    """The ``users`` collection."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[USERS]

    async def set_password(self, name: str, password: str) -> None:
        if not valid_username(name):
            raise ValueError(f"not a user name: {name!r} (letters, digits, - _ . @)")
        if not password:
            raise ValueError("the password is empty")
        hashed = await asyncio.to_thread(hash_password, password)
        # update_one + $set: nx-27017's replace_one upsert ignores the filter's _id.
        await self.collection.update_one({"_id": name}, {"$set": {"password_hash": hashed}}, upsert=True)

    async def exists(self, name: str) -> bool:
        return await self.collection.find_one({"_id": name}) is not None

    async def check(self, name: str, password: str) -> bool:
        found = await self.collection.find_one({"_id": name}) if valid_username(name) else None
        stored = str(found["password_hash"]) if found else None
        return await asyncio.to_thread(verify_password, stored, password)

    async def ensure_admin(self, configured: str | None) -> str | None:
        """Give ``admin`` the configured password; without one, create it once with a random one (returned)."""
        if configured:
            await self.set_password(ADMIN, configured)
            return None
        if await self.exists(ADMIN):
            return None
        generated = secrets.token_urlsafe(12)
        await self.set_password(ADMIN, generated)
        return generated


class Sessions:
    """Signed session cookies and CSRF tokens."""

    def __init__(self, secret: str, max_age_seconds: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="dp3-portal-session")
        self.max_age = int(max_age_seconds)

    def issue(self, user: str) -> str:
        return self._serializer.dumps({"u": user, "n": secrets.token_hex(8)})

    def user(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        user = data.get("u") if isinstance(data, dict) else None
        return user if isinstance(user, str) else None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(cookie: str | None, submitted: str | None) -> bool:
    return bool(cookie) and bool(submitted) and hmac.compare_digest(str(cookie), str(submitted))


@dataclass
class LoginThrottle:
    """Counts recent failures per key (a user name, a client address); answers how long to wait."""

    free_attempts: int
    first_delay: float
    failures: dict[str, list[float]] = field(default_factory=dict)

    def delay(self, *keys: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        worst = 0
        for key in keys:
            recent = [t for t in self.failures.get(key, []) if now - t < FAILURE_WINDOW]
            self.failures[key] = recent
            worst = max(worst, len(recent))
        extra = worst - self.free_attempts
        return 0.0 if extra < 0 else min(self.first_delay * 2**extra, MAX_DELAY)

    def failed(self, *keys: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in keys:
            self.failures.setdefault(key, []).append(now)

    def succeeded(self, *keys: str) -> None:
        for key in keys:
            self.failures.pop(key, None)


@dataclass
class BasicCache:
    """Verified Basic credentials, by a hash of the pair, for a short while."""

    entries: dict[str, float] = field(default_factory=dict)

    @staticmethod
    def _key(user: str, password: str) -> str:
        return hashlib.sha256(f"{user}\0{password}".encode()).hexdigest()

    def known(self, user: str, password: str) -> bool:
        expires = self.entries.get(self._key(user, password))
        return expires is not None and expires > time.monotonic()

    def remember(self, user: str, password: str) -> None:
        if len(self.entries) > 1000:
            self.entries.clear()
        self.entries[self._key(user, password)] = time.monotonic() + BASIC_CACHE_SECONDS
