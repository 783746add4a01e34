"""Entry point of the portal service (its logic lands with its own issue)."""

from __future__ import annotations


def main() -> None:
    raise SystemExit("dp3-portal: not implemented yet")


if __name__ == "__main__":
    main()
