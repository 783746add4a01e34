"""The embedded MongoDB-wire server (``nx-27017``), for one-machine runs and tests.

Production uses MongoDB; where ``DP3_MONGO_URL`` is unset the portal starts
``nx-27017`` on 127.0.0.1 with its data under ``$DP3_HOME/mongo`` and writes
the URL to ``$DP3_HOME/mongo/url`` so that ``dp3`` commands reach the same
server while the portal runs. The server answers only part of MongoDB's query
language correctly; :mod:`dp3_portal.catalog` keeps to that part.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from dp3.errors import ConfigError
from dp3.mongo import ping
from dp3.ports import free_port

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the portal dies, even by SIGKILL, so no server outlives it."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: stop() still ends the server on a normal exit


def url_for(port: int) -> str:
    return f"mongodb://127.0.0.1:{port}/?directConnection=true"


def _executable() -> str:
    beside = Path(sys.executable).with_name("nx-27017")
    found = str(beside) if beside.exists() else shutil.which("nx-27017")
    if not found:
        raise ConfigError("DP3_MONGO_URL: unset, and the embedded server nx-27017 is not installed")
    return found


class EmbeddedMongo:
    """One ``nx-27017`` process; ``data_dir=None`` keeps its databases in memory."""

    def __init__(self, data_dir: Path | None, *, run_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.run_dir = run_dir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return url_for(self.port)

    @property
    def url_file(self) -> Path:
        return self.run_dir / "url"

    def start(self, timeout: float = 30.0) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            _executable(),
            "--host",
            "127.0.0.1",
            "-p",
            str(self.port),
            "--data-dir",
            str(self.data_dir) if self.data_dir is not None else "memory",
            "--pid-file",
            str(self.run_dir / f"nx-27017-{self.port}.pid"),
            "--log-file",
            str(self.run_dir / "nx-27017.log"),
        ]
        log = (self.run_dir / "nx-27017.out").open("ab")
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not ping(self.url, timeout=0.5):
            if self.process.poll() is not None:
                raise ConfigError(f"DP3_MONGO_URL: unset, and the embedded server exited ({self.run_dir}/nx-27017.out)")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"DP3_MONGO_URL: unset, and the embedded server did not answer in {timeout:g}s")
            time.sleep(0.1)
        if self.data_dir is not None:
            self.url_file.write_text(self.url + "\n")
        return self.url

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(FileNotFoundError):
            if self.url_file.exists() and self.url_file.read_text().strip() == self.url:
                self.url_file.unlink()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def running_url(run_dir: Path) -> str | None:
    """The URL of an embedded server a running portal started, if it answers."""
    try:
        url = (run_dir / "url").read_text().strip()
    except OSError:
        return None
    return url if url and ping(url) else None


def mongo_dir(home: Path) -> Path:
    return home / "mongo"


@contextlib.contextmanager
def mongo_url_for_command(mongo_url: str | None, home: Path) -> Iterator[str]:
    """For ``dp3`` commands: the configured URL, the running portal's server, or a private one."""
    if mongo_url:
        yield mongo_url
        return
    running = running_url(mongo_dir(home))
    if running:
        yield running
        return
    server = EmbeddedMongo(mongo_dir(home), run_dir=mongo_dir(home))
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
