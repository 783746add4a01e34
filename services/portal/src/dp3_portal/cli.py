"""``dp3 users add|remove``, ``dp3 journal export``, ``dp3 catalog rebuild --from STORE``.

Registered under the ``dp3.commands`` entry points. Each reaches MongoDB at
``DP3_MONGO_URL``, else the embedded server a running portal started, else
an embedded server of its own on ``$DP3_HOME/mongo`` for the command's length.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, MongoClient

from dp3.settings import load_settings
from dp3_portal.auth import Users
from dp3_portal.embedded import mongo_url_for_command
from dp3_portal.recorder import Recorder
from dp3_portal.settings import PortalSettings
from dp3_portal.sidecars import read_store
from dp3_portal.store_schema import JOURNAL, PHOTOS, THROUGHPUT, ensure_indexes

SEED_FIELDS = ("id", "status", "datetime", "archives", "owner", "path")


def register_users(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="portal users")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user, or set a user's password")
    add.add_argument("name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin (scripts)")
    add.set_defaults(func=users_add)
    remove = actions.add_parser("remove", help="remove a user; its sessions end at once")
    remove.add_argument("name")
    remove.set_defaults(func=users_remove)


def register_journal(subparsers: Any) -> None:
    journal = subparsers.add_parser("journal", help="the recorded journal")
    actions = journal.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write the journal as JSON (the seed's form, plus DP3's fields)")
    export.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")
    export.set_defaults(func=journal_export)


def register_catalog(subparsers: Any) -> None:
    catalog = subparsers.add_parser("catalog", help="the portal's catalog")
    actions = catalog.add_subparsers(dest="action", required=True)
    rebuild = actions.add_parser("rebuild", help="rebuild journal and photos from one store's sidecars")
    rebuild.add_argument("--from", dest="store", type=Path, required=True, metavar="STORE")
    rebuild.add_argument("--keep", action="store_true", help="merge into the catalog instead of replacing it")
    rebuild.set_defaults(func=catalog_rebuild)


def _settings() -> PortalSettings:
    return load_settings(PortalSettings)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass(f"password for {args.name}: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("dp3 users add: the passwords differ")
    return first


def users_add(args: argparse.Namespace) -> int:
    settings = _settings()
    password = _read_password(args)

    async def run(url: str) -> None:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        try:
            await Users(client[settings.mongo_database]).set_password(args.name, password)
        finally:
            await client.close()

    with mongo_url_for_command(settings.mongo_url, settings.home) as url:
        try:
            asyncio.run(run(url))
        except ValueError as exc:
            print(f"dp3 users add: {exc}", file=sys.stderr)
            return 1
    print(f"user {args.name} saved")
    return 0


def users_remove(args: argparse.Namespace) -> int:
    settings = _settings()

    async def run(url: str) -> bool:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
        try:
            return await Users(client[settings.mongo_database]).remove(args.name)
        finally:
            await client.close()

    with mongo_url_for_command(settings.mongo_url, settings.home) as url:
        removed = asyncio.run(run(url))
    if not removed:
        print(f"dp3 users remove: no user {args.name}", file=sys.stderr)
        return 1
    print(f"user {args.name} removed; its sessions are ended")
    return 0


def seed_form(document: dict[str, Any]) -> dict[str, Any]:
    """A journal document as an entry: the seed's six fields first, then DP3's, no storage fields."""
    entry = {name: document.get(name) for name in SEED_FIELDS}
    entry.update({k: v for k, v in document.items() if k not in entry and k not in ("_id", "at_ts")})
    return entry


def journal_export(args: argparse.Namespace) -> int:
    settings = _settings()
    with mongo_url_for_command(settings.mongo_url, settings.home) as url:
        client: MongoClient[dict[str, Any]] = MongoClient(url)
        try:
            documents = client[settings.mongo_database][JOURNAL].find({}).sort("at_ts", 1)
            out = args.output.open("w", encoding="utf-8") if args.output else sys.stdout
            try:
                out.write("[\n")
                for n, document in enumerate(documents):
                    out.write((",\n" if n else "") + json.dumps(seed_form(document), ensure_ascii=False))
                out.write("\n]\n")
            finally:
                if args.output:
                    out.close()
        finally:
            client.close()
    return 0


def catalog_rebuild(args: argparse.Namespace) -> int:
    settings = _settings()
    if not args.store.is_dir():
        print(f"dp3 catalog rebuild: {args.store} is not a directory", file=sys.stderr)
        return 1
    with mongo_url_for_command(settings.mongo_url, settings.home) as url:
        client: MongoClient[dict[str, Any]] = MongoClient(url)
        try:
            db = client[settings.mongo_database]
            if not args.keep:
                db[JOURNAL].drop()
                db[PHOTOS].drop()
                db[THROUGHPUT].drop()
            ensure_indexes(db)
            recorder = Recorder(db)
            photos = events = 0
            for _path, entries in read_store(args.store):
                events += recorder.record(entries)
                photos += 1
        finally:
            client.close()
    print(f"rebuilt from {args.store}: {photos} sidecars, {events} journal entries")
    return 0
