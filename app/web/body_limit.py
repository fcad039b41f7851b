"""A request body is at most MAX_BODY_BYTES (the studio takes no uploads: imports read files on the server), so
that nobody can make a web process hold a huge body in memory. Refused as a 413 that says so, whether the body
announces its length or not."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 10 * 1024 * 1024


def _too_large() -> HTTPException:
    # An HTTPException: FastAPI passes those through its body parsing (anything else there becomes a 400).
    return HTTPException(413, f"The request is larger than {MAX_BODY_BYTES // (1024 * 1024)} MB: send less at once.")


class BodyLimit:
    """Pure ASGI: counts the body as the app reads it, and refuses it at the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length", b"")
        announced = int(declared) if declared.isdigit() else 0
        received = 0

        async def counted() -> Message:
            nonlocal received
            if announced > self.max_bytes:
                raise _too_large()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _too_large()
            return message

        await self.app(scope, counted, send)
