"""The split-core mode's decisions: which core is which, whose CPU counts where, the floor's arithmetic."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from benchmarks.split_cores import (
    ADDED,
    BENCHMARK,
    HEAD,
    KERNEL,
    OTHER,
    WORKER,
    Cores,
    FloorPhoto,
    FloorRun,
    ProcessFacts,
    Run,
    choose_cores,
    core_group,
    expected_cpus,
    file_work_floor,
    is_rabbitmq_server,
    listening_inodes,
    tree,
    verdict,
)


def test_cores_default_to_the_lowest_for_the_head_and_the_highest_for_the_workers() -> None:
    assert choose_cores({0, 1}) == Cores(head=0, worker=1)
    assert choose_cores([3, 1, 2]) == Cores(head=1, worker=3)
    assert choose_cores({0, 1, 2}, head=2) == Cores(head=2, worker=1)
    assert choose_cores({0, 1}, head=1, worker=0) == Cores(head=1, worker=0)


@pytest.mark.parametrize(
    ("available", "head", "worker", "message"),
    [
        ({0}, None, None, "needs two cores"),
        ({0, 1}, 5, None, "--head-core 5: not one of the cores"),
        ({0, 1}, None, 7, "--worker-core 7: not one of the cores"),
        ({0, 1}, 1, 1, "both 1: they must differ"),
    ],
)
def test_cores_refused_with_the_reason(available: set[int], head: int | None, worker: int | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose_cores(available, head, worker)


def test_tree_is_the_roots_and_everything_below_them_but_not_beside() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1, 21: 20}
    assert tree([10], parents) == {10, 11, 12}
    assert tree([10, 20], parents) == {10, 11, 12, 20, 21}
    assert tree([99], parents) == set()  # gone already: nothing below it is claimed


def _facts(
    pid: int, *, comm: str = "python3", kernel: bool = False, stack: bool = False, rabbit: bool = False
) -> ProcessFacts:
    return ProcessFacts(pid, comm, comm, kernel_thread=kernel, in_stack=stack, rabbitmq=rabbit)


def test_groups_workers_first_then_the_stack_and_rabbitmq_then_what_is_not_counted() -> None:
    workers = {40, 41}
    # A worker would also be in the stack if it carried DP3_HOME: the worker core wins.
    assert core_group(_facts(40, comm="work_queue_worker", stack=True), workers, benchmark_pid=7) == WORKER
    assert core_group(_facts(41), workers, 7) == WORKER
    assert core_group(_facts(50, stack=True), workers, 7) == HEAD
    assert core_group(_facts(60, comm="beam.smp", rabbit=True), workers, 7) == HEAD
    # A CLI command's VM (rabbitmqctl) is Erlang too, but not the server this run pinned.
    assert core_group(_facts(61, comm="beam.smp"), workers, 7) == OTHER
    assert core_group(_facts(2, comm="kthreadd", kernel=True), workers, 7) == KERNEL
    assert core_group(_facts(7), workers, 7) == BENCHMARK
    assert core_group(_facts(70, comm="pytest"), workers, 7) == OTHER


def test_only_the_head_and_worker_groups_have_an_expected_affinity() -> None:
    cores = Cores(head=0, worker=1)
    assert expected_cpus(HEAD, cores) == {0}
    assert expected_cpus(WORKER, cores) == {1}
    assert expected_cpus(KERNEL, cores) is None
    assert expected_cpus(OTHER, cores) is None


def test_the_rabbitmq_server_is_told_from_a_cli_vm_by_its_boot_arguments() -> None:
    server = [b"/usr/lib/erlang/erts-13.1.5/bin/beam.smp", b"-noshell", b"-s", b"rabbit", b"boot", b"-boot"]
    cli = [b"/usr/lib/erlang/erts-13.1.5/bin/beam.smp", b"-noshell", b"-s", b"elixir", b"start_cli", b"rabbitmqctl"]
    assert is_rabbitmq_server("beam.smp", server)
    assert not is_rabbitmq_server("beam.smp", cli)
    assert not is_rabbitmq_server("python3", server)


def test_listening_inodes_reads_only_listening_sockets_on_the_port() -> None:
    table = (
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   7: 0100007F:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 6780 1 0\n"
        "  47: 0100007F:806C 0100007F:1628 01 00000000:00000000 00:00000000 00000000     0        0 339073 1 0\n"
        "  48: 0100007F:1628 0100007F:806C 01 00000000:00000000 00:00000000 00000000   106        0 339074 1 0\n"
        "   8: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1234 1 0\n"
    )
    assert listening_inodes([table], 5672) == {"6780"}
    assert listening_inodes([table], 22) == {"1234"}
    assert listening_inodes([table], 80) == set()


def test_floor_per_photo_arithmetic() -> None:
    run = FloorRun(photos=200, user_seconds=0.9, system_seconds=0.5, wall_seconds=8.0)
    assert run.cpu_ms_per_photo == pytest.approx(7.0)
    assert run.system_ms_per_photo == pytest.approx(2.5)
    assert run.rate == pytest.approx(25.0)


def test_verdicts_at_their_bounds() -> None:
    assert verdict(0.9, 0.9, at_least=True) == "met"
    assert verdict(0.89, 0.9, at_least=True) == "MISSED"
    assert verdict(4.0, 4, at_least=False) == "met"
    assert verdict(4.01, 4, at_least=False) == "MISSED"


def test_floor_copies_every_file_into_each_store_and_reads_the_originals_back(tmp_path: Path) -> None:
    original, thumbnail, web = (tmp_path / name for name in ("a.jpg", "thumb.jpg", "web.jpg"))
    original.write_bytes(b"original bytes" * 1000)
    thumbnail.write_bytes(b"thumbnail")
    web.write_bytes(b"web")
    folders = [tmp_path / "archive-a" / "2000-01-01", tmp_path / "archive-b" / "2000-01-01"]
    photo = FloorPhoto(original, (thumbnail, web), ("a.jpg", "a_thumb.jpg", "a_web.jpg"))
    run = file_work_floor([photo], folders)
    assert run.photos == 1
    assert run.user_seconds >= 0
    assert run.system_seconds >= 0
    assert run.wall_seconds > 0
    for folder in folders:
        assert (folder / "a.jpg").read_bytes() == original.read_bytes()
        assert (folder / "a_thumb.jpg").read_bytes() == b"thumbnail"
        assert (folder / "a_web.jpg").read_bytes() == b"web"
    assert original.exists()  # the floor never touches the inbox file but to read it


@pytest.mark.parametrize(("on_worker", "group"), [(True, WORKER), (False, HEAD)])
def test_an_added_instance_counts_on_the_core_it_was_pinned_to(tmp_path: Path, on_worker: bool, group: str) -> None:
    # It carries the stack's DP3_HOME (stack.py add), like the stack's own services.
    env = {**os.environ, "DP3_HOME": str(tmp_path)}
    added = subprocess.Popen(["sleep", "30"], env=env)
    try:
        run = Run(tmp_path, Cores(0, 1), frozenset(), added_pids=[added.pid], added_on_worker=on_worker)
        found = {sample.pid: (where, sample.program) for where, sample in run.grouped()}
        assert found[added.pid] == (group, "sleep" + ADDED)
    finally:
        added.kill()
        added.wait()
