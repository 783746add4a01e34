"""Reading a batch task's ``results.tar`` safely, one outcome per photo.

The tar comes from a worker, so it is untrusted: nothing is extracted by
name. Only regular members called ``<index>/thumbnail.jpg``, ``web.jpg``,
``meta.json`` or ``failure.json`` for an index of the batch are read, each
capped in size, and written under fixed names into a fresh staging
workspace per photo. Anything else is skipped and logged; a photo without a
complete set of files is reported missing (and rendered again).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dp3 import render_task

log = logging.getLogger(__name__)

MEMBER_LIMIT_BYTES = 64 * 1024 * 1024
"""No artifact of a 640x480 render comes near this; a bigger member is not read."""

FAILURE_NAME = render_task.FAILURE_NAME
_NAMES = "|".join(map(re.escape, (*render_task.ARTIFACT_NAMES, FAILURE_NAME)))
_MEMBER = re.compile(rf"^(\d{{1,6}})/({_NAMES})$")


@dataclass(frozen=True)
class Rendered:
    """The photo's three artifacts, under the task's fixed names, in ``workspace``."""

    workspace: Path

    @property
    def artifacts(self) -> tuple[Path, Path, Path]:
        """(thumbnail, web, meta.json)."""
        thumbnail, web, meta = (self.workspace / name for name in render_task.ARTIFACT_NAMES)
        return thumbnail, web, meta


@dataclass(frozen=True)
class RenderFailed:
    """The render task's verdict on this photo: its single-photo exit status and JSON line."""

    status: int
    output: str


@dataclass(frozen=True)
class Missing:
    """The tar does not account for this photo (a torn or foreign tar)."""

    reason: str


PhotoOutcome = Rendered | RenderFailed | Missing


def read_results(tar_path: Path, count: int, new_workspace: Callable[[], Path]) -> list[PhotoOutcome]:
    """One outcome per photo of a batch of ``count``; raises OSError/tarfile.TarError if the tar is unreadable."""
    files: dict[int, dict[str, bytes]] = {}
    with tarfile.open(tar_path, "r:") as archive:
        for member in archive:
            match = _MEMBER.match(member.name)
            if member.isdir():
                continue
            if match is None or not member.isreg() or int(match.group(1)) >= count:
                log.warning("batch results: skipped unexpected member %r", member.name)
                continue
            if member.size > MEMBER_LIMIT_BYTES:
                log.warning("batch results: skipped %r (%d bytes)", member.name, member.size)
                continue
            stream = archive.extractfile(member)
            if stream is not None:
                files.setdefault(int(match.group(1)), {})[match.group(2)] = stream.read()
    outcomes: list[PhotoOutcome] = []
    try:
        for index in range(count):
            outcomes.append(_outcome(files.get(index, {}), new_workspace))
    except OSError:
        for outcome in outcomes:
            if isinstance(outcome, Rendered):
                shutil.rmtree(outcome.workspace, ignore_errors=True)
        raise
    return outcomes


def _outcome(found: dict[str, bytes], new_workspace: Callable[[], Path]) -> PhotoOutcome:
    if FAILURE_NAME in found:
        return _failure(found[FAILURE_NAME])
    absent = [name for name in render_task.ARTIFACT_NAMES if name not in found]
    if absent:
        return Missing(f"the batch results lack {', '.join(absent)}")
    workspace = new_workspace()
    try:
        for name in render_task.ARTIFACT_NAMES:
            (workspace / name).write_bytes(found[name])
    except OSError:
        shutil.rmtree(workspace, ignore_errors=True)
        raise
    return Rendered(workspace)


def _failure(data: bytes) -> PhotoOutcome:
    try:
        failure = json.loads(data)
        status = int(failure["status"])
        output = json.dumps({"kind": str(failure["kind"]), "message": str(failure["message"])}, ensure_ascii=False)
    except (ValueError, KeyError, TypeError):
        return Missing("the batch results hold an unreadable failure.json")
    if status == render_task.EXIT_OK:
        return Missing("the batch results hold a failure.json with status 0")
    return RenderFailed(status, output)


def describe_outcomes(outcomes: Sequence[PhotoOutcome]) -> str:
    """``3 rendered, 1 failed, 0 missing``: for a log line."""
    rendered = sum(isinstance(o, Rendered) for o in outcomes)
    failed = sum(isinstance(o, RenderFailed) for o in outcomes)
    return f"{rendered} rendered, {failed} failed, {len(outcomes) - rendered - failed} missing"
