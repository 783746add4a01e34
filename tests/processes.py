"""Ending a service process a test started: at once (SIGKILL, the crash case), or asking first."""

from __future__ import annotations

import signal
import subprocess


def kill_now(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no chance to flush or clean anything."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(10)


def stop_gently(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            kill_now(process)
