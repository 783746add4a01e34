"""One archive store: is it usable, how full is it, and copies that are verified by reading them back.

A store is a directory (in production, a mount of some storage system) that
is used only while its marker file is present, so an unmounted network drive
counts as *down* and its empty mount point is never written into.

Every write goes through :meth:`Store.ensure_copy`: a copy already present with
the right sha256 is left alone; otherwise the bytes go to a temporary file in
the same folder, are fsynced, renamed into place (the folder fsynced too), and
then read back *from the storage* (the page cache is dropped first) and
compared with the expected sha256. Any trouble with the store itself (gone,
read-only, full, I/O error, a read-back that does not match) is raised as
:class:`StoreUnavailable`, a :class:`~dp3.errors.Retryable`: the photo waits and
the message comes back later; a metric and a log line name the store.

A store also keeps its current or last :class:`Trouble`: from its first
failure until a copy succeeds again (or, for ``down``, its marker is back),
``dp3_archiver_store_up`` is 0 and the ``problem_since``/``problem_until``
gauges say for how long, so an operator (and the portal's status page) can
tell which store held photos back and when it recovered.

The stores must also be distinct places (invariant 9, :mod:`dp3.store_places`):
:func:`ensure_all_usable`, which every archive and every collection calls
first, refuses with the problem ``aliased`` while two of them are one place,
and the collector checks again right before it deletes an original.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import json
import logging
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dp3 import layout, store_places
from dp3.copies import CopyRead, ReadProof, identity_of, proof_of_read, read_uncached
from dp3.errors import DP3Error, Retryable
from dp3.events import ErrorKind
from dp3.files import CHUNK, atomic_writer, fsync_dir, temp_path_for, write_all
from dp3_archiver.metrics import archiver_metrics
from dp3_archiver.proof import CopyProof, Ledger, still_proven

log = logging.getLogger(__name__)

_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DOWN = {errno.ENOENT, errno.ENODEV, errno.ESTALE, errno.ENOTCONN, errno.EHOSTDOWN, errno.ENXIO, errno.ETIMEDOUT}
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
_NAME_FAULTS = {errno.ENAMETOOLONG, errno.EILSEQ}
"""The photo's name is the trouble (too long for this store, bytes it refuses), not the store."""
_NAME_REFUSED = errno.EINVAL
"""From a call that takes a name: the store refuses the name (NTFS, exFAT, FAT, SMB to Windows: ``:`` ``?`` ``*``
``"`` ``<`` ``>`` ``|`` ``\\``, a trailing dot or space, ``CON``); from any other call it is the store's trouble."""


class StoreUnavailable(Retryable):
    """A store cannot take or prove a copy right now (``problem``: down, read_only, full, io, verify)."""

    def __init__(self, store: str, problem: str, detail: str) -> None:
        super().__init__(f"store {store} is {problem.replace('_', '-')}: {detail}", kind=ErrorKind.ARCHIVE_UNAVAILABLE)
        self.store = store
        self.problem = problem


class StoresNotDistinct(StoreUnavailable):
    """Two configured stores are one place: nothing is archived or collected until that is fixed."""

    def __init__(self, found: Sequence[store_places.Alias]) -> None:
        super().__init__(found[0].second, "aliased", "; ".join(alias.line() for alias in found))
        self.aliases = tuple(found)


class NameRefused(DP3Error):
    """A store refused a file's *name* (ENAMETOOLONG, EILSEQ): the photo's fault; the store is not down."""

    def __init__(self, store: str, detail: str) -> None:
        super().__init__(f"store {store} refused the name: {detail}")
        self.store = store


class SourceMismatch(DP3Error):
    """No source offered for a copy was readable with the expected sha256."""


class CopyOutcome(enum.Enum):
    PRESENT = "present"  # already there, verified: nothing written
    WRITTEN = "written"  # written now, verified
    TAKEN = "taken"  # the name holds other bytes that are not ours to replace


def problem_of(exc: OSError, *, naming: bool = False) -> str:
    """The kind of trouble ``exc`` is; ``naming``: it came from a call that takes a photo's file name."""
    if exc.errno in _NAME_FAULTS or (naming and exc.errno == _NAME_REFUSED):
        return "name"
    if exc.errno in _READ_ONLY:
        return "read_only"
    if exc.errno in _FULL:
        return "full"
    if exc.errno in _DOWN:
        return "down"
    return "io"


def hash_uncached(path: Path) -> tuple[str, int]:
    """sha256 and size of ``path`` read from the storage, not from the page cache (no symlinks)."""
    read = read_uncached(path)
    return read.sha256, read.size


@dataclass
class StagedCopy:
    """A temporary file in one store holding a copy's bytes, written but not yet synced or named."""

    store: Store
    final: Path
    temp: Path
    fd: int
    started: float  # time.monotonic() when the copy began


@dataclass
class Tee:
    """One read of a source into temporary files in several stores (:func:`write_temps`)."""

    staged: list[StagedCopy]  # the stores whose temp file holds the expected bytes
    failed: dict[str, StoreUnavailable | NameRefused]  # store label -> its trouble while writing
    source: ReadProof | None  # the source as read, if that read proves it (its bytes had the sha256)


def write_temps(sources: Sequence[Path], targets: Sequence[tuple[Store, Path]], sha256: str) -> Tee:
    """Read the first source that has ``sha256`` once, hashing it, and write it into a temp file per target.

    The source is read (and hashed) once whatever the number of stores: the
    copy is checked by that hash while it is written, and each store's copy is
    then read back from its own device by :meth:`Store.finish_copy`. A store
    whose write fails drops out (its trouble in ``failed``) and the others go
    on. No temp file is left behind unless it is in ``staged``.
    """
    failed: dict[str, StoreUnavailable | NameRefused] = {}
    open_temps: list[StagedCopy] = []
    started = time.monotonic()
    try:
        for store, final in targets:
            try:
                store._make_folder(final.parent)
                temp = temp_path_for(final)
                with store.translated(f"creating {temp}", naming=True):
                    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                open_temps.append(StagedCopy(store, final, temp, fd, started))
            except (StoreUnavailable, NameRefused) as exc:
                failed[store.label] = exc
        for source in sources:
            if not open_temps:
                break
            read = _tee_from(source, open_temps, failed)
            open_temps = [staged for staged in open_temps if staged.store.label not in failed]
            if read is not None and read[0] == sha256:
                return Tee(open_temps, failed, read[1])
    except BaseException:
        for staged in open_temps:
            _discard(staged)
        raise
    for staged in open_temps:
        _discard(staged)
    return Tee([], failed, None)


def _tee_from(
    source: Path, temps: list[StagedCopy], failed: dict[str, StoreUnavailable | NameRefused]
) -> tuple[str, ReadProof | None] | None:
    """:func:`_tee_one` from ``source`` if it is a regular file we may open; None if it is not."""
    try:
        src_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None  # gone, a symlink, unreadable: try the next source
    try:
        if not stat.S_ISREG(os.fstat(src_fd).st_mode):
            return None  # a fifo or a device is never read (it could block forever)
        for staged in temps:  # a previous source may have left part of itself
            with staged.store.translated(f"rewinding {staged.temp}"):
                os.ftruncate(staged.fd, 0)
                os.lseek(staged.fd, 0, os.SEEK_SET)
        return _tee_one(src_fd, source, temps, failed)
    finally:
        os.close(src_fd)


def _tee_one(
    src_fd: int, source: Path, temps: list[StagedCopy], failed: dict[str, StoreUnavailable | NameRefused]
) -> tuple[str, ReadProof | None] | None:
    """Copy one source into every temp not yet failed: its sha256, and a proof if the read is one (None: unreadable)."""
    before = identity_of(os.fstat(src_fd))
    read_started = time.time_ns()
    digest = hashlib.sha256()
    while True:
        try:
            chunk = os.read(src_fd, CHUNK)
        except OSError:
            log.warning("could not read source %s; trying the next one", source)
            return None
        if not chunk:
            break
        digest.update(chunk)
        for staged in temps:
            if staged.store.label in failed:
                continue
            try:
                with staged.store.translated(f"writing {staged.temp}"):
                    write_all(staged.fd, chunk)
            except (StoreUnavailable, NameRefused) as exc:
                failed[staged.store.label] = exc
                _discard(staged)
    sha256 = digest.hexdigest()
    # None if it changed while read, or too recently to rule out a change in the same tick.
    return sha256, proof_of_read(source, sha256, before, identity_of(os.fstat(src_fd)), read_started)


def _discard(staged: StagedCopy) -> None:
    with contextlib.suppress(OSError):
        os.close(staged.fd)
    with contextlib.suppress(OSError):
        staged.temp.unlink()


@dataclass
class Trouble:
    """A stretch of time in which a store could not take or prove copies."""

    problem: str  # the latest kind seen: down, read_only, full, io, verify
    since: float  # Unix time of the first failure
    until: float | None = None  # Unix time a copy succeeded again; None while it goes on


class Store:
    """One configured store root; every file system call on it is translated into StoreUnavailable."""

    def __init__(self, root: Path, *, reserve_bytes: int = 0) -> None:
        self.root = root
        self.reserve_bytes = reserve_bytes
        self.trouble: Trouble | None = None
        """The current or last problem (None: none since start)."""
        self._trouble_lock = threading.Lock()
        self.proofs = Ledger()
        """This process's read-backs of copies it verified, so a collection moments later need not read again."""

    @property
    def label(self) -> str:
        return str(self.root)

    @property
    def marker(self) -> Path:
        return self.root / layout.STORE_MARKER

    def __repr__(self) -> str:
        return f"Store({self.label!r})"

    # --- state -----------------------------------------------------------------

    def is_marked(self) -> bool:
        try:
            return self.marker.is_file()
        except OSError:
            return False

    def ensure_usable(self) -> None:
        """Raise StoreUnavailable(down) unless the marker is present (the store is mounted and initialised)."""
        if not self.is_marked():
            raise self._failure("down", f"marker {layout.STORE_MARKER} missing (not mounted, or not initialised)")
        # A returning marker ends a "down"; other problems end only when a copy succeeds.
        self._back(only="down")

    def free_bytes(self) -> int:
        with self.translated("checking free space"):
            stat = os.statvfs(self.root)
        free = stat.f_bavail * stat.f_frsize
        archiver_metrics().store_free.labels(self.label).set(free)
        archiver_metrics().store_size.labels(self.label).set(stat.f_blocks * stat.f_frsize)
        return free

    def ensure_space(self, nbytes: int) -> None:
        """Raise StoreUnavailable(full) if writing ``nbytes`` would eat into the reserve."""
        free = self.free_bytes()
        if free < nbytes + self.reserve_bytes:
            raise self._failure("full", f"{free} bytes free, {nbytes} needed plus a reserve of {self.reserve_bytes}")

    def init(self) -> bool:
        """Write the marker (``dp3 stores init``); the root must already exist. True if it was written now.

        The marker carries a random id, so a marker copied into another store
        (or one share mounted twice) is seen as the same store.
        """
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root} does not exist (mount it first, or create it)")
        if self.is_marked():
            return False
        body = json.dumps({"store": self.label, "id": uuid.uuid4().hex, "initialised_at": time.time()}).encode()
        with atomic_writer(self.marker) as stream:
            stream.write(body)
        return True

    def mark_aliased(self) -> None:
        """This store is one place with another: it takes nothing until that ends (the caller logs the line)."""
        if not self.aliased:
            archiver_metrics().store_errors.labels(self.label, "aliased").inc()
            self._start_trouble("aliased")

    def unmark_aliased(self) -> None:
        self._back(only="aliased")

    @property
    def aliased(self) -> bool:
        """Whether this store is, as last checked, one place with another."""
        trouble = self.trouble
        return trouble is not None and trouble.until is None and trouble.problem == "aliased"

    # --- reading -----------------------------------------------------------------

    def read_hash(self, path: Path) -> tuple[str, int] | None:
        """sha256 and size of a copy read back from the storage; None if there is no such file."""
        read = self.read_copy(path)
        return None if read is None else (read.sha256, read.size)

    def read_copy(self, path: Path, *, settle: bool = False) -> CopyRead | None:
        """A copy read back from the storage, with the file's identity; None if there is no such file.

        A read that finds other bytes than a proof of this path says (decay under
        an unchanged identity, found by the fixity audit or any other read-back)
        drops that proof, so the next collection reads the copy again.
        """
        try:
            read = read_uncached(path, settle=settle)
        except (FileNotFoundError, NotADirectoryError):
            self.proofs.forget(os.fspath(path))
            return None
        except OSError as exc:
            self.proofs.forget(os.fspath(path))
            if exc.errno == errno.ELOOP:
                return None  # a symlink is not a copy
            raise self._failure(problem_of(exc, naming=True), f"reading {path}: {exc.strerror}") from exc
        recorded = self.proofs.get(os.fspath(path))
        if recorded is not None and recorded.copy.sha256 != read.sha256:
            self.proofs.forget(os.fspath(path))
        return read

    def verified_copy(self, path: Path, sha256: str) -> tuple[CopyRead | None, ReadProof | None]:
        """The copy at ``path`` as a deletion needs it, and the proof of the source it was copied from, if any.

        If this process read the copy back (after writing it, or finding it)
        and the file is provably unchanged since (:func:`dp3_archiver.proof.still_proven`:
        same device, inode, size, mtime and ctime, seen through a fresh open,
        which makes a network file system revalidate them), that read-back
        stands: the copy is not read again. Otherwise it is read back now.
        """
        recorded = self.proofs.get(os.fspath(path))
        if recorded is not None:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
                try:
                    info = os.fstat(fd)
                finally:
                    os.close(fd)
            except OSError:
                info = None  # the read below says what is wrong
            now = identity_of(info) if info is not None and stat.S_ISREG(info.st_mode) else None
            if still_proven(recorded.copy, sha256, now, time.monotonic()):
                assert now is not None
                return CopyRead(sha256, now.size, now.device, now.inode, recorded.copy), recorded.source
            self.proofs.forget(os.fspath(path))
            return self.read_copy(path), recorded.source  # what was read of the source is still true of it
        return self.read_copy(path), None

    def read_bytes(self, path: Path) -> bytes | None:
        try:
            with open(path, "rb") as stream:
                return stream.read()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise self._failure(problem_of(exc, naming=True), f"reading {path}: {exc.strerror}") from exc

    def is_absent(self, path: Path) -> bool:
        """True if no entry at all has the name ``path`` (anything else, or an error, is for ensure_copy to judge)."""
        try:
            os.lstat(path)
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return False

    # --- writing -----------------------------------------------------------------

    def ensure_copy(
        self, sources: Sequence[Path], final: Path, sha256: str, size: int, *, may_replace: bool
    ) -> CopyOutcome:
        """Make ``final`` a verified copy with ``sha256``, from the first source that has those bytes.

        A copy already there with the right sha256 is not written again. One with
        other bytes is replaced only if ``may_replace`` (it is ours: a torn or
        rotten copy); otherwise the name is left alone and TAKEN is returned.
        Raises SourceMismatch if no source has the bytes, StoreUnavailable for
        trouble with this store.
        """
        present = self.read_copy(final)
        if present is not None and present.sha256 == sha256:
            self._remember(final, present, None)
            return CopyOutcome.PRESENT
        if present is not None and not may_replace:
            return CopyOutcome.TAKEN
        self.ensure_usable()
        self.ensure_space(size)
        tee = write_temps(sources, [(self, final)], sha256)
        if self.label in tee.failed:
            raise tee.failed[self.label]
        if not tee.staged:
            raise SourceMismatch(f"no source for {final.name} has sha256 {sha256[:12]}... (tried {len(sources)})")
        return self.finish_copy(tee.staged[0], sources, sha256, size, present=present is not None, source=tee.source)

    def finish_copy(
        self,
        staged: StagedCopy,
        sources: Sequence[Path],
        sha256: str,
        size: int,
        *,
        present: bool,
        source: ReadProof | None,
    ) -> CopyOutcome:
        """Sync ``staged``, give it its final name, sync the folder, and read it back from the device.

        ``present``: a copy with other bytes is there (ours to replace); else the
        name must still be free, and if another writer took it meanwhile the
        copy is judged again by :meth:`ensure_copy` (never replacing).
        """
        final, temp = staged.final, staged.temp
        try:
            try:
                with self.translated(f"syncing {temp}"):
                    os.fsync(staged.fd)
                os.posix_fadvise(staged.fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(staged.fd)
            if not present and not self._link_new(temp, final):
                return self.ensure_copy(sources, final, sha256, size, may_replace=False)
            if present:
                with self.translated(f"renaming into {final}", naming=True):
                    os.replace(temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        with self.translated(f"syncing {final.parent}"):
            fsync_dir(final.parent)
        self._verify(final, sha256, source)
        self._back()
        archiver_metrics().bytes.labels(self.label).inc(size)
        archiver_metrics().copy_seconds.observe(time.monotonic() - staged.started)
        return CopyOutcome.WRITTEN

    def write_document(self, final: Path, data: bytes) -> bool:
        """Atomically replace ``final`` with ``data`` (a sidecar) unless it holds it; read back. True if written."""
        if self.read_bytes(final) == data:
            return False
        self.ensure_usable()
        self.ensure_space(len(data))
        self._make_folder(final.parent)
        with self.translated(f"writing {final}"), atomic_writer(final) as stream:
            stream.write(data)
        if self.read_bytes(final) != data:
            raise self._failure("verify", f"{final} read back differs from what was written")
        self._back()
        archiver_metrics().bytes.labels(self.label).inc(len(data))
        return True

    def _link_new(self, temp: Path, final: Path) -> bool:
        """Give ``temp`` the name ``final`` only if no file has it (two writers of different bytes never clash)."""
        try:
            os.link(temp, final)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise self._failure(problem_of(exc, naming=True), f"linking {final}: {exc.strerror}") from exc
        # A file system without hard links (some network drives): check, then rename.
        if final.exists():
            return False
        with self.translated(f"renaming into {final}", naming=True):
            os.replace(temp, final)
        return True

    def _verify(self, final: Path, sha256: str, source: ReadProof | None) -> None:
        """The one read-back of a copy just written: from the device, after the clock has moved past its ctime."""
        back = self.read_copy(final, settle=True)
        if back is None or back.sha256 != sha256:
            self.proofs.forget(os.fspath(final))
            got = "nothing" if back is None else back.sha256[:12]
            raise self._failure("verify", f"{final} read back as {got}, expected {sha256[:12]}")
        self._remember(final, back, source)

    def _remember(self, final: Path, back: CopyRead, source: ReadProof | None) -> None:
        if back.proof is None:
            self.proofs.forget(os.fspath(final))
        else:
            self.proofs.record(CopyProof(back.proof, source))

    def _make_folder(self, folder: Path) -> None:
        if folder.parent != self.root:
            raise ValueError(f"{folder} is not a date folder of {self.root}")
        with self.translated(f"creating {folder}"):
            folder.mkdir(exist_ok=True)  # never parents: an unmounted root is not re-created

    @contextlib.contextmanager
    def translated(self, doing: str, *, naming: bool = False) -> Iterator[None]:
        """Turn an OSError from this store into StoreUnavailable naming the store (and count it).

        ``naming``: the calls inside take a photo's file name, so EINVAL is the name's fault (NameRefused).
        """
        try:
            yield
        except OSError as exc:
            raise self._failure(problem_of(exc, naming=naming), f"{doing}: {exc.strerror or exc}") from exc

    def _failure(self, problem: str, detail: str) -> StoreUnavailable | NameRefused:
        if problem == "name":  # one photo's name: counted by the archiver as that photo's failure
            return NameRefused(self.label, detail)
        archiver_metrics().store_errors.labels(self.label, problem).inc()
        log.warning("store %s unavailable (%s): %s", self.label, problem, detail, extra={"store": self.label})
        self._start_trouble(problem)
        return StoreUnavailable(self.label, problem, detail)

    def _start_trouble(self, problem: str) -> None:
        with self._trouble_lock:
            if self.trouble is None or self.trouble.until is not None:
                self.trouble = Trouble(problem, time.time())
                archiver_metrics().store_problem_since.labels(self.label).set(self.trouble.since)
                archiver_metrics().store_problem_until.labels(self.label).set(0)
            self.trouble.problem = problem
            archiver_metrics().store_up.labels(self.label).set(0)

    def _back(self, only: str | None = None) -> None:
        """The store works again: end its trouble (only one of kind ``only``, if given)."""
        with self._trouble_lock:
            trouble = self.trouble
            if trouble is not None and trouble.until is None:
                if only is not None and trouble.problem != only:
                    return
                trouble.until = time.time()
                archiver_metrics().store_problem_until.labels(self.label).set(trouble.until)
                log.info(
                    "store %s is back after %.0fs (%s)",
                    self.label,
                    trouble.until - trouble.since,
                    trouble.problem,
                    extra={"store": self.label},
                )
            archiver_metrics().store_up.labels(self.label).set(1)


def ensure_all_usable(stores: Sequence[Store], *, distinct: bool = True) -> None:
    """Raise for the first store that is down, or if two are one place; every store's metric is counted.

    ``distinct=False`` leaves the distinctness check to the caller (the collector runs it later, right
    before the deletion, where it counts).
    """
    failures: list[StoreUnavailable] = []
    for store in stores:
        try:
            store.ensure_usable()
        except StoreUnavailable as exc:
            failures.append(exc)
    if distinct:
        ensure_distinct(stores)
    if failures:
        raise failures[0]


_reported_lock = threading.Lock()
_reported: dict[tuple[str, ...], tuple[str, ...]] = {}  # store labels -> the alias lines last logged for them


def ensure_distinct(stores: Sequence[Store]) -> None:
    """Raise StoresNotDistinct while two stores are one place (:mod:`dp3.store_places`); keep the metrics true.

    Cheap (a few system calls per store), so it runs before every archive and
    again right before every deletion: a bind mount made while the archiver
    runs is seen by the next photo.
    """
    found = check_distinctness(stores)
    if found:
        raise StoresNotDistinct(found)


def check_distinctness(stores: Sequence[Store]) -> list[store_places.Alias]:
    """The aliases among ``stores`` now: metrics and stores' trouble updated, a change logged once."""
    found = store_places.check_distinct([store.root for store in stores])
    labels = tuple(store.label for store in stores)
    lines = tuple(alias.line() for alias in found)
    with _reported_lock:
        changed = _reported.get(labels, ()) != lines
        _reported[labels] = lines
    involved = {label for alias in found for label in (alias.first, alias.second)}
    for store in stores:
        if store.label in involved:
            store.mark_aliased()
        else:
            store.unmark_aliased()
        archiver_metrics().store_aliased.labels(store.label).set(1 if store.label in involved else 0)
    archiver_metrics().stores_distinct.set(0 if found else 1)
    archiver_metrics().store_alias.clear()
    for alias in found:
        archiver_metrics().store_alias.labels(alias.first, alias.second, alias.reason).set(1)
    if changed:
        for line in lines:
            log.error("%s", line)
        if not lines:
            log.info("the stores are distinct places again: %s", ", ".join(labels))
    return found
