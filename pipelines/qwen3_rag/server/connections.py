"""A connection-level limit uvicorn lacks: a deadline for the request head.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) and caps connections
(``limit_concurrency``), but a client that sends its headers or its body one byte at a time
("slowloris") holds a connection for as long as it likes: 15 such sockets stayed open 40 s.
`HeaderTimeoutH11Protocol` closes a connection whose request head is not complete within
``header_timeout_s``. (The body's deadline is ASGI middleware: `request_body.RequestBodyLimits`.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's head.

    Pass a subclass with ``header_timeout_s`` set as uvicorn's ``http=`` (see `protocol_with`).
    """

    header_timeout_s: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._head_deadline = self.loop.call_later(self.header_timeout_s, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        # Still waiting for (the rest of) a request line and headers: drop the connection.
        waiting = self.conn.their_state in (h11.IDLE, h11.DONE)
        idle = self.cycle is None or self.cycle.response_complete
        if waiting and idle and not self.transport.is_closing():
            self.transport.close()


def protocol_with(header_timeout_s: float) -> type[HeaderTimeoutH11Protocol]:
    """A `HeaderTimeoutH11Protocol` class with the given deadline, for ``uvicorn.run(http=...)``."""
    attributes = {"header_timeout_s": header_timeout_s}
    return type("HeaderTimeoutH11Protocol", (HeaderTimeoutH11Protocol,), attributes)
