"""A request id for every HTTP request: taken from ``X-Request-ID`` or made up, sent back in the
response header, put in error bodies and in every log line written while the request runs.

An operator who gets a complaint with an id finds the matching log lines; a proxy that already
assigns ids (nginx ``$request_id``, Envoy) keeps its own. An incoming id that is not a short token
of safe characters is replaced, so a client cannot forge log lines through it.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_current: ContextVar[str | None] = ContextVar("qwen3_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served by this task, or ``None`` outside a request."""
    return _current.get()


class RequestIdMiddleware:
    """ASGI middleware: sets the request id for the request's task and echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(HEADER.lower().encode(), b"").decode("latin-1")
        request_id = incoming if _VALID.fullmatch(incoming) else uuid.uuid4().hex
        token = _current.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)
        # Reset only on success: an unhandled error is answered outside this middleware, and
        # that 500 body should still carry the id.
        _current.reset(token)
