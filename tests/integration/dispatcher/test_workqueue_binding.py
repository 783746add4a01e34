"""The cffi binding against real work_queue_worker processes."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dp3_dispatcher.workqueue import (
    InputFile,
    Manager,
    OutputFile,
    Result,
    Task,
    TaskResult,
    WorkQueueError,
    hostname_of,
    query_workers,
)
from tests.integration.dispatcher.harness import Worker
from tests.rabbit import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def manager() -> Iterator[Manager]:
    with Manager(0) as created:
        yield created


def _wait_result(manager: Manager, timeout: float = 30) -> TaskResult:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = manager.wait(1)
        if result is not None:
            return result
    raise AssertionError("no task came back")


def test_port_zero_is_read_back_and_two_managers_get_distinct_ports(manager: Manager) -> None:
    assert manager.port >= 1024
    with Manager(0) as second:
        assert second.port not in (0, manager.port)


def test_a_task_runs_on_a_real_worker_with_inputs_outputs_tag_and_environment(manager: Manager, tmp_path: Path) -> None:
    source = tmp_path / "in put é.txt"  # any local input name works
    source.write_text("hello\n")
    out = tmp_path / "result.txt"
    worker = Worker(manager.port, workdir=tmp_path / "w1")
    try:
        task_id = manager.submit(
            Task(
                "cat data > copy.txt && echo $GREETING && exit 3",
                inputs=[InputFile(source, "data", cache=True)],
                outputs=[OutputFile("copy.txt", out)],
                tag="the-tag",
                cores=1,
                memory_mb=100,
                max_retries=2,
                env={"GREETING": "salut"},
            )
        )
        assert manager.outstanding == 1
        result = _wait_result(manager)
    finally:
        worker.stop()
    assert result.task_id == task_id and result.tag == "the-tag"
    assert result.result is Result.SUCCESS and result.succeeded
    assert result.return_status == 3
    assert result.output == "salut\n"
    assert out.read_text() == "hello\n"
    assert result.worker_address is not None and result.worker_address.startswith("127.0.0.1:")
    assert result.hostname  # a printable host name
    assert result.try_count == 1
    assert manager.outstanding == 0


def test_wait_returns_at_once_when_nothing_is_outstanding(manager: Manager) -> None:
    started = time.monotonic()
    assert manager.wait(5) is None
    assert time.monotonic() - started < 2


def test_wait_releases_the_gil(manager: Manager) -> None:
    manager.submit(Task("true"))  # no worker: the wait blocks its whole timeout
    counts = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            counts[0] += 1

    spinner = threading.Thread(target=spin)
    spinner.start()
    started = time.monotonic()
    try:
        assert manager.wait(2) is None
    finally:
        stop.set()
        spinner.join()
    assert time.monotonic() - started >= 1.5
    assert counts[0] > 100_000, "the other thread barely ran while wait() blocked"


def test_cancel_stats_and_shutdown(manager: Manager, tmp_path: Path) -> None:
    first = manager.submit(Task("sleep 30", cores=1))
    second = manager.submit(Task("true", cores=1))
    stats = manager.stats()
    assert stats.tasks_submitted == 2 and stats.tasks_waiting == 2
    assert manager.cancel(second)
    assert not manager.cancel(second)
    assert not manager.cancel(99999)
    worker = Worker(manager.port, workdir=tmp_path / "w")
    try:
        wait_for(lambda: manager.wait(1) is None and manager.stats().tasks_running == 1, 30, "the sleep running")
        assert manager.stats().workers_connected == 1
        assert manager.cancel(first)
        assert manager.stats().tasks_cancelled == 2
    finally:
        worker.stop()
    manager.shutdown()
    manager.shutdown()  # idempotent
    with pytest.raises(WorkQueueError):
        manager.submit(Task("true"))


def test_a_refused_input_raises_and_frees_the_task(manager: Manager, tmp_path: Path) -> None:
    for remote in ("", "/etc/passwd", "../up"):  # an absolute one would make the C library exit
        with pytest.raises(WorkQueueError):
            manager.submit(Task("true", inputs=[InputFile(tmp_path / "x", remote)]))
    with pytest.raises(WorkQueueError):  # refused by the C library: two files, one remote name
        manager.submit(Task("true", inputs=[InputFile(tmp_path / "a", "same"), InputFile(tmp_path / "b", "same")]))
    assert manager.outstanding == 0
    assert manager.stats().tasks_submitted == 0


def test_the_worker_hostname_is_reported_and_also_found_by_address(manager: Manager, tmp_path: Path) -> None:
    worker = Worker(manager.port, workdir=tmp_path / "w", hostname="node-seven")
    try:
        manager.submit(Task("true", cores=1))
        result = _wait_result(manager)
        assert result.hostname == "node-seven"
        assert result.worker_address is not None
        found: list[str | None] = []
        asker = threading.Thread(target=lambda: found.append(hostname_of(manager.port, result.worker_address or "")))
        asker.start()
        while asker.is_alive():  # the manager answers status queries inside wait()
            manager.wait(1)
        assert found == ["node-seven"]
    finally:
        worker.stop()


def test_a_blocked_host_gets_no_tasks(manager: Manager, tmp_path: Path) -> None:
    blocked = Worker(manager.port, workdir=tmp_path / "blocked", hostname="blocked-node")
    try:
        manager.submit(Task("hostname", cores=1))
        first = _wait_result(manager)
        assert first.hostname == "blocked-node"
        manager.block_host("blocked-node")
        manager.submit(Task("hostname", cores=1))
        for _ in range(3):  # the only worker is blocked: nothing runs
            assert manager.wait(1) is None
        good = Worker(manager.port, workdir=tmp_path / "good")
        try:
            second = _wait_result(manager)
        finally:
            good.stop()
    finally:
        blocked.stop()
    assert second.hostname != "blocked-node"
    assert second.output.strip() != "blocked-node"


def test_memory_is_freed(manager: Manager, tmp_path: Path) -> None:
    files = [InputFile(tmp_path / f"f{i}", f"f{i}") for i in range(5)]

    def churn(count: int) -> None:
        for _ in range(count):
            manager.cancel(manager.submit(Task("echo " + "x" * 2000, inputs=files, tag="t" * 200)))

    churn(2000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    churn(20000)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    # Leaking every task would take well over 50 MB (20000 x ~3 KB of strings alone).
    assert grown_kb < 20_000, f"resident size grew by {grown_kb} KB over 20000 tasks"


def test_a_manager_with_a_password_runs_tasks_only_on_workers_that_hold_it(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"the shared secret\n")  # byte for byte, newline included, on both sides
    wrong = tmp_path / "wrong"
    wrong.write_bytes(b"the shared secret")
    with pytest.raises(WorkQueueError, match="password"):
        Manager(0, password_file=tmp_path / "absent")
    with Manager(0, password_file=secret) as guarded:
        intruders = [
            Worker(guarded.port, workdir=tmp_path / "w-none"),
            Worker(guarded.port, workdir=tmp_path / "w-wrong", password_file=wrong),
        ]
        trusted: Worker | None = None
        try:
            guarded.submit(Task("echo ran", cores=1))
            for _ in range(5):
                assert guarded.wait(1) is None
            assert guarded.stats().workers_connected == 0
            trusted = Worker(guarded.port, workdir=tmp_path / "w-right", password_file=secret)
            result = _wait_result(guarded)
            assert result.output == "ran\n"
            answers: list[object] = []

            def ask(password: bytes) -> None:
                try:
                    answers.append(len(query_workers(guarded.port, password=password)))
                except PermissionError as exc:
                    answers.append(exc)

            for password in (b"the shared secret\n", b"the shared secret"):
                asker = threading.Thread(target=ask, args=(password,))
                asker.start()
                guarded.submit(Task("sleep 1", cores=1))
                while asker.is_alive():  # the manager answers status queries inside wait()
                    guarded.wait(1)
                _wait_result(guarded)
            assert answers[0] == 1 and isinstance(answers[1], PermissionError)
        finally:
            for worker in [*intruders, *([trusted] if trusted else [])]:
                worker.stop()
