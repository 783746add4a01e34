"""Whether a MongoDB-wire server answers: the portal waits for its embedded one, the intake for the portal's."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.errors import PyMongoError


def ping(url: str, timeout: float = 1.0) -> bool:
    """True when the server at ``url`` answers ``ping`` within ``timeout`` seconds."""
    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=int(timeout * 1000))
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()
