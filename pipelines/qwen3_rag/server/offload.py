"""Blocking pipeline calls (Elasticsearch, embedding, generation) on bounded pools of their own.

``asyncio.to_thread`` shares one default pool with everything else: with Elasticsearch frozen,
every ``/v1/ask`` held a default-pool thread for 30 s and ``/readyz`` pings queued behind them.
Here ``/v1/ask`` and ``/v1/documents`` each run on a small pool whose size is also their
concurrency limit (one more call gets 429 at once, rather than queueing), each call has a
deadline (504 when it passes), and a slot frees only when its thread returns, so a hung store
cannot pile up threads. Readiness has a one-thread pool of its own and never starts a second
ping while one hangs, so ``/readyz`` answers within its timeout whatever the store does.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import HTTPException

T = TypeVar("T")


class PoolFull(HTTPException):
    """429: every thread of the pool is busy; carries ``Retry-After``."""


class PoolTimeout(HTTPException):
    """504: the call passed its deadline (it keeps running; its slot frees when it returns)."""


class BoundedPool:
    """At most ``workers`` blocking calls at once, each awaited for at most ``timeout_s``.

    Example:
        >>> pool = BoundedPool("ask", workers=4, timeout_s=30, retry_after_s=1)
        >>> answer = await pool.run(rag.ask, "What is BM25?")
    """

    def __init__(self, name: str, *, workers: int, timeout_s: float, retry_after_s: int) -> None:
        self.name = name
        self.workers = workers
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.busy = 0
        self.rejected = 0
        self.timed_out = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"qwen3-{name}")

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` on the pool.

        Raises:
            PoolFull: ``workers`` calls are running already.
            PoolTimeout: The call took longer than ``timeout_s``.
        """
        if self.busy >= self.workers:
            self.rejected += 1
            retry = str(self.retry_after_s)
            raise PoolFull(
                429,
                f"{self.busy} {self.name} calls are running, the most this server allows at once; "
                f"retry in {retry} s.",
                headers={"Retry-After": retry},
            )
        self.busy += 1
        call = functools.partial(function, *args, **kwargs)
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        future.add_done_callback(self._release)
        try:
            # shield: a deadline or a departed client stops the waiting, not the slot accounting.
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except asyncio.TimeoutError as error:
            self.timed_out += 1
            raise PoolTimeout(
                504, f"The {self.name} call did not finish within {self.timeout_s:g} s."
            ) from error

    def _release(self, future: asyncio.Future[Any]) -> None:
        self.busy -= 1
        if not future.cancelled():
            future.exception()  # retrieved, so an abandoned failure is not reported as unhandled

    def close(self) -> None:
        """Stop taking work; threads still blocked in a call end when that call returns."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Probe:
    """Runs a health check on its own thread; while one hangs, later checks wait on that one.

    Example:
        >>> probe = Probe(timeout_s=0.5)
        >>> await probe.check(rag.ping)  # TimeoutError after 0.5 s if the store is frozen
    """

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwen3-readiness")
        self._in_flight: asyncio.Future[Any] | None = None

    async def check(self, function: Callable[[], Any]) -> None:
        """Return when ``function()`` succeeded; raise its error, or `TimeoutError` at the deadline."""
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.get_running_loop().run_in_executor(self._executor, function)
            self._in_flight.add_done_callback(_retrieve)
        try:
            await asyncio.wait_for(asyncio.shield(self._in_flight), self.timeout_s)
        except asyncio.TimeoutError as error:
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from error

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
