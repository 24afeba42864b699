"""Refusing oversized request bodies before they are read into memory.

A JSON body is parsed whole, so the size limit must act on the raw byte stream: this ASGI
middleware answers 413 when ``Content-Length`` announces too much, or as soon as a chunked body
grows past the limit, before FastAPI ever builds the request model.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(HTTPException):
    """Raised inside ``receive`` when a streamed body passes the limit; an HTTPException, so the
    framework answers 413 rather than wrapping it in a generic 400 body-parsing error."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, _too_large(max_bytes))


class RequestSizeLimit:
    """ASGI middleware: bodies over ``max_bytes`` get ``413 Payload Too Large``.

    Example:
        >>> app.add_middleware(RequestSizeLimit, max_bytes=2_000_000)
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive int; got {max_bytes!r}.")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await JSONResponse({"detail": _too_large(self.max_bytes)}, status_code=413)(scope, receive, send)


def _too_large(max_bytes: int) -> str:
    return f"The request body exceeds {max_bytes} bytes; send less or raise QWEN3_SERVER_MAX_REQUEST_BYTES."
