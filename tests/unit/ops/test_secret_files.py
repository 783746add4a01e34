"""Every file holding a secret is created mode 0600 (never chmodded afterwards): `make up`'s files, the portal key."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from dp3.settings import load_settings
from dp3_portal.auth import load_secret_key
from tests.unit.ops.scripts import load_script


def _stack_module() -> ModuleType:
    return load_script("deploy/local/stack.py", "dp3_local_stack")


@pytest.fixture
def no_umask_no_chmod(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """umask 0, so only the mode a file is created with protects it; and a chmod afterwards would fail."""
    old = os.umask(0)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a secret file was chmodded after it was created: {args}")

    monkeypatch.setattr(os, "chmod", refuse)
    monkeypatch.setattr(Path, "chmod", refuse)
    try:
        yield
    finally:
        os.umask(old)


def _files_holding(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_make_up_writes_the_admin_password_only_into_private_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_umask_no_chmod: None
) -> None:
    stack = _stack_module()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.delenv("DP3_ADMIN_PASSWORD", raising=False)
    (home / "supervisord.conf").write_text("left by an older version\n")  # created world-readable
    settings = load_settings(home=home, stores=(tmp_path / "a", tmp_path / "b"), mongo_url="mongodb://127.0.0.1:1/")
    password = stack.admin_password(settings)
    env = stack.stack_environment(settings, password)
    conf = stack.write_stack_files(settings, env)
    assert password in conf.read_text()
    holding = _files_holding(home, password)
    assert {p.name for p in holding} == {"admin-password", "supervisord.conf", "stack-env.json"}
    for path in holding:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stack.admin_password(settings) == password  # kept, not generated again


def test_the_portal_secret_key_is_created_private(tmp_path: Path, no_umask_no_chmod: None) -> None:
    key = load_secret_key(None, tmp_path)
    [path] = _files_holding(tmp_path, key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
