"""A real Docker engine and DP3's images for the compose tests.

No engine is no reason to pass: when scripts/ensure-docker.sh cannot start one
the tests fail with its reason. DP3_SKIP_DOCKER=1 is the only way to leave them
out (a machine that cannot run containers at all, said out loud).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.compose.prebuild import LOG, wait_for_prebuild
from tests.compose.stack import ComposeStack, run
from tests.rabbit import REPO_ROOT

SCRIPTS = REPO_ROOT / "scripts"


def timed(what: str, command: list[str], timeout: float = 1200) -> str:
    started = time.monotonic()
    out = run(command, timeout=timeout)
    print(f"compose test: {what} took {time.monotonic() - started:.0f}s")
    return out


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if os.environ.get("DP3_SKIP_DOCKER") == "1":
        pytest.skip("DP3_SKIP_DOCKER=1: the compose stack is not tested on this machine")
    try:
        run([str(SCRIPTS / "ensure-docker.sh")], timeout=120)
    except AssertionError as error:
        pytest.fail(f"no Docker engine (set DP3_SKIP_DOCKER=1 to leave the compose tests out):\n{error}")
    waited = wait_for_prebuild()
    if waited > 1:
        print(f"compose test: waited {waited:.0f}s for the background image build ({LOG})")


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    """The local Debian base (built once per inputs hash), and the wheelhouse beside it."""
    tag = timed("base image", [str(SCRIPTS / "build-base-image.sh")]).strip().splitlines()[-1]
    timed("wheelhouse", [str(SCRIPTS / "build-wheelhouse.sh")])
    return tag


@pytest.fixture(scope="session")
def trixie_base(docker_engine: None) -> str:
    """The condor profile's base: HTCondor is packaged in trixie only."""
    return timed("trixie base image", [str(SCRIPTS / "build-base-image.sh"), "trixie"]).strip().splitlines()[-1]


@pytest.fixture(scope="module")
def compose_stack(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    """The shipped stack on fresh volumes, built and up; taken down with its volumes after."""
    stack = ComposeStack(f"dp3test{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("compose"), base_image)
    make_inbox(stack.inbox)
    started = time.monotonic()
    stack.compose("build", timeout=1800)
    print(f"compose test: images took {time.monotonic() - started:.0f}s")
    try:
        started = time.monotonic()
        stack.up()
        print(f"compose test: up took {time.monotonic() - started:.0f}s")
        for store in ("archive-a", "archive-b"):
            archiver = stack.containers("archiver")[0]
            stack.exec(archiver, "dp3", "stores", "init", f"/stores/{store}")
        yield stack
    finally:
        stack.down("--volumes")


def make_inbox(inbox: Path) -> None:
    """The synced folder as the README tells an operator to prepare it: root's, with an ACL for uid 10001."""
    inbox.mkdir(parents=True)
    run(["setfacl", "-R", "-m", "u:10001:rwX", "-m", "d:u:10001:rwX", str(inbox)])
