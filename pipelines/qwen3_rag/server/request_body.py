"""Limits on a request's body, enforced on the raw byte stream: its size and its deadline.

A JSON body is parsed whole, so both limits act on ASGI ``receive`` before FastAPI builds the
request model. A body over ``max_bytes`` gets 413, at once when ``Content-Length`` announces it, or
as soon as a chunked body grows past it. A body still arriving ``timeout_s`` after the handler
began to read it gets 408: uvicorn has no such deadline, and a client sending its body one byte at
a time ("slowloris") would otherwise hold a connection as long as it likes. (The request head's
deadline belongs to the protocol: `connections.HeaderTimeoutH11Protocol`.)
"""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimitExceeded(HTTPException):
    """Raised inside ``receive`` when the body passes a limit; an HTTPException, so FastAPI's body
    reader passes it on with its status instead of turning it into a 400 parsing error."""


class BodyTooLarge(BodyLimitExceeded):
    def __init__(self, max_bytes: int) -> None:
        hint = "send less or raise QWEN3_SERVER_MAX_REQUEST_BYTES"
        super().__init__(413, f"The request body exceeds {max_bytes} bytes; {hint}.")


class BodyTimedOut(BodyLimitExceeded):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(408, f"The request body did not arrive within {timeout_s:g} s.")


class RequestBodyLimits:
    """ASGI middleware: a body over ``max_bytes`` gets 413, one slower than ``timeout_s`` gets 408.

    The clock starts at the first ``receive``; a handler that never reads the body is not timed.

    Example:
        >>> app.add_middleware(RequestBodyLimits, max_bytes=2_000_000, timeout_s=30)
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive int; got {max_bytes!r}.")
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _refuse(BodyTooLarge(self.max_bytes), scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, _LimitedBody(receive, self.max_bytes, self.timeout_s), tracking_send)
        except BodyLimitExceeded as error:
            if started:  # too late for a status of our own
                raise
            await _refuse(error, scope, receive, send)


class _LimitedBody:
    """One request's ``receive``: counts the body's bytes and watches its deadline until the last
    body message, then passes messages (a disconnect) through untouched."""

    def __init__(self, receive: Receive, max_bytes: int, timeout_s: float) -> None:
        self._receive = receive
        self._max_bytes = max_bytes
        self._timeout_s = timeout_s
        self._deadline: float | None = None
        self._received = 0
        self._done = False

    async def __call__(self) -> Message:
        if self._done:
            return await self._receive()
        message = await self._before_deadline()
        if message["type"] != "http.request":
            self._done = True
            return message
        self._received += len(message.get("body", b""))
        if self._received > self._max_bytes:
            raise BodyTooLarge(self._max_bytes)
        self._done = not message.get("more_body", False)
        return message

    async def _before_deadline(self) -> Message:
        loop = asyncio.get_running_loop()
        self._deadline = self._deadline or loop.time() + self._timeout_s
        try:
            return await asyncio.wait_for(self._receive(), max(self._deadline - loop.time(), 0))
        except asyncio.TimeoutError as error:
            raise BodyTimedOut(self._timeout_s) from error


async def _refuse(error: BodyLimitExceeded, scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"detail": error.detail}, status_code=error.status_code)(scope, receive, send)
