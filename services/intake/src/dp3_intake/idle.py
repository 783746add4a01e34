"""A request body that stops arriving is cut off: a dead uplink must not hold an upload.

When a dig site's link drops in the middle of a PATCH, the laptop gives up
and closes its socket, but its FIN or RST is lost with the link: the head
node's side of the connection stays open and uvicorn waits for the rest of
the body forever (it has no timeout between two reads of a body). That
request holds the upload's lock (:meth:`dp3_intake.storage.DurableStorage.lock`),
so every later PATCH of the same photo waits, and the upload is stuck until
the intake restarts.

This ASGI wrapper gives every ``receive`` of a request body
``seconds`` to answer; past that it hands the app ``http.disconnect``, which
Starlette raises as ``ClientDisconnect``. tuspyserver then does what it does
for any cut PATCH: it keeps and fsyncs the bytes that arrived, records that
offset, and lets the lock go; the laptop's next try asks the offset (HEAD)
and goes on from there. A link that is merely slow keeps sending: at 0.5 Mbps
a 64 KiB TCP window drains in about a second, far inside the default 20 s.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

BODY_METHODS = frozenset({"PATCH", "POST", "PUT"})


class BodyIdleTimeout:
    """Cut off a request whose body goes ``seconds`` without a byte (as if the client disconnected)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        body_done = False

        async def receive_or_cut() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()  # after the body: the app waits for a disconnect, which may take long
            try:
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                log.warning(
                    "%s %s: no byte of the body for %.0f s; cut off (the bytes that came are kept)",
                    scope["method"],
                    scope["path"],
                    self.seconds,
                )
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, receive_or_cut, send)
