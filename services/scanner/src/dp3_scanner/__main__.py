"""Entry point of the scanner service (its logic lands with its own issue)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("dp3-scanner: not implemented yet")


if __name__ == "__main__":
    main()
