"""Pure parts of authentication: password checks, throttling, CSRF, the persisted secret."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dp3_portal.auth import (
    MAX_DELAY,
    BasicCache,
    LoginThrottle,
    Sessions,
    TooManyAttempts,
    csrf_ok,
    hash_password,
    load_secret_key,
    valid_username,
    verify_password,
)


def test_passwords_verify_only_against_their_own_hash() -> None:
    stored = hash_password("right")
    assert stored.startswith("$argon2")
    assert verify_password(stored, "right")
    assert not verify_password(stored, "wrong")
    assert not verify_password(None, "right")  # an unknown user never matches, at the same cost
    assert not verify_password("not a hash", "right")


def _fail(throttle: LoginThrottle, keys: tuple[str, ...], now: float) -> float:
    start = throttle.admit(keys, now=now)
    throttle.finish(keys, False, now=start)
    return start - now


def test_failures_slow_down_after_the_free_attempts_and_double() -> None:
    throttle = LoginThrottle(free_attempts=2, first_delay=0.5)
    assert _fail(throttle, ("user:a", "client:1"), 0) == 0
    assert _fail(throttle, ("user:a", "client:1"), 1) == 0
    assert _fail(throttle, ("user:a",), 2) == 0.5
    assert _fail(throttle, ("user:b", "client:1"), 10) == 0.5  # another name from the same client
    assert _fail(throttle, ("user:c", "client:1"), 20) == 1.0
    assert throttle.admit(("user:a",), now=2000) == 2000  # old failures expire
    throttle.finish(("user:a",), True, now=2000)
    throttle.finish(("client:1",), True, now=2000)
    assert throttle.admit(("client:1",), now=2001) == 2001


def test_parallel_guesses_take_turns_and_the_far_ones_are_refused_unchecked() -> None:
    throttle = LoginThrottle(free_attempts=2, first_delay=0.5)
    keys = ("user:admin", "client:1")
    starts, refused = [], 0
    for _ in range(50):  # fifty at the same instant, none finished yet
        try:
            starts.append(throttle.admit(keys, now=0))
        except TooManyAttempts as exc:
            refused += 1
            assert exc.retry_after >= 1
    assert starts[:2] == [0, 0]
    assert starts[2:] == sorted(starts[2:]) and len(set(starts[2:])) == len(starts[2:])  # one after another
    assert starts == [0, 0, 0.5, 1.5, 3.5, 7.5, 15.5] and max(starts) <= MAX_DELAY
    assert refused == 43
    # as many as if they had come one by one: the next free turn is after the last one given
    with pytest.raises(TooManyAttempts):
        throttle.admit(("user:admin", "client:2"), now=1)


def test_the_throttle_table_stays_bounded() -> None:
    throttle = LoginThrottle(free_attempts=2, first_delay=0.5, max_keys=100)
    for n in range(10_000):
        _fail(throttle, (f"user:u{n}", f"client:{n}"), n * 0.001)  # a name and an address each time
    assert len(throttle) <= 100
    quiet = LoginThrottle(free_attempts=2, first_delay=0.5)
    for n in range(1000):
        _fail(quiet, (f"user:u{n}",), n * 1000.0)  # each one's failure has long expired by the next
    assert len(quiet) <= 2


def test_an_attempt_that_is_cancelled_does_not_count() -> None:
    throttle = LoginThrottle(free_attempts=1, first_delay=10)

    async def run() -> None:
        async def never() -> bool:
            await asyncio.sleep(3600)
            return False

        task = asyncio.ensure_future(throttle.attempt(("user:x",), never))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    recent = throttle._keys["user:x"]
    assert recent.pending == 0 and not recent.failures  # released, and not counted as a failure


def test_sessions_are_signed_and_expire() -> None:
    sessions = Sessions("secret-one", 3600)
    cookie = sessions.issue("alice", "sid-1")
    found = sessions.read(cookie)
    assert found is not None and (found.user, found.session_id) == ("alice", "sid-1")
    assert Sessions("secret-two", 3600).read(cookie) is None
    payload, rest = cookie.split(".", 1)
    forged = sessions.issue("mallory").split(".", 1)[0]
    assert sessions.read(f"{forged}.{rest}") is None  # alice's signature on mallory's payload
    assert sessions.user(f"{payload}.{rest}") == "alice"
    assert Sessions("secret-one", -1).read(cookie) is None


def test_a_cookie_without_a_session_id_is_no_session() -> None:
    from itsdangerous import URLSafeTimedSerializer

    old_style = URLSafeTimedSerializer("secret-one", salt="dp3-portal-session").dumps({"u": "alice", "n": "ab"})
    assert Sessions("secret-one", 3600).read(old_style) is None


def test_cached_basic_credentials_end_with_the_password() -> None:
    cache = BasicCache(max_entries=10)
    cache.remember("alice", "pw", "$argon2-hash-1")
    assert cache.known("alice", "pw", "$argon2-hash-1")
    assert not cache.known("alice", "pw", "$argon2-hash-2")  # the password was changed
    assert not cache.known("alice", "pw", None)  # the user was removed
    for n in range(100):
        cache.remember(f"u{n}", "pw", "h")
    assert len(cache.entries) == 10


def test_csrf_needs_the_same_non_empty_token() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", "abd")
    assert not csrf_ok(None, "")
    assert not csrf_ok("", "")


def test_a_generated_secret_is_kept_private_and_reused(tmp_path: Path) -> None:
    first = load_secret_key(None, tmp_path)
    assert len(first) >= 40
    assert (tmp_path / "portal-secret-key").stat().st_mode & 0o777 == 0o600
    assert load_secret_key(None, tmp_path) == first
    assert load_secret_key("configured", tmp_path) == "configured"


def test_user_names_are_plain() -> None:
    assert valid_username("jaeger.nicholas@lab")
    assert not valid_username("")
    assert not valid_username("a b")
    assert not valid_username("../x")


def test_the_throttle_keeps_small_keys_whatever_name_is_sent() -> None:
    """The table is bounded in entries; a megabyte of user name per guess must not make each entry a megabyte."""
    from starlette.requests import Request

    from dp3_portal.routes.deps import throttle_keys

    request = Request({"type": "http", "client": ("203.0.113.9", 5555), "headers": []})
    throttle = LoginThrottle(free_attempts=2, first_delay=0.0)
    for n in range(50):
        keys = throttle_keys(request, f"{n}" + "x" * 1_000_000)
        assert sum(len(key) for key in keys) < 100
        throttle.finish(keys, False, now=throttle.admit(keys, now=n * 1000.0))
    assert sum(len(key) for key in throttle._keys) < 1000
    assert throttle_keys(request, "jaeger.nicholas@lab")[0] == "user:jaeger.nicholas@lab"
    assert throttle_keys(request, "admin") != throttle_keys(request, "admin ")  # a real name keeps its own key
