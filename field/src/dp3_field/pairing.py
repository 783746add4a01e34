"""The pairing: which head node this laptop sends to, with which token, for which photographer.

``dp3-field pair <url> <token>`` writes it once; ``run`` reads it. The file
holds a secret, so it is written owner-only (0600) and atomically (a cut-off
write must not leave half a token). The owner (the photographer's folder)
is asked of the head node (``GET /api/device``) and kept here, because every
upload must name it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dp3.files import write_secret

TOKEN_PATTERN = re.compile(r"dp3d_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
"""The device token's shape (docs/field-uploads.md; the head node's ``dp3.devices`` is its one definition)."""


class PairingError(ValueError):
    """A pairing that cannot be used; the message says what to do.

    A ``ValueError``, not a :class:`dp3.errors.DP3Error`: callers catch it as a bad value.
    """


@dataclass(frozen=True)
class Pairing:
    url: str
    """The head node's base URL, ending in ``/``."""
    token: str
    owner: str | None = None
    """The photographer's folder the token writes to; learnt from the head node."""


def check(url: str, token: str) -> Pairing:
    """A pairing from what the portal showed, or :class:`PairingError` naming what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PairingError(f"the head node's address must start with https:// (got {url!r})")
    if not TOKEN_PATTERN.fullmatch(token):
        # Never echo the token: it may be a real secret with a typo.
        raise PairingError("that is not a device key: copy the whole line the portal shows, starting with dp3d_")
    return Pairing(url=url if url.endswith("/") else url + "/", token=token)


def save(pairing: Pairing, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_secret(path, json.dumps(asdict(pairing)).encode())


def load(path: Path) -> Pairing:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PairingError(
            "this laptop is not paired yet: run the 'dp3-field pair ...' line the portal shows"
        ) from None
    except (OSError, ValueError) as exc:
        raise PairingError(f"the pairing file {path} cannot be read ({exc}): run 'dp3-field pair ...' again") from None
    return Pairing(url=str(data["url"]), token=str(data["token"]), owner=data.get("owner"))
