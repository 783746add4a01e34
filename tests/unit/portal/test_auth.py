"""Pure parts of authentication: password checks, throttling, CSRF, the persisted secret."""

from __future__ import annotations

from pathlib import Path

from dp3_portal.auth import (
    LoginThrottle,
    Sessions,
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


def test_failures_slow_down_after_the_free_attempts_and_double() -> None:
    throttle = LoginThrottle(free_attempts=2, first_delay=0.5)
    assert throttle.delay("user:a", now=0) == 0
    throttle.failed("user:a", "client:1", now=0)
    throttle.failed("user:a", "client:1", now=1)
    assert throttle.delay("user:a", now=2) == 0.5
    throttle.failed("user:b", "client:1", now=2)  # another name from the same client
    assert throttle.delay("user:c", "client:1", now=3) == 1.0
    assert throttle.delay("user:a", now=2000) == 0  # old failures expire
    throttle.succeeded("client:1")
    assert throttle.delay("client:1", now=3) == 0


def test_sessions_are_signed_and_expire() -> None:
    sessions = Sessions("secret-one", 3600)
    cookie = sessions.issue("alice")
    assert sessions.user(cookie) == "alice"
    assert Sessions("secret-two", 3600).user(cookie) is None
    payload, rest = cookie.split(".", 1)
    forged = sessions.issue("mallory").split(".", 1)[0]
    assert sessions.user(f"{forged}.{rest}") is None  # alice's signature on mallory's payload
    assert sessions.user(f"{payload}.{rest}") == "alice"
    assert Sessions("secret-one", -1).user(cookie) is None


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
