"""Entry point of the archiver service (its logic lands with its own issue)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("dp3-archiver: not implemented yet")


if __name__ == "__main__":
    main()
