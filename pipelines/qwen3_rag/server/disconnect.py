"""Cancelling a request's pending work when its client goes away.

Starlette does not cancel a handler when the client disconnects, so a client that times out
would still cost a model call. `cancel_on_disconnect` races the work against the ASGI
``http.disconnect`` message and cancels the work if the client leaves first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.types import Receive

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before its response was ready."""


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """``await work``, unless the client disconnects first: then cancel it and raise.

    Call it after the body has been read (FastAPI has done so once the handler runs), so the
    only message left to receive is the disconnect.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (watcher, task):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending  # let the work clean up (the batcher drops its job) before returning
    if not task.cancelled():
        return task.result()
    raise ClientDisconnected()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
