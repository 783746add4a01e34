"""Users, sessions, CSRF and login slowdown.

* Users live in the ``users`` collection with argon2 hashes. An unknown name
  costs the same argon2 verification as a wrong password (against a dummy
  hash), and both get the same answer, so a login never reveals who exists.
* A session is a cookie signed with the portal's secret (itsdangerous, with
  an expiry), HttpOnly and SameSite=Lax (Secure with ``DP3_SECURE_COOKIES``);
  it holds the user name and a random session id. The id is also a document
  in the ``sessions`` collection (by its sha256, so the catalog holds no usable
  token), looked up on every request: logout deletes it, and a password
  change or the user's removal deletes all of the user's, so a copied cookie
  stops working at once.
* CSRF: every form carries the value of the ``dp3_csrf`` cookie (double
  submit, compared in constant time); a cross-site page can neither read the
  cookie nor, SameSite, send it with a POST.
* Repeated failures for one name or one client slow every further attempt
  down (doubling delays), so guessing is slow even across names. Attempts
  for one name or client take turns (each is given a start time after the
  one before it), so parallel guesses wait like sequential ones; one that
  would have to wait longer than ``MAX_DELAY`` is refused unchecked (429).
  The table is bounded (least recently used names go first).
* HTTP Basic credentials are accepted too, for scripts; a verified pair is
  remembered for a minute (with the user's current password hash, so a
  password change or removal ends it) and a script does not pay argon2 on
  every call.
* Files holding secrets are created mode 0600 (never chmodded afterwards).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pymongo.asynchronous.database import AsyncDatabase

from dp3.files import write_secret
from dp3_portal.store_schema import SESSIONS, USERS

SESSION_COOKIE = "dp3_session"
CSRF_COOKIE = "dp3_csrf"
CSRF_FIELD = "csrf_token"
ADMIN = "admin"
MAX_DELAY = 30.0
FAILURE_WINDOW = 900.0
BASIC_CACHE_SECONDS = 60.0
THROTTLE_KEYS = 10_000
"""Names and clients the login throttle remembers at most (the least recently seen are forgotten first)."""

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
    write_secret(path, key.encode())
    return path.read_text().strip()


def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class Users:
    """The ``users`` collection, and the end of a user's sessions when the password changes or the user goes."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.collection = db[USERS]
        self.sessions = db[SESSIONS]

    async def set_password(self, name: str, password: str) -> None:
        if not valid_username(name):
            raise ValueError(f"not a user name: {name!r} (letters, digits, - _ . @)")
        if not password:
            raise ValueError("the password is empty")
        hashed = await asyncio.to_thread(hash_password, password)
        # update_one + $set: nx-27017's replace_one upsert ignores the filter's _id.
        await self.collection.update_one({"_id": name}, {"$set": {"password_hash": hashed}}, upsert=True)
        await self.sessions.delete_many({"user": name})  # a new password ends every session of the old one

    async def remove(self, name: str) -> bool:
        """Delete the user and end its sessions; False if there was no such user."""
        removed = await self.collection.delete_one({"_id": name})
        await self.sessions.delete_many({"user": name})
        return removed.deleted_count > 0

    async def exists(self, name: str) -> bool:
        return await self.collection.find_one({"_id": name}) is not None

    async def password_hash(self, name: str) -> str | None:
        found = await self.collection.find_one({"_id": name}) if valid_username(name) else None
        return str(found["password_hash"]) if found else None

    async def check(self, name: str, password: str) -> bool:
        stored = await self.password_hash(name)
        return await asyncio.to_thread(verify_password, stored, password)

    async def ensure_admin(self, configured: str | None) -> str | None:
        """Seed ``admin`` only if there is none: with the configured password, else a random one (returned).

        An existing admin is never touched, so ``dp3 users add admin`` is not undone by the next start.
        """
        if await self.exists(ADMIN):
            return None
        if configured:
            await self.set_password(ADMIN, configured)
            return None
        generated = secrets.token_urlsafe(12)
        await self.set_password(ADMIN, generated)
        return generated


@dataclass(frozen=True)
class SessionCookie:
    user: str
    session_id: str


class Sessions:
    """Signed session cookies: who, and which server-side session (pure; see :class:`SessionTable`)."""

    def __init__(self, secret: str, max_age_seconds: float) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="dp3-portal-session")
        self.max_age = int(max_age_seconds)

    def issue(self, user: str, session_id: str | None = None) -> str:
        return self._serializer.dumps({"u": user, "s": session_id or secrets.token_urlsafe(32)})

    def read(self, cookie: str | None) -> SessionCookie | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.max_age)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        user, session_id = data.get("u"), data.get("s")
        if not isinstance(user, str) or not isinstance(session_id, str):
            return None  # also every cookie from before sessions had ids
        return SessionCookie(user, session_id)

    def user(self, cookie: str | None) -> str | None:
        found = self.read(cookie)
        return None if found is None else found.user


class SessionTable:
    """The ``sessions`` collection: a session is valid only while its document is there and unexpired."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]], max_age_seconds: float) -> None:
        self.collection = db[SESSIONS]
        self.max_age = max_age_seconds

    async def start(self, user: str) -> str:
        """A new session for ``user``; its id (for the cookie). Expired sessions are swept here."""
        now = time.time()
        await self.collection.delete_many({"expires_at": {"$lt": now}})
        session_id = secrets.token_urlsafe(32)
        document = {"_id": _session_key(session_id), "user": user, "started_at": now, "expires_at": now + self.max_age}
        await self.collection.insert_one(document)
        return session_id

    async def valid(self, cookie: SessionCookie) -> bool:
        found = await self.collection.find_one({"_id": _session_key(cookie.session_id)})
        return found is not None and found.get("user") == cookie.user and float(found["expires_at"]) > time.time()

    async def end(self, cookie: SessionCookie) -> None:
        await self.collection.delete_one({"_id": _session_key(cookie.session_id)})


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)


def csrf_ok(cookie: str | None, submitted: str | None) -> bool:
    return bool(cookie) and bool(submitted) and hmac.compare_digest(str(cookie), str(submitted))


class TooManyAttempts(Exception):
    """A login attempt refused unchecked: it would have waited longer than ``MAX_DELAY`` for its turn.

    Not a :class:`dp3.errors.DP3Error`: it is an answer to one request, turned into an HTTP
    response by the app, and never leaves the service.
    """

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many login attempts; try again in {math.ceil(retry_after)} s")
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass
class _Recent:
    """One name's or client's recent failures, attempts under way, and when the next one may start."""

    failures: deque[float] = field(default_factory=lambda: deque(maxlen=64))
    pending: int = 0
    next_start: float = 0.0

    def idle(self, now: float) -> bool:
        return self.pending == 0 and self.next_start <= now and not any(now - t < FAILURE_WINDOW for t in self.failures)


class LoginThrottle:
    """Counts recent failures per key (a user name, a client address) and gives each attempt its turn.

    An attempt's turn comes after the previous attempt's turn for any of its
    keys, plus a delay that doubles with every failure (or attempt under way)
    beyond the free ones. So fifty guesses sent at once are checked one after
    another, as slowly as fifty sent in a row; a guess whose turn is more than
    ``MAX_DELAY`` away is refused without being checked. At most ``max_keys``
    keys are remembered, the least recently seen forgotten first.
    """

    def __init__(self, free_attempts: int, first_delay: float, *, max_keys: int = THROTTLE_KEYS) -> None:
        self.free_attempts = free_attempts
        self.first_delay = first_delay
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Recent] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def _recent(self, key: str, now: float) -> _Recent:
        recent = self._keys.get(key)
        if recent is None:
            recent = self._keys[key] = _Recent()
        self._keys.move_to_end(key)
        while recent.failures and now - recent.failures[0] >= FAILURE_WINDOW:
            recent.failures.popleft()
        return recent

    def _sweep(self, now: float, keep: Sequence[str]) -> None:
        """Forget the least recently seen keys that are idle, and any beyond ``max_keys`` (never ``keep``)."""
        for key in list(self._keys):
            if key in keep:
                continue
            if len(self._keys) <= self.max_keys and not self._keys[key].idle(now):
                break
            del self._keys[key]

    def _delay_for(self, count: int) -> float:
        extra = count - self.free_attempts
        return 0.0 if extra < 0 else min(self.first_delay * 2**extra, MAX_DELAY)

    def admit(self, keys: Sequence[str], now: float | None = None) -> float:
        """The monotonic time this attempt may be checked at; raises TooManyAttempts if that is too far off."""
        now = time.monotonic() if now is None else now
        entries = [self._recent(key, now) for key in keys]
        count = max((len(e.failures) + e.pending for e in entries), default=0)
        start = max([now, *(e.next_start for e in entries)]) + self._delay_for(count)
        if start - now > MAX_DELAY:
            self._sweep(now, keys)
            raise TooManyAttempts(start - now - MAX_DELAY)
        for entry in entries:
            entry.pending += 1
            entry.next_start = max(entry.next_start, start)
        self._sweep(now, keys)
        return start

    def finish(self, keys: Sequence[str], ok: bool | None, now: float | None = None) -> None:
        """An admitted attempt is over: ``ok`` True (success), False (a failure), None (not checked)."""
        now = time.monotonic() if now is None else now
        for key in keys:
            recent = self._keys.get(key)
            if recent is None:
                continue  # forgotten meanwhile (the table is bounded)
            recent.pending = max(0, recent.pending - 1)
            if ok:
                recent.failures.clear()
            elif ok is False:
                recent.failures.append(now)

    async def attempt(self, keys: Sequence[str], check: Callable[[], Awaitable[bool]]) -> bool:
        """Wait for this attempt's turn, run ``check`` and count its outcome; TooManyAttempts if refused."""
        start = self.admit(keys)
        outcome: bool | None = None
        try:
            wait = start - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            outcome = await check()
            return outcome
        finally:
            self.finish(keys, outcome)


@dataclass
class BasicCache:
    """Verified Basic credentials, by a hash of the pair and the user's current password hash, for a short while."""

    entries: OrderedDict[str, float] = field(default_factory=OrderedDict)
    max_entries: int = 1000

    @staticmethod
    def _key(user: str, password: str, stored_hash: str) -> str:
        return hashlib.sha256(f"{user}\0{password}\0{stored_hash}".encode()).hexdigest()

    def known(self, user: str, password: str, stored_hash: str | None) -> bool:
        if stored_hash is None:
            return False  # the user is gone
        expires = self.entries.get(self._key(user, password, stored_hash))
        return expires is not None and expires > time.monotonic()

    def remember(self, user: str, password: str, stored_hash: str) -> None:
        self.entries[self._key(user, password, stored_hash)] = time.monotonic() + BASIC_CACHE_SECONDS
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
