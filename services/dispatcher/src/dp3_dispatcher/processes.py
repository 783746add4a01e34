"""The process table from ``/proc``: what the factory and the orphan reaper need to find their processes.

Linux only, as the workers and the factory are. Each ``/proc/<pid>/stat`` is
read once per look; a process that is gone meanwhile is simply not listed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

ZOMBIE = "Z"


@dataclass(frozen=True)
class Process:
    state: str  # R, S, D, Z...
    parent: int
    session: int


def _stat(pid: int | str) -> Process | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # the name in (...) may hold spaces
    except (OSError, IndexError):
        return None
    return Process(fields[0], int(fields[1]), int(fields[3]))


def process_table() -> dict[int, Process]:
    """Every process, zombies included."""
    table: dict[int, Process] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (process := _stat(entry.name)) is not None:
            table[int(entry.name)] = process
    return table


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    process = _stat(pid)
    return process is not None and process.state != ZOMBIE


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children first."""
    children: dict[int, list[int]] = {}
    for child, process in process_table().items():
        children.setdefault(process.parent, []).append(child)
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child in children.get(parent, ()):
            found.append(child)
            frontier.append(child)
    return found
