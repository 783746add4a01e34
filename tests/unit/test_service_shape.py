"""Every service has the one shape of ``dp3.app``: an App built from settings without I/O, handler tables
that match the queue bindings of ``dp3.topology`` exactly, and one ``main()`` (``dp3.service.run_service``)."""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from dp3 import ports
from dp3.app import HandlerTableMismatch, ServiceApp, bound_statuses, check_handlers, dispatch, topic_matches
from dp3.broker import HandlerResult, Message
from dp3.events import JournalEntry, Status
from dp3.settings import load_settings
from dp3.topology import ALL_QUEUES, ARCHIVER, DISPATCHER, PORTAL, SCANNER, QueueSpec
from dp3_archiver.app import ArchiverApp
from dp3_archiver.settings import ArchiverSettings
from dp3_dispatcher.app import DispatcherApp
from dp3_dispatcher.settings import DispatcherSettings
from dp3_intake.intake_app import IntakeApp
from dp3_intake.receipts import QUEUE as INTAKE_RECEIPTS
from dp3_intake.settings import IntakeSettings
from dp3_portal.app import PortalApp
from dp3_portal.settings import PortalSettings
from dp3_scanner.app import ScannerApp
from dp3_scanner.settings import ScannerSettings

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("scanner", "dispatcher", "archiver", "portal", "intake")


def build_apps(home: Path) -> dict[str, ServiceApp]:
    # A broker nobody listens on: constructing must not even try it.
    common = {"home": home, "amqp_url": f"amqp://guest:guest@127.0.0.1:{ports.free_port()}/%2F"}
    stores = (home / "store-a", home / "store-b")
    return {
        "scanner": ScannerApp(load_settings(ScannerSettings, **common)),
        "dispatcher": DispatcherApp(load_settings(DispatcherSettings, **common, work_queue_port=ports.free_port())),
        "archiver": ArchiverApp(load_settings(ArchiverSettings, **common, stores=stores)),
        "portal": PortalApp(load_settings(PortalSettings, **common)),
        "intake": IntakeApp(load_settings(IntakeSettings, **common, stores=stores)),
    }


def test_constructing_every_app_writes_nothing_and_starts_no_thread(tmp_path: Path) -> None:
    home = tmp_path / "home"
    threads = set(threading.enumerate())
    apps = build_apps(home)
    assert not home.exists(), sorted(str(path) for path in home.rglob("*"))
    assert not set(threading.enumerate()) - threads  # none started (others may have ended meanwhile)
    for name, app in apps.items():
        assert app.health() == (False, "starting"), name


def test_stopping_an_app_that_never_started_does_nothing(tmp_path: Path) -> None:
    for app in build_apps(tmp_path / "home").values():
        app.stop()
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("service", SERVICES)
def test_each_handler_table_matches_its_queue_bindings(service: str, tmp_path: Path) -> None:
    tables = build_apps(tmp_path / "home")[service].handlers()
    for spec, table in tables.items():
        check_handlers(spec, table)  # raises on any mismatch
        assert set(table) == bound_statuses(spec)


def test_every_queue_of_the_topology_has_exactly_one_consuming_service(tmp_path: Path) -> None:
    consumed = [spec for app in build_apps(tmp_path / "home").values() for spec in app.handlers()]
    # The intake's receipt queue is its own, left out of ALL_QUEUES (an installation without an intake).
    assert sorted(spec.name for spec in consumed) == sorted([*(spec.name for spec in ALL_QUEUES), INTAKE_RECEIPTS.name])


def test_the_tables_say_which_service_takes_which_status(tmp_path: Path) -> None:
    apps = build_apps(tmp_path / "home")
    assert set(apps["dispatcher"].handlers()[DISPATCHER]) == {Status.DETECTED}
    assert set(apps["archiver"].handlers()[ARCHIVER]) == {Status.PROCESSED, Status.FAILED, Status.DUPLICATE}
    assert set(apps["scanner"].handlers()[SCANNER]) == {Status.ARCHIVED, Status.COLLECTED}
    assert set(apps["portal"].handlers()[PORTAL]) == set(Status)
    assert set(apps["intake"].handlers()[INTAKE_RECEIPTS]) == {
        Status.DETECTED,
        Status.FAILED,
        Status.DUPLICATE,
        Status.ARCHIVED,
        Status.COLLECTED,
    }


def _handler(_message: Message) -> HandlerResult:
    return []


def test_a_bound_status_without_a_handler_is_refused_by_name() -> None:
    with pytest.raises(HandlerTableMismatch, match=r"archiver: bound but without a handler: Duplicate$"):
        check_handlers(ARCHIVER, {Status.PROCESSED: _handler, Status.FAILED: _handler})


def test_a_handler_for_a_status_the_queue_never_receives_is_refused_by_name() -> None:
    table = {Status.DETECTED: _handler, Status.COLLECTED: _handler}
    with pytest.raises(HandlerTableMismatch, match=r"dispatcher: handled but not bound: Collected$"):
        check_handlers(DISPATCHER, table)


def test_both_mismatches_are_named_at_once() -> None:
    with pytest.raises(HandlerTableMismatch, match=r"without a handler: Detected; handled but not bound: Archived"):
        check_handlers(DISPATCHER, {Status.ARCHIVED: _handler})


def test_dispatch_checks_the_table_before_it_hands_out_a_handler() -> None:
    with pytest.raises(HandlerTableMismatch):
        dispatch(DISPATCHER, {})


def _message(status: Status) -> Message:
    entry = JournalEntry(id="OLGA-K_1_a.jpg", status=status, datetime=1, owner="OLGA-K", path="/inbox/OLGA-K/a.jpg")
    return Message(entry=entry, redelivered=False, handler_failures=0, retries=0, body=entry.to_json())


def test_dispatch_hands_each_status_to_its_own_handler_and_acknowledges_a_stray_one() -> None:
    seen: list[str] = []

    def recording(name: str) -> Callable[[Message], HandlerResult]:
        def handle(message: Message) -> HandlerResult:
            seen.append(f"{name}:{message.entry.status.value}")
            return [message.entry]

        return handle

    spec = QueueSpec("scanner.archived", (Status.ARCHIVED.routing_key, Status.COLLECTED.routing_key))
    handle = dispatch(spec, {Status.ARCHIVED: recording("a"), Status.COLLECTED: recording("c")})
    collected = _message(Status.COLLECTED)
    assert handle(collected) == [collected.entry]
    handle(_message(Status.ARCHIVED))
    assert seen == ["c:Collected", "a:Archived"]
    assert handle(_message(Status.DETECTED)) == []  # published straight to the queue by hand: logged, acked
    assert seen == ["c:Collected", "a:Archived"]


@pytest.mark.parametrize(
    ("binding", "key", "matches"),
    [
        ("photo.detected", "photo.detected", True),
        ("photo.detected", "photo.processed", False),
        ("photo.*", "photo.detected", True),
        ("photo.*", "photo.detected.again", False),
        ("photo.#", "photo.detected", True),
        ("photo.#", "photo", True),
        ("#", "photo.detected", True),
        ("#.detected", "photo.detected", True),
        ("*.detected", "detected", False),
        ("photo.#.x", "photo.a.b.x", True),
    ],
)
def test_topic_bindings_match_as_in_rabbitmq(binding: str, key: str, matches: bool) -> None:
    assert topic_matches(binding, key) is matches


@pytest.mark.parametrize("service", SERVICES)
def test_each_entry_point_only_hands_its_settings_and_app_to_run_service(service: str) -> None:
    """The same ``main()`` everywhere: no hand-made start-up (and no ``holder`` list for the health check)."""
    source = ROOT / "services" / service / "src" / f"dp3_{service}" / "__main__.py"
    tree = ast.parse(source.read_text())
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert len(main.body) == 1, ast.unparse(main)
    call = main.body[0]
    assert isinstance(call, ast.Expr) and isinstance(call.value, ast.Call)
    assert ast.unparse(call.value.func) == "run_service"
    assert ast.unparse(call.value.args[0]) == repr(service)
