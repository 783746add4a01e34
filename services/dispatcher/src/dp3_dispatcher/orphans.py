"""Factories left running by a dispatcher that was killed, found and stopped by the next one.

A dispatcher stops its ``work_queue_factory`` and the workers below it when it
is asked to stop (:meth:`dp3_dispatcher.workers.WorkerFactory.stop`), but a
SIGKILLed one cannot, and ``--parent-death`` does not help: the chaos test
found the factory, reparented to init, still running minutes later with its
workers, which joined the restarted dispatcher's manager on the same port
beyond ``DP3_WORKERS_MAX`` and outlived ``make down``.

Each factory runs in a session of its own (``start_new_session``) with its
working folder ``<scratch>/factory-<pid of the dispatcher that started it>-*``.
So at start a dispatcher looks for factories in its scratch folder whose parent
is no longer the dispatcher named in their folder, kills everything in their
sessions (factory, workers, tasks) and removes their folders. A factory of a
dispatcher that is still running (another instance sharing the scratch folder)
is left alone.

An orphaned factory does notice its parent's death after a while (about 35 s
here) and exits, but its workers stay until their idle timeout. They are found
by their executable: the factory runs a copy of ``work_queue_worker`` from its
own folder, so a process whose executable lies in a stale factory folder is one
of its workers, and its session goes too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from dp3_dispatcher.processes import ZOMBIE, alive, process_table

log = logging.getLogger(__name__)

FACTORY = "work_queue_factory"
FOLDER_PREFIX = "factory-"


def factory_folder_prefix() -> str:
    """The prefix of a factory folder made by this process: it names the process that made it."""
    return f"{FOLDER_PREFIX}{os.getpid()}-"


def creator_pid(folder: Path) -> int | None:
    """The pid of the dispatcher that made a factory folder, if the name says."""
    if not folder.name.startswith(FOLDER_PREFIX):
        return None
    pid = folder.name.removeprefix(FOLDER_PREFIX).split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def reap_orphaned_factories(scratch: Path) -> int:
    """Kill orphaned factories in ``scratch`` with their sessions, remove their folders; how many processes died."""
    root = scratch.resolve()
    processes = _processes()
    orphaned_sessions: set[int] = set()
    live_folders: set[Path] = set()
    for pid, (parent, session) in processes.items():
        if pid != session or _argv0(pid) != FACTORY:
            continue
        folder = _cwd(pid)
        if folder is None or folder.parent != root:
            continue
        if parent == creator_pid(folder):
            live_folders.add(folder)
        else:
            orphaned_sessions.add(session)
    mine = os.getpid()
    for pid, (_, session) in processes.items():  # workers whose factory already exited
        folder = _executable_folder(pid)
        if folder is None or folder.parent != root or folder in live_folders:
            continue
        if folder.name.startswith(FOLDER_PREFIX) and creator_pid(folder) != mine:
            orphaned_sessions.add(session)
    killed: set[int] = set()
    for _ in range(5):  # a factory may fork a worker while we look: look again
        victims = [pid for pid, (_, session) in _processes().items() if session in orphaned_sessions]
        victims = [pid for pid in victims if pid not in killed]
        if not victims:
            break
        for pid in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        killed.update(victims)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in killed):
        time.sleep(0.05)
    for folder in root.iterdir() if root.is_dir() else ():
        stale = folder.name.startswith(FOLDER_PREFIX) and folder not in live_folders and creator_pid(folder) != mine
        if stale and folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
    if killed:
        log.warning("killed %d processes of work_queue_factory sessions left by a killed dispatcher", len(killed))
    return len(killed)


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every live process."""
    return {pid: (p.parent, p.session) for pid, p in process_table().items() if p.state != ZOMBIE}


def _argv0(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return os.path.basename(cmdline.read().split(b"\0", 1)[0]).decode(errors="replace")
    except OSError:
        return ""


def _executable_folder(pid: int) -> Path | None:
    """The folder of the program a process runs (its file may have been deleted since)."""
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return Path(executable.removesuffix(" (deleted)")).parent


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
