"""The dispatcher's handling of returned tasks, constructed in-process with a fake Work Queue (dp3.testing).

``verdict`` decides (tests/unit/dispatcher/test_verdict.py); these tests
prove that ``Dispatcher`` carries the decisions out: it stages and publishes
a verified render, drops a photo whose original left and sends the others of
its task again uncharged (the INPUT_MISS fix that only a chaos run found), splits a
task that died into tasks of one, charges a photo only when it dies alone,
and blocks a host that cannot render. The Work Queue manager is faked; the
files, the staging folder and the render itself (``render_task.py`` run as a
worker runs it, from the files a task ships) are real.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dp3 import layout
from dp3.events import ErrorKind, JournalEntry, Status
from dp3.settings import load_settings
from dp3.testing import FakeRunner, Submitted, delivered
from dp3_dispatcher.dispatcher import Dispatcher
from dp3_dispatcher.runner import Runner
from dp3_dispatcher.settings import DispatcherSettings
from dp3_dispatcher.staging import Staging
from dp3_dispatcher.workqueue import Result, Stats, Task, TaskResult

OWNER = "OLGA-K"
PHOTOS = ("jpg/Canon_40D.jpg", "jpg/gps/DSCN0010.jpg", "jpg/orientation/portrait_6.jpg")
WORKER = "10.0.0.7:9999"
HOST = "node-7"

Events = Sequence[JournalEntry]
FakeWorkQueue = FakeRunner[Task, TaskResult, Stats]


def stats(workers: int) -> Stats:
    return Stats(workers, 0, workers, 0, workers, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


class Site:
    """An inbox with real photos, a staging folder, and a dispatcher whose Work Queue is a fake."""

    def __init__(self, root: Path, corpus: Path, **settings: object) -> None:
        self.inbox = root / "inbox"
        (self.inbox / OWNER).mkdir(parents=True)
        self.settings = load_settings(
            DispatcherSettings,
            home=root / "home",
            inbox=self.inbox,
            staging=root / "staging",
            worker_provider="none",  # the workers that count are the fake's: one
            **settings,
        )
        self.runner: FakeWorkQueue = FakeRunner(stats(1), hosts={WORKER: HOST})
        runner: Runner = self.runner  # the fake has the real runner's interface
        self.dispatcher = Dispatcher(self.settings, runner, Staging(self.settings.staging_dir))
        self.corpus = corpus

    def detected(self, photo: str) -> JournalEntry:
        source = self.corpus / photo
        target = self.inbox / OWNER / source.name
        shutil.copyfile(source, target)
        data = target.read_bytes()
        return JournalEntry(
            id=f"{OWNER}_1355517208_{source.name}",
            status=Status.DETECTED,
            datetime=1355517208,
            owner=OWNER,
            path=str(target),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
            service="scanner",
        )

    def handle(self, entry: JournalEntry) -> concurrent.futures.Future[Events]:
        result = self.dispatcher.handle(delivered(entry))
        assert isinstance(result, concurrent.futures.Future), result
        return result


@pytest.fixture
def site(tmp_path: Path, corpus: Path) -> Iterator[Site]:
    made = Site(tmp_path, corpus, render_batch=2, render_attempts=1)
    yield made
    made.dispatcher.close()


def photos_of(task: Task) -> int:
    return sum(1 for item in task.inputs if item.remote.startswith("photo"))


def returned(result: Result, return_status: int = 0, output: str = "") -> TaskResult:
    now = time.time()
    return TaskResult(1, None, result, return_status, output, WORKER, None, 1, now - 1, now, 0.5)


def run_like_a_worker(submitted: Submitted[Task, TaskResult], scratch: Path) -> None:
    """Run the task's command the way a worker does: its inputs under their remote names, its outputs sent back."""
    task = submitted.task
    scratch.mkdir()
    for item in task.inputs:
        shutil.copyfile(item.local, scratch / item.remote)
    command = shlex.split(task.command)
    assert command[0] == "python3"
    done = subprocess.run([sys.executable, *command[1:]], cwd=scratch, capture_output=True, text=True, timeout=120)
    for output in task.outputs:
        shutil.copyfile(scratch / output.remote, output.local)
    submitted.future.set_result(returned(Result.SUCCESS, done.returncode, done.stdout))


def test_a_rendered_photo_is_verified_staged_and_published_as_processed(site: Site, tmp_path: Path) -> None:
    entry = site.detected(PHOTOS[0])
    future = site.handle(entry)
    task = site.runner.task(0)
    assert photos_of(task.task) == 1
    run_like_a_worker(task, tmp_path / "worker")
    (processed,) = future.result(30)
    assert processed.status is Status.PROCESSED and processed.id == entry.id
    assert processed.meta is not None and processed.meta["width"] > 0
    staged = site.settings.staging_dir / entry.id
    assert sorted(path.name for path in staged.iterdir()) == sorted(
        (layout.thumbnail_name(entry.id), layout.web_name(entry.id), layout.META_NAME)
    )


def test_input_miss_drops_the_photo_that_left_and_sends_the_other_again_uncharged(site: Site, tmp_path: Path) -> None:
    first, second, third = (site.detected(photo) for photo in PHOTOS)
    lone = site.handle(first)  # a worker is free: it goes at once, alone
    gone, stays = site.handle(second), site.handle(third)  # none free: they gather into one task of two
    assert [photos_of(site.runner.task(n).task) for n in (0, 1)] == [1, 2]
    Path(second.path).unlink()  # collected while its task was out
    site.runner.task(1).future.set_result(returned(Result.INPUT_MISSING))
    assert gone.result(10) == []  # nothing to render, nothing to report
    assert not stays.done()
    run_like_a_worker(site.runner.task(0), tmp_path / "worker-0")  # frees the worker
    assert [event.status for event in lone.result(30)] == [Status.PROCESSED]
    # With DP3_RENDER_ATTEMPTS=1 a charged attempt would have failed it; it is sent again, alone now.
    again = site.runner.task(2)
    assert photos_of(again.task) == 1
    run_like_a_worker(again, tmp_path / "worker-2")
    assert [event.status for event in stays.result(30)] == [Status.PROCESSED]
    assert len(site.runner.submitted) == 3


def test_a_batch_that_died_runs_each_photo_alone_and_charges_only_a_photo_that_dies_alone(
    site: Site, tmp_path: Path
) -> None:
    first, second, third = (site.detected(photo) for photo in PHOTOS)
    site.handle(first)
    culprit, innocent = site.handle(second), site.handle(third)
    killed = returned(Result.SUCCESS, 128 + 9, "")  # the shell's status for a process killed by SIGKILL
    site.runner.task(1).future.set_result(killed)
    # Uncharged (one attempt allowed, and neither failed), each in a task of its own, at once.
    alone = [site.runner.task(2), site.runner.task(3)]
    assert [photos_of(submitted.task) for submitted in alone] == [1, 1]
    assert not culprit.done() and not innocent.done()
    by_tag = {submitted.task.tag: submitted for submitted in alone}
    by_tag[second.id].future.set_result(killed)  # it dies alone too: that one is charged, and fails
    (failed,) = culprit.result(10)
    assert failed.status is Status.FAILED and failed.error is not None
    assert failed.error.kind is ErrorKind.RENDER_CRASHED and "killed" in failed.error.message
    run_like_a_worker(by_tag[third.id], tmp_path / "worker")
    assert [event.status for event in innocent.result(30)] == [Status.PROCESSED]


def test_a_worker_that_cannot_render_has_its_host_blocked_and_the_photo_sent_again(site: Site, tmp_path: Path) -> None:
    entry = site.detected(PHOTOS[0])
    future = site.handle(entry)
    no_pillow = '{"kind": "worker_environment", "message": "No module named PIL"}'
    site.runner.task(0).future.set_result(returned(Result.SUCCESS, 20, no_pillow))
    site.runner.wait_for(lambda runner: len(runner.submitted) == 2)
    assert site.runner.blocked == [(HOST, None)]  # for good: this host cannot render anything
    assert not future.done()  # not the photo's fault: no attempt charged
    run_like_a_worker(site.runner.task(1), tmp_path / "worker")
    assert [event.status for event in future.result(30)] == [Status.PROCESSED]
