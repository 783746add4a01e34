"""``dp3-field``: pair once, run, read the status.

    dp3-field pair https://<head node>/ <token>   the line the portal shows
    dp3-field run <folder> [--max-kbps N] [--free-space]
    dp3-field status

Every problem ends in one plain sentence and a non-zero exit, never a trace.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
import webbrowser
from pathlib import Path

from dp3.errors import ConfigError
from dp3.settings import load_settings
from dp3_field import pairing, status
from dp3_field.settings import FieldSettings


def _settings() -> FieldSettings:
    settings = load_settings(FieldSettings)
    assert isinstance(settings, FieldSettings)
    return settings


def pair(settings: FieldSettings, url: str, token: str, owner: str | None, open_page: bool) -> int:
    from dp3_field.intake import Intake, IntakeError, Pacer

    paired = pairing.check(url, token)
    intake = Intake(paired.url, paired.token, timeout=settings.timeout_seconds, pacer=Pacer(0))
    try:
        owner = owner or str(intake.device()["owner"])
        print(f"Paired with {paired.url} for {owner}.")
    except (IntakeError, KeyError) as exc:
        if owner is None:
            print(
                f"Saved. The head node could not be asked whose laptop this is yet ({exc}); "
                "it will be asked on the first run."
            )
    finally:
        intake.close()
    pairing.save(pairing.Pairing(paired.url, paired.token, owner), settings.pairing_path)
    page = f"http://127.0.0.1:{settings.status_port}/"
    print(f"Next: dp3-field run <the folder your camera card is imported into>\nYour status page: {page}")
    if open_page:
        webbrowser.open(page)
    return 0


def run(settings: FieldSettings, folder: Path, max_kbps: float | None, free_space: bool) -> int:
    from dp3_field.agent import Agent

    if not folder.is_dir():
        print(f"dp3-field: {folder} is not a folder", file=sys.stderr)
        return 2
    paired = pairing.load(settings.pairing_path)
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    agent = Agent(
        settings,
        paired,
        folder,
        max_kbps=settings.max_kbps if max_kbps is None else max_kbps,
        free_space=free_space,
        stop=stop,
    )
    page = status.StatusPage(settings.queue_path, settings.status_port, time.time)
    page.start()
    print(f"dp3-field is sending {folder} to {paired.url}; status page: {page.url}", flush=True)
    try:
        agent.run()
    finally:
        page.stop()
    return 0


def show_status(settings: FieldSettings) -> int:
    if not settings.pairing_path.exists() and not settings.queue_path.exists():
        print("Not paired yet: type the 'dp3-field pair ...' line the portal's Devices page shows you.")
        return 0
    print(status.as_text(status.read_summary(settings.queue_path, time.time())), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dp3-field", description="Send photos from the field to the DP3 head node.")
    commands = parser.add_subparsers(dest="command", required=True)
    pair_cmd = commands.add_parser("pair", help="pair this laptop once, with the line the portal shows")
    pair_cmd.add_argument("url")
    pair_cmd.add_argument("token")
    pair_cmd.add_argument("--owner", help="the photographer's folder, if the head node cannot be asked now")
    pair_cmd.add_argument("--no-browser", action="store_true", help="print the status page's address only")
    run_cmd = commands.add_parser("run", help="watch a folder and send its photos")
    run_cmd.add_argument("folder", type=Path)
    run_cmd.add_argument("--max-kbps", type=float, default=None, help="use at most this many kilobits per second")
    run_cmd.add_argument(
        "--free-space", action="store_true", help="delete a local original once the head node has archived it"
    )
    commands.add_parser("status", help="what was sent, what is waiting, and any problem")
    args = parser.parse_args(argv)
    if getattr(args, "max_kbps", None) is not None and args.max_kbps < 0:
        parser.error("--max-kbps must be 0 (no cap) or more")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = _settings()
        if args.command == "pair":
            return pair(settings, args.url, args.token, args.owner, not args.no_browser and sys.stdout.isatty())
        if args.command == "run":
            return run(settings, args.folder, args.max_kbps, args.free_space)
        return show_status(settings)
    except (ConfigError, pairing.PairingError) as exc:
        print(f"dp3-field: {exc}", file=sys.stderr)
        return 2
