"""The ``dp3`` command: operator sub-commands contributed by the installed services.

Each service registers its own sub-commands (``dp3 stores``, ``dp3 fsck``,
``dp3 users`` ...) under the ``dp3.commands`` entry-point group, as a function
``register(subparsers)`` that adds a parser whose ``func`` default runs it.
The library stays ignorant of what the services offer.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from dp3.errors import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dp3", description="DP3 operator commands")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in sorted(entry_points(group="dp3.commands"), key=lambda e: e.name):
        entry.load()(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"dp3 {args.command}: bad configuration: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
