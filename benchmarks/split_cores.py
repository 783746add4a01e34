"""The pipeline benchmark's split-core mode: which core runs what, the pinning, the file-work floor.

One core (the *worker core*) runs the Work Queue workers and their render
tasks, as cluster nodes would; the other (the *head core*) runs everything a
head node runs: the four services, supervisord, the embedded MongoDB-wire
server and RabbitMQ. Children inherit their parent's CPU affinity, so the
benchmark pins itself to the head core before it starts the stack, starts
each worker under ``taskset`` on the worker core, and pins RabbitMQ (already
running, shared with whoever else uses this broker) thread by thread through
``/proc``, restoring every thread's mask afterwards.

The file-work floor is the least a verified double archive can do, done by one
plain process on the head core (:func:`file_work_floor`).

More instances of a stage (``--archivers``: archivers started the documented
way, ``deploy/local/stack.py add archiver``) are pinned before they start, like
the workers, and counted in the group of the core they run on.

The pure parts (:func:`choose_cores`, :func:`core_group`, :func:`tree`,
:class:`FloorRun`, :func:`verdict`) are unit-tested in ``tests/unit/benchmarks``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dp3.files import fsync_dir, sha256_file

HEAD = "head core"
WORKER = "worker core"
KERNEL = "kernel threads"
BENCHMARK = "this benchmark"
OTHER = "other processes"
# The programs of an Erlang VM: RabbitMQ's server, and each CLI command (rabbitmqctl...) too.
ERLANG = frozenset({"beam.smp", "erl_child_setup", "epmd", "inet_gethost"})
PF_KTHREAD = 0x00200000  # /proc/<pid>/stat flags: a kernel thread
WORKER_PROGRAM = "work_queue_worker"
ADDED = " (added)"  # after the program's name in the CPU table: an instance the benchmark added (--archivers)

CpuPair = tuple[float, float]  # (user, kernel) CPU seconds


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Cores:
    head: int
    worker: int


def choose_cores(available: Iterable[int], head: int | None = None, worker: int | None = None) -> Cores:
    """The head and worker cores among ``available``: by default the lowest and the highest.

    Raises ValueError with the reason when there are not two distinct usable cores.
    """
    cpus = sorted(set(available))
    if len(cpus) < 2:
        raise ValueError(f"the split-core mode needs two cores; this process may use only {cpus}")
    head = cpus[0] if head is None else head
    worker = next(cpu for cpu in reversed(cpus) if cpu != head) if worker is None else worker
    for name, cpu in (("head", head), ("worker", worker)):
        if cpu not in cpus:
            raise ValueError(f"--{name}-core {cpu}: not one of the cores this process may use ({cpus})")
    if head == worker:
        raise ValueError(f"--head-core and --worker-core are both {head}: they must differ")
    return Cores(head, worker)


def tree(roots: Iterable[int], parents: Mapping[int, int]) -> set[int]:
    """``roots`` (those still in ``parents``) and every process below them; ``parents`` maps pid -> parent pid."""
    children: dict[int, list[int]] = {}
    for pid, parent in parents.items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    frontier = [root for root in roots if root in parents]
    while frontier:
        pid = frontier.pop()
        if pid not in found:
            found.add(pid)
            frontier.extend(children.get(pid, ()))
    return found


@dataclass(frozen=True)
class ProcessFacts:
    """What decides which group a process's CPU is counted in."""

    pid: int
    program: str
    comm: str
    kernel_thread: bool
    in_stack: bool  # its environment names this run's DP3_HOME (supervisord and all below it)
    rabbitmq: bool  # the RabbitMQ server's VM or a process below it, or epmd, pinned by this run


def core_group(facts: ProcessFacts, worker_tree: set[int], benchmark_pid: int) -> str:
    """The group a process belongs to: worker core, head core, or one not counted for the head node.

    The workers come first: they are the benchmark's children, without the stack's DP3_HOME.
    """
    if facts.pid in worker_tree:
        return WORKER
    if facts.in_stack or facts.rabbitmq:
        return HEAD
    if facts.kernel_thread:
        return KERNEL
    if facts.pid == benchmark_pid:
        return BENCHMARK
    return OTHER


def is_rabbitmq_server(comm: str, args: Sequence[bytes]) -> bool:
    """The RabbitMQ server's Erlang VM (``... -s rabbit boot ...``), not a CLI command's VM."""
    return comm == "beam.smp" and any(pair == (b"rabbit", b"boot") for pair in itertools.pairwise(args))


def expected_cpus(group: str, cores: Cores) -> set[int] | None:
    """The affinity every thread of a group must have; None for groups the benchmark does not pin."""
    return {HEAD: {cores.head}, WORKER: {cores.worker}}.get(group)


@dataclass(frozen=True)
class FloorRun:
    """The file-work floor's process: photos done, its CPU (user, system) and wall seconds."""

    photos: int
    user_seconds: float
    system_seconds: float
    wall_seconds: float

    @property
    def cpu_ms_per_photo(self) -> float:
        return 1000 * (self.user_seconds + self.system_seconds) / self.photos

    @property
    def system_ms_per_photo(self) -> float:
        return 1000 * self.system_seconds / self.photos

    @property
    def rate(self) -> float:
        """Photos per second."""
        return self.photos / self.wall_seconds


def verdict(value: float, target: float, *, at_least: bool) -> str:
    """``met`` or ``MISSED`` for ``value`` against ``target`` (a floor if ``at_least``, else a ceiling)."""
    return "met" if (value >= target if at_least else value <= target) else "MISSED"


# ---------------------------------------------------------------- /proc


def program_name(comm: str, cmdline: Sequence[bytes]) -> str:
    """A process's program, as the CPU tables name it: a Python script by its file's name."""
    names = [Path(part.decode(errors="replace")).name for part in cmdline[:2]]
    if names and names[0].startswith("python") and len(names) > 1 and names[1]:
        return names[1]  # a script: dp3-archiver, supervisord, this benchmark...
    if comm.startswith("work_queue_work"):
        return "work_queue_worker (+ render tasks)"
    if comm in ERLANG:
        return "rabbitmq (erlang)"
    return comm


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    parent: int
    comm: str
    program: str
    flags: int
    cpu: CpuPair  # its own and its waited-for children's
    args: list[bytes]


def processes() -> Iterator[ProcessSample]:
    """Every process now, from ``/proc/<pid>/stat`` and ``cmdline``; one gone meanwhile is left out."""
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        comm, fields = raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()
        utime, stime, cutime, cstime = (int(value) / ticks for value in fields[11:15])
        yield ProcessSample(
            int(entry.name),
            int(fields[1]),
            comm,
            program_name(comm, cmdline),
            int(fields[6]),
            (utime + cutime, stime + cstime),
            cmdline,
        )


def _in_stack(pid: int, marker: bytes) -> bool:
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def threads(pid: int) -> list[int]:
    try:
        return [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


@dataclass
class Run:
    """This run's processes: the stack's DP3_HOME, the workers and other instances the benchmark started, the cores."""

    home: Path
    cores: Cores
    rabbitmq: frozenset[int]  # the RabbitMQ processes pinned (server VMs and epmd); those below them count too
    worker_pids: list[int] = field(default_factory=list)
    added_pids: list[int] = field(default_factory=list)  # more instances of a stage (``stack.py add``), e.g. archivers
    added_on_worker: bool = False  # else on the head core, carrying DP3_HOME: counted with the stack

    def grouped(self) -> list[tuple[str, ProcessSample]]:
        """Every process now, with its group; an added instance's program is named with :data:`ADDED`."""
        samples = list(processes())
        parents = {sample.pid: sample.parent for sample in samples}
        added = tree(self.added_pids, parents)
        worker_tree, rabbitmq = tree(self.worker_pids, parents), tree(self.rabbitmq, parents)
        if self.added_on_worker:
            worker_tree |= added
        marker = f"DP3_HOME={self.home}".encode()
        grouped = []
        for sample in samples:
            if sample.pid in added:
                sample = dataclasses.replace(sample, program=sample.program + ADDED)
            kernel_thread = bool(sample.flags & PF_KTHREAD)
            facts = ProcessFacts(
                sample.pid,
                sample.program,
                sample.comm,
                kernel_thread,
                in_stack=not kernel_thread and sample.pid not in worker_tree and _in_stack(sample.pid, marker),
                rabbitmq=sample.pid in rabbitmq,
            )
            grouped.append((core_group(facts, worker_tree, os.getpid()), sample))
        return grouped

    def cpu_by_group(self) -> dict[tuple[str, str], CpuPair]:
        """(user, kernel) CPU seconds so far per (group, program)."""
        totals: dict[tuple[str, str], CpuPair] = {}
        for group, sample in self.grouped():
            user, kernel = totals.get((group, sample.program), (0.0, 0.0))
            totals[group, sample.program] = (user + sample.cpu[0], kernel + sample.cpu[1])
        return totals


@dataclass
class PinningCheck:
    """What the looks at every thread's affinity during the run found."""

    looks: int = 0
    processes: dict[str, set[int]] = field(default_factory=dict)  # group -> pids seen
    threads: dict[str, set[int]] = field(default_factory=dict)  # group -> thread ids seen
    render_tasks: set[int] = field(default_factory=set)  # worker-core processes other than the workers and added
    added: dict[str, set[int]] = field(default_factory=dict)  # group -> added instances seen (--archivers)
    wrong: list[str] = field(default_factory=list)

    def look(self, run: Run) -> None:
        """Read the affinity of every thread of the head and worker groups; note any that is not as pinned."""
        self.looks += 1
        for group, sample in run.grouped():
            wanted = expected_cpus(group, run.cores)
            if wanted is None:
                continue
            self.processes.setdefault(group, set()).add(sample.pid)
            if sample.program.endswith(ADDED):
                self.added.setdefault(group, set()).add(sample.pid)
            elif group == WORKER and sample.comm != WORKER_PROGRAM:
                self.render_tasks.add(sample.pid)
            for tid in threads(sample.pid):
                try:
                    found = os.sched_getaffinity(tid)
                except OSError:  # gone meanwhile
                    continue
                self.threads.setdefault(group, set()).add(tid)
                if found != wanted:
                    self.wrong.append(f"{sample.program} pid {sample.pid} thread {tid}: {sorted(found)} (not {group})")

    def summary(self, cores: Cores) -> str:
        def count(group: str) -> str:
            added = f" ({len(self.added[group])} added)" if self.added.get(group) else ""
            return f"{len(self.processes.get(group, ()))} processes{added}, {len(self.threads.get(group, ()))} threads"

        held = "held" if not self.wrong else f"BROKEN ({len(self.wrong)} threads elsewhere: {self.wrong[:3]})"
        return (
            f"pinning {held}: {self.looks} looks at sched_getaffinity of every thread; "
            f"head core {cores.head}: {count(HEAD)} (stack + rabbitmq); "
            f"worker core {cores.worker}: {count(WORKER)}, of them {len(self.render_tasks)} render tasks"
        )


AMQP_PORT = 5672
TCP_LISTEN = "0A"


def listening_inodes(tables: Iterable[str], port: int) -> set[str]:
    """Socket inodes listening on ``port`` in the text of ``/proc/net/tcp``-like tables."""
    found = set()
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[3] == TCP_LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def _holds_socket(pid: int, inodes: set[str]) -> bool:
    try:
        return any(os.readlink(fd.path)[8:-1] in inodes for fd in os.scandir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def rabbitmq_roots(samples: Sequence[ProcessSample], port: int = AMQP_PORT) -> frozenset[int]:
    """The RabbitMQ server VM that listens on ``port`` (every server VM if none can be told), and epmd."""
    servers = [sample.pid for sample in samples if is_rabbitmq_server(sample.comm, sample.args)]
    tables = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            tables.append(Path(name).read_text())
    inodes = listening_inodes(tables, port)
    serving = [pid for pid in servers if _holds_socket(pid, inodes)] or servers
    return frozenset([*serving, *(sample.pid for sample in samples if sample.comm == "epmd")])


@dataclass
class Pinned:
    roots: frozenset[int]  # the server VM and epmd
    threads: int
    restored: int = 0  # threads whose own mask was read back after the run
    not_restored: int = 0  # threads whose mask differs from the one they had (none unless something changed it)


@contextlib.contextmanager
def rabbitmq_pinned(cpu: int) -> Iterator[Pinned]:
    """Every thread of the RabbitMQ server (its VM, the processes below it, epmd) on ``cpu``; masks back after.

    The server is the VM listening on the AMQP port; the CLI's VMs (rabbitmqctl,
    started by anyone meanwhile) and any other node are left alone. Each thread
    gets its own mask back (the VM may bind each scheduler to one core); one
    born meanwhile gets the union of the masks found.
    """
    samples = list(processes())
    roots = rabbitmq_roots(samples)
    pinned = tree(roots, {s.pid: s.parent for s in samples})
    before: dict[int, set[int]] = {}
    pinned_run = Pinned(roots, 0)
    try:
        for pid in pinned:
            for tid in threads(pid):
                with contextlib.suppress(OSError):
                    before[tid] = os.sched_getaffinity(tid)
                    os.sched_setaffinity(tid, {cpu})
        pinned_run.threads = len(before)
        yield pinned_run
    finally:
        fallback = set().union(*before.values()) if before else set(range(os.cpu_count() or 1))
        for pid in tree(roots, {s.pid: s.parent for s in processes()}):
            for tid in threads(pid):
                with contextlib.suppress(OSError):
                    os.sched_setaffinity(tid, before.get(tid, fallback))
                    if tid in before:
                        back = os.sched_getaffinity(tid) == before[tid]
                        pinned_run.restored += back
                        pinned_run.not_restored += not back


# ---------------------------------------------------------------- the file-work floor


def pin(cpu: int) -> None:
    """This process on ``cpu`` (a process pool's initializer)."""
    os.sched_setaffinity(0, {cpu})


def _durable_copy(source: Path, target: Path) -> None:
    """``source``'s bytes into a new ``target`` in the kernel, fsynced, then its cached pages dropped."""
    with source.open("rb") as reading, target.open("xb") as writing:
        size, offset = os.fstat(reading.fileno()).st_size, 0
        while offset < size:
            sent = os.sendfile(writing.fileno(), reading.fileno(), offset, size - offset)
            if sent == 0:
                raise OSError(f"{source}: ended at {offset} of {size} bytes")
            offset += sent
        os.fsync(writing.fileno())
        # Clean after the fsync, so the pages can go: the read-back below comes from the device.
        os.posix_fadvise(writing.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


@dataclass(frozen=True)
class FloorPhoto:
    """One photo's inputs: the inbox file, its pre-rendered artifacts, and their names in a store folder."""

    original: Path
    artifacts: tuple[Path, ...]
    stored_names: tuple[str, ...]  # the original's first, then the artifacts'


def floor_one(photo: FloorPhoto, folders: Sequence[Path]) -> None:
    """The least a verified double archive does for one photo: copies, fsyncs, read-backs.

    The original and its artifacts into each store folder, each file fsynced,
    then the folder; the copies' cached pages dropped; then the sha256 of the
    inbox file and of the original's copy in each store, read back from the device.
    """
    sources = (photo.original, *photo.artifacts)
    for folder in folders:
        for source, name in zip(sources, photo.stored_names, strict=True):
            _durable_copy(source, folder / name)
        fsync_dir(folder)
    expected = sha256_file(photo.original)
    for folder in folders:
        if sha256_file(folder / photo.stored_names[0]) != expected:
            raise RuntimeError(f"{folder / photo.stored_names[0]}: read back differs from {photo.original}")


def file_work_floor(photos: Sequence[FloorPhoto], folders: Sequence[Path]) -> FloorRun:
    """:func:`floor_one` for every photo in this one process; its CPU (getrusage) and wall time."""
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    before, started = os.times(), time.perf_counter()
    for photo in photos:
        floor_one(photo, folders)
    wall, after = time.perf_counter() - started, os.times()
    return FloorRun(len(photos), after.user - before.user, after.system - before.system, wall)
