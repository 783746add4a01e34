"""Build what the compose tests need, in the background, while the other tests run.

``make test`` starts ``python -m tests.compose.prebuild`` before pytest, and
pytest runs the compose tests last: the debootstrapped bases (bookworm, and
trixie for the condor profile), the wheelhouse and every image of the shipped
file are then built, or found in Docker's cache, while the unit and
integration tests use the CPU. Building is mostly waiting on Debian's mirror
and on dpkg, so the two overlap well on two cores.

The compose fixtures run the very same builds again; after this they are
cache hits. A lock held for the whole build makes them wait for it rather
than start a second debootstrap beside it (:func:`wait_for_prebuild`).
"""

from __future__ import annotations

import fcntl
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.compose.stack import ComposeStack, run
from tests.rabbit import REPO_ROOT

LOCK = Path(tempfile.gettempdir()) / "dp3-compose-prebuild.lock"
LOG = Path(tempfile.gettempdir()) / "dp3-compose-prebuild.log"
SCRIPTS = REPO_ROOT / "scripts"


@contextmanager
def prebuild_lock() -> Iterator[None]:
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def wait_for_prebuild() -> float:
    """Seconds waited for a background build still under way (0 when none runs)."""
    started = time.monotonic()
    with prebuild_lock():
        pass
    return time.monotonic() - started


def step(what: str, command: list[str], env: dict[str, str] | None = None) -> str:
    started = time.monotonic()
    print(f"prebuild: {what} ...", flush=True)
    out = run(command, env=env, timeout=1800)
    print(f"prebuild: {what} took {time.monotonic() - started:.0f}s", flush=True)
    return out.strip().splitlines()[-1] if out.strip() else ""


def prebuild() -> None:
    with prebuild_lock():
        base = step("bookworm base", [str(SCRIPTS / "build-base-image.sh")])
        step("wheelhouse", [str(SCRIPTS / "build-wheelhouse.sh")])
        trixie = step("trixie base", [str(SCRIPTS / "build-base-image.sh"), "trixie"])
        with tempfile.TemporaryDirectory(prefix="dp3-prebuild-") as workdir:
            stack = ComposeStack("dp3prebuild", Path(workdir), base)
            stack.env["DP3_LOCAL_TRIXIE_BASE"] = trixie
            profiles = ["--profile", "condor", "--profile", "tls"]
            step("images", stack.compose_command(*profiles, "build"), env=stack.env)


def main() -> int:
    if os.environ.get("DP3_SKIP_DOCKER") == "1":
        return 0
    # Its own log: make starts it detached, and the compose fixtures name this file.
    sys.stdout = sys.stderr = LOG.open("w", buffering=1)
    try:
        prebuild()
    except AssertionError as error:
        # The compose fixtures build again and fail with the same reason, in the test report.
        print(f"prebuild failed (the compose tests will say why):\n{error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
