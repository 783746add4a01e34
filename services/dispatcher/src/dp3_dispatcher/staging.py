"""``$DP3_STAGING/<id>/``: where verified artifacts wait for the archiver.

A render's outputs land in a private workspace inside staging (same file
system, so the final move is one atomic rename); only once they are verified
are they fsynced and the workspace renamed to ``staging/<id>/``. After a crash
at any point ``staging/<id>/`` is either absent or complete and verified;
leftover workspaces start with :data:`dp3.files.TEMP_PREFIX` and are reaped at
start.

A full staging file system is staging's problem, not the photo's nor the
worker's: :meth:`Staging.full` says so (free space below
:data:`MIN_FREE_BYTES`, or a write that failed with ENOSPC/EDQUOT), and the
dispatcher then holds its renders until there is room again.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

from dp3 import layout
from dp3.files import TEMP_PREFIX, fsync_dir
from dp3.render_task import DEFAULT_MAX_PIXELS
from dp3_dispatcher.verify import verify_render

log = logging.getLogger(__name__)

MIN_FREE_BYTES = 8 * 1024 * 1024
"""Below this much free space, staging takes no render results: a batch of 16 photos brings about 2 MB."""


def out_of_space(exc: BaseException) -> bool:
    """True for a write that failed because the file system (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Staging:
    """The staging folder: fast-path lookups, workspaces, atomic commits."""

    def __init__(self, root: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.root = root
        self._max_pixels = max_pixels  # the bound of the meta.json schema, as the render task was told
        root.mkdir(parents=True, exist_ok=True)

    def free_bytes(self) -> int:
        info = os.statvfs(self.root)
        return info.f_bavail * info.f_frsize

    def full(self) -> bool:
        """Too little room for a render's results (see :data:`MIN_FREE_BYTES`)."""
        try:
            return self.free_bytes() < MIN_FREE_BYTES
        except OSError:
            return False  # cannot tell: let the write itself say

    def artifact_paths(self, folder: Path, photo_id: str) -> tuple[Path, Path, Path]:
        """(thumbnail, web, meta.json) inside ``folder``, named by :mod:`dp3.layout`."""
        return (
            folder / layout.thumbnail_name(photo_id),
            folder / layout.web_name(photo_id),
            folder / layout.META_NAME,
        )

    def verified_meta(self, photo_id: str, sha256: str) -> dict[str, Any] | None:
        """meta.json of artifacts already staged for these bytes, if they still verify; else None."""
        folder = layout.staging_dir(self.root, photo_id)
        thumbnail, web, meta = self.artifact_paths(folder, photo_id)
        if folder.is_symlink() or not (thumbnail.is_file() and web.is_file() and meta.is_file()):
            return None
        verification = verify_render(thumbnail, web, meta, sha256, max_pixels=self._max_pixels)
        if not verification.ok:
            log.info(
                "staged artifacts do not verify (%s); rendering again",
                verification.reason,
                extra={"photo_id": photo_id},
            )
            return None
        return verification.meta

    def workspace(self) -> Path:
        """A new private folder in staging for one render attempt.

        Its name holds no part of the photo id: Work Queue 8.0 fails to write an
        output file whose local path has a space, a quote or a non-ASCII
        character (OUTPUT_MISSING), so outputs land here under fixed names and
        :meth:`name_artifacts` gives them their layout names afterwards.
        """
        folder = self.root / f"{TEMP_PREFIX}{secrets.token_hex(8)}"
        folder.mkdir()
        return folder

    def input_alias(self, workspace: Path, index: int, source: Path) -> Path:
        """A short, fixed name in ``workspace`` for the i-th original (a symlink to it), as Work Queue's input.

        Work Queue 8.0 names its cached copy of an input after the local file's
        basename plus a hash (``file-<md5>-<basename>``): a 255-byte original's
        cache name is over NAME_MAX and the worker fails the task forever. The
        alias is made by the dispatcher itself, points at the path it already
        checked, and goes with the workspace.
        """
        alias = workspace / f"input-{index}"
        alias.symlink_to(os.path.abspath(source))
        return alias

    def name_artifacts(
        self, workspace: Path, photo_id: str, received: tuple[Path, Path, Path]
    ) -> tuple[Path, Path, Path]:
        """Rename the task's outputs (fixed names) to their :mod:`dp3.layout` names, inside ``workspace``."""
        named = self.artifact_paths(workspace, photo_id)
        for source, target in zip(received, named, strict=True):
            if source.exists() and source != target:
                source.rename(target)
        return named

    def commit(self, workspace: Path, photo_id: str) -> Path:
        """Make ``workspace`` durable and rename it to ``staging/<id>/`` (replacing a stale one)."""
        for path in workspace.iterdir():
            with path.open("rb") as stream:
                os.fsync(stream.fileno())
        fsync_dir(workspace)
        final = layout.staging_dir(self.root, photo_id)
        stale: Path | None = None
        if final.exists() or final.is_symlink():
            stale = self.root / f"{TEMP_PREFIX}{secrets.token_hex(6)}-stale"
            final.rename(stale)
        workspace.rename(final)
        fsync_dir(self.root)
        if stale is not None:
            self.discard(stale)
        return final

    def discard(self, workspace: Path) -> None:
        if workspace.is_symlink():
            workspace.unlink()
        else:
            shutil.rmtree(workspace, ignore_errors=True)

    def reap(self) -> int:
        """Remove workspaces a previous run left behind; returns how many."""
        count = 0
        for entry in self.root.iterdir():
            if entry.name.startswith(TEMP_PREFIX):
                with contextlib.suppress(OSError):
                    self.discard(entry)
                    count += 1
        return count
