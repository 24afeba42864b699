"""The edge: what every request meets before a handler, and the connection rules under it.

Outermost first: a request id (asgi-correlation-id), `StrictFraming` (a request framed two ways
is refused and its connection closed; an absolute-form target is read as RFC 9112 says), the
metrics (prometheus-fastapi-instrumentator, `observability`), the ``Host`` check (Starlette's
``TrustedHostMiddleware``), then `RequestGate`, which refuses cheaply, before a byte of the body
is read: a request head over ``max_header_bytes`` (431), a missing or wrong API key (401), a body
over ``max_bytes`` (413) or slower than ``body_timeout_s`` (408). Under all of it,
`GuardedH11Protocol` (uvicorn's h11 protocol) gives each request head a deadline and caps the
connections one client address may hold waiting for a head (slowloris).

Hand-written only where no library does it, each for one reason:
- `RequestGate`'s key check: FastAPI dependencies run after the body is read and parsed, and a
  client without a key must cost nothing (FastAPI's ``HTTPBearer`` still parses the header);
- the body limits: neither Starlette nor uvicorn caps a streamed body or gives it a deadline;
- the head-size check: uvicorn's ``h11_max_incomplete_event_size`` only bounds a head still
  arriving, so a 98 KB head sent in one write passed it;
- `GuardedH11Protocol`: uvicorn has no deadline for a request's head and no per-client cap;
- `StrictFraming`: h11 lets ``Transfer-Encoding`` win over ``Content-Length`` and keeps the
  connection open, and uvicorn routes an absolute-form target as a path.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import Counter
from collections.abc import Iterable
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import h11
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from .errors import error_response
from .observability import redact
from .settings import ServerSettings

REQUEST_ID_HEADER = "X-Request-ID"
VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json"})
OPEN_PREFIXES = ("/static/", "/docs/")
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = {"0.0.0.0", "::", "[::]", ""}

# Parses ``Authorization: Bearer <key>``; documents the scheme in OpenAPI (and so for /docs).
bearer = HTTPBearer(auto_error=False, description="One of QWEN3_SERVER_API_KEYS, when keys are set.")


def valid_request_id(value: str, secrets: Iterable[str] = ()) -> bool:
    """A client's ``X-Request-ID`` is kept when it is a short token of safe characters (so no
    one forges log lines through it) that redaction leaves as it is (so a client that sends its
    API key as the id does not see it logged or echoed); anything else is replaced by a new id."""
    return VALID_REQUEST_ID.fullmatch(value) is not None and redact(value, secrets) == value


def allowed_hosts(settings: ServerSettings) -> list[str]:
    """``settings.allowed_hosts``, or the loopback names plus the address the server binds."""
    if settings.allowed_hosts:
        return list(settings.allowed_hosts)
    hosts = list(LOCAL_HOSTS)
    if settings.host not in WILDCARD_BINDS:
        hosts.append(f"[{settings.host}]" if ":" in settings.host else settings.host)
    return hosts


def is_open(path: str) -> bool:
    """Paths served without a key: health checks, metrics, docs and the page."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def head_bytes(scope: Scope) -> int:
    """The size of the request head as parsed: request line and headers."""
    line = len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b"")) + 16
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"])


class StrictFraming:
    """ASGI middleware for the request line and framing, before anything reads a header.

    A request with both ``Content-Length`` and ``Transfer-Encoding`` gets 400 and
    ``Connection: close`` (RFC 9112 §6.3: a server may reject it and must then close): servers
    and proxies that each believe another header see different requests in the same bytes, the
    shape of request smuggling. An absolute-form target (``GET http://host/path``, RFC 9112
    §3.2.2, which a server must accept) is served as its path, with its authority as ``Host``
    (§3.3), so the ``Host`` check judges the authority the client named.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            names = {name.lower() for name, _ in scope["headers"]}
            if b"content-length" in names and b"transfer-encoding" in names:
                detail = "A request may not carry both Content-Length and Transfer-Encoding (RFC 9112 §6.3)."
                await error_response(400, detail, {"Connection": "close"})(scope, receive, send)
                return
            target = scope.get("raw_path") or b""
            if target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
                rewritten = origin_form(scope, target)
                if rewritten is None:
                    detail = "The absolute-form target has no host, or carries user information."
                    await error_response(400, detail, {"Connection": "close"})(scope, receive, send)
                    return
                scope = rewritten
        await self.app(scope, receive, send)


def origin_form(scope: Scope, target: bytes) -> Scope | None:
    """``scope`` of an absolute-form request as if sent in origin form: the target's path as the
    path, its authority as the only ``Host``; None when it has no host or has user information."""
    parts = urlsplit(target.decode("latin-1"))
    if not parts.hostname or "@" in parts.netloc:
        return None
    raw_path = (parts.path or "/").encode("latin-1")
    headers = [(name, value) for name, value in scope["headers"] if name.lower() != b"host"]
    return {
        **scope,
        "path": unquote(raw_path.decode("ascii", "replace")),
        "raw_path": raw_path,
        "headers": [(b"host", parts.netloc.encode("latin-1")), *headers],
    }


class RequestGate:
    """ASGI middleware: head size (431), API key (401), body size (413) and deadline (408).

    Example:
        >>> app.add_middleware(RequestGate, settings=ServerSettings())
    """

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.max_header_bytes = settings.max_header_bytes
        self.max_bytes = settings.max_request_bytes
        self.timeout_s = settings.body_timeout_s
        self._keys = [key.get_secret_value().encode() for key in settings.api_keys]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = await self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
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
            await error_response(error.status_code, error.detail)(scope, receive, send)

    async def _refusal(self, scope: Scope) -> Any:
        if head_bytes(scope) > self.max_header_bytes:
            detail = (
                f"The request head exceeds {self.max_header_bytes} bytes (QWEN3_SERVER_MAX_HEADER_BYTES)."
            )
            return error_response(431, detail)
        if self._keys and not is_open(scope["path"]) and not await self._authorized(scope):
            header = dict(scope["headers"]).get(b"authorization")
            error = "invalid_token" if header else "invalid_request"
            return error_response(
                401,
                "A valid API key is required: send `Authorization: Bearer <key>` with one of the keys "
                "in QWEN3_SERVER_API_KEYS.",
                {"WWW-Authenticate": f'Bearer realm="qwen3-rerank", error="{error}"'},
            )
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            error = BodyTooLarge(self.max_bytes)
            return error_response(error.status_code, error.detail)
        return None

    async def _authorized(self, scope: Scope) -> bool:
        credentials = await bearer(Request(scope))
        if credentials is None:
            return False
        token = credentials.credentials.encode("latin-1", "replace")
        # Every key is compared, in constant time, so timing tells nothing about any of them.
        return any([secrets.compare_digest(token, key) for key in self._keys])


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


class _LimitedBody:
    """One request's ``receive``: counts the body's bytes and watches its deadline (from the first
    ``receive``) until the last body message, then passes messages (a disconnect) through."""

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
        loop = asyncio.get_running_loop()
        self._deadline = self._deadline or loop.time() + self._timeout_s
        try:
            message = await asyncio.wait_for(self._receive(), max(self._deadline - loop.time(), 0))
        except asyncio.TimeoutError as error:
            raise BodyTimedOut(self._timeout_s) from error
        if message["type"] != "http.request":
            self._done = True
            return message
        self._received += len(message.get("body", b""))
        if self._received > self._max_bytes:
            raise BodyTooLarge(self._max_bytes)
        self._done = not message.get("more_body", False)
        return message


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request head and a per-client cap on
    connections waiting for a head.

    A connection waits for a head from the moment it opens (or its last response ends) until
    its request line and headers are complete. One address may hold at most
    ``max_waiting_per_client`` such connections; a further one is closed at once, so about 300
    half-sent heads from one address can no longer fill ``limit_concurrency`` for everyone.
    Pass a subclass with the limits set as uvicorn's ``http=`` (see `protocol_with`).
    """

    header_timeout_s: float = 10.0
    max_waiting_per_client: int = 64
    waiting: ClassVar[Counter[str]] = Counter()  # one per class made by `protocol_with`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None
        self._waiting_as: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self._start_waiting():
            transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state != h11.IDLE:  # the head is complete
            self._stop_waiting()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may already have parsed a pipelined next head
        waiting = self.conn.their_state == h11.IDLE
        if waiting and not self.transport.is_closing() and not self._start_waiting():
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _start_waiting(self) -> bool:
        self._stop_waiting()
        client = (self.client or ("unknown",))[0]
        if self.waiting[client] >= self.max_waiting_per_client:
            return False
        self.waiting[client] += 1
        self._waiting_as = client
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_timed_out)
        return True

    def _stop_waiting(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        if self._waiting_as is not None:
            self.waiting[self._waiting_as] -= 1
            if self.waiting[self._waiting_as] <= 0:
                del self.waiting[self._waiting_as]
            self._waiting_as = None

    def _head_timed_out(self) -> None:
        # Still waiting for (the rest of) a request line and headers: drop the connection.
        idle = self.cycle is None or self.cycle.response_complete
        if self.conn.their_state in (h11.IDLE, h11.DONE) and idle and not self.transport.is_closing():
            self.transport.close()


def protocol_with(header_timeout_s: float, max_waiting_per_client: int = 64) -> type[GuardedH11Protocol]:
    """A `GuardedH11Protocol` class with these limits, for ``uvicorn.run(http=...)``."""
    attributes = {
        "header_timeout_s": header_timeout_s,
        "max_waiting_per_client": max_waiting_per_client,
        "waiting": Counter(),
    }
    return type("GuardedH11Protocol", (GuardedH11Protocol,), attributes)
