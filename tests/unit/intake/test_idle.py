"""The body cut-off: a stalled body becomes a disconnect, a flowing one and everything after it pass untouched."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message, Receive, Scope, Send

from dp3_intake.idle import BodyIdleTimeout


def run(scope: Scope, messages: list[Message | None]) -> list[Message]:
    """What the app receives when the client sends ``messages`` (None: a stall longer than the cut-off)."""
    seen: list[Message] = []

    async def client() -> Message:
        message = messages.pop(0)
        if message is None:
            await asyncio.sleep(0.5)
            raise AssertionError("the stall was not cut off")
        return message

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "http.disconnect" or not messages:
                return

    async def send(message: Message) -> None:
        pass

    asyncio.run(BodyIdleTimeout(app, seconds=0.05)(scope, client, send))
    return seen


PATCH: Scope = {"type": "http", "method": "PATCH", "path": "/files/abc"}


def test_a_body_that_stops_arriving_is_a_disconnect() -> None:
    part = {"type": "http.request", "body": b"x" * 10, "more_body": True}
    assert run(PATCH, [part, None]) == [part, {"type": "http.disconnect"}]


def test_a_body_that_keeps_arriving_passes_as_it_is() -> None:
    parts = [{"type": "http.request", "body": b"x", "more_body": True} for _ in range(3)]
    last = {"type": "http.request", "body": b"y", "more_body": False}
    assert run(PATCH, [*parts, last]) == [*parts, last]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_requests_without_a_body_are_never_cut(method: str) -> None:
    with pytest.raises(AssertionError, match="not cut off"):
        run({**PATCH, "method": method}, [None])


def test_after_the_body_the_wait_for_a_disconnect_is_not_cut() -> None:
    last = {"type": "http.request", "body": b"y", "more_body": False}
    with pytest.raises(AssertionError, match="not cut off"):
        run(PATCH, [last, None, None])
