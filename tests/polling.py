"""Waiting on a condition in a test: poll it at a short interval, up to a generous deadline.

A fixed ``sleep`` is either too short on a busy machine (the test fails) or too long on an idle one
(the suite crawls); polling returns as soon as the condition holds, and the deadline only decides
when a test that would otherwise hang fails, saying what it waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE_S = 60.0
INTERVAL_S = 0.01


def wait_until(
    condition: Callable[[], T],
    what: str = "the condition",
    *,
    timeout: float = DEADLINE_S,
    interval: float = INTERVAL_S,
) -> T:
    """The first truthy value of ``condition()``; `AssertionError` naming ``what`` past ``timeout``.

    ``condition`` may raise `OSError` (a server not listening yet): that counts as not yet.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except OSError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        time.sleep(interval)


async def eventually(
    condition: Callable[[], T],
    what: str = "the condition",
    *,
    timeout: float = DEADLINE_S,
    interval: float = INTERVAL_S,
) -> T:
    """`wait_until` for a coroutine: the event loop keeps running while it waits."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:g} s for {what}")
        await asyncio.sleep(interval)
    return value
