"""``dp3 stores init|status`` and ``dp3 fsck``: the archiver's operator commands (entry points ``dp3.commands``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dp3 import store_places
from dp3.settings import load_settings
from dp3_archiver.fixity import audit
from dp3_archiver.settings import ArchiverSettings
from dp3_archiver.stores import Store


def _stores(paths: list[Path] | None) -> list[Store]:
    settings = load_settings(ArchiverSettings)
    roots = paths or list(settings.stores)
    return [Store(root, reserve_bytes=settings.store_reserve_bytes) for root in roots]


def _aliases(paths: list[Path] | None) -> list[store_places.Alias]:
    """Pairs that are one place among the stores named (and the configured ones beside them)."""
    roots = list(paths) if paths else []
    given = {os.path.abspath(root) for root in roots}
    # A store named on the command line must not be another name of a configured one either.
    roots += [root for root in load_settings(ArchiverSettings).stores if os.path.abspath(root) not in given]
    return store_places.check_distinct(roots)


def register_stores(subparsers: Any) -> None:
    parser = subparsers.add_parser("stores", help="archive stores: mark them usable, show their state")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="write the store marker into each store root (the root must exist)")
    init.add_argument("paths", nargs="*", type=Path, help="store roots (default: DP3_STORES)")
    init.set_defaults(func=run_stores_init)
    status = actions.add_parser("status", help="marker and free space of each store")
    status.add_argument("paths", nargs="*", type=Path, help="store roots (default: DP3_STORES)")
    status.set_defaults(func=run_stores_status)


def run_stores_init(args: argparse.Namespace) -> int:
    aliases = _aliases(args.paths)
    for alias in aliases:
        print(f"NOT initialised: {alias.line()}")
    if aliases:
        return 1
    failed = 0
    for store in _stores(args.paths):
        try:
            written = store.init()
        except OSError as exc:
            print(f"{store.label}: NOT initialised: {exc}")
            failed += 1
            continue
        print(f"{store.label}: {'initialised' if written else 'already initialised'}")
    return 1 if failed else 0


def run_stores_status(args: argparse.Namespace) -> int:
    aliases = _aliases(args.paths)
    for alias in aliases:
        print(f"REFUSED: {alias.line()}")
    down = len(aliases)
    for store in _stores(args.paths):
        if not store.is_marked():
            print(f"{store.label}: DOWN (no marker; not mounted or not initialised)")
            down += 1
            continue
        try:
            free = store.free_bytes()
        except OSError as exc:
            print(f"{store.label}: DOWN ({exc})")
            down += 1
            continue
        print(f"{store.label}: up, {free / 1e9:.2f} GB free")
    return 1 if down else 0


def register_fsck(subparsers: Any) -> None:
    parser = subparsers.add_parser("fsck", help="fixity audit: re-hash every copy in every store and repair")
    parser.add_argument("--no-repair", action="store_true", help="report only")
    parser.add_argument("--quiet", action="store_true", help="print the summary only")
    parser.set_defaults(func=run_fsck)


def run_fsck(args: argparse.Namespace) -> int:
    report = audit(_stores(None), repair=not args.no_repair)
    if not args.quiet:
        for finding in report.findings:
            print(finding.line())
    print(report.summary())
    return 1 if report.unrepaired else 0
