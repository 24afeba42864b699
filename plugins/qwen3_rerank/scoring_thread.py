"""One thread runs every model call of a loaded model, so scores never depend on the caller's thread.

A CPU matrix multiply splits its work over the calling thread's OpenMP team, and each OS thread
gets a team of its own: the same batch scored from the event loop's worker thread and from the main
thread can accumulate in another order and differ in the last bits (about 1e-8 was measured on a
busy machine). Running every forward pass of one loaded model on one long-lived thread, with the
intra-op thread count fixed when the model is loaded, makes the same input give bit-identical
scores whoever calls: a sync and an async adapter, a server's batcher, a test.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import torch

T = TypeVar("T")


class ScoringThread:
    """A single worker thread that runs model calls one at a time, in submission order.

    The thread starts on first use and exits once this object is garbage-collected (with the
    loaded model that owns it). A call made from the scoring thread itself runs in place, so
    code that is already on it cannot deadlock waiting for itself.
    """

    def __init__(self, name: str = "qwen3-rerank-scoring", threads: int | None = None) -> None:
        # Fixed now, on the loading thread: every call then uses this many intra-op threads even
        # if someone changes torch's setting later.
        self.threads = torch.get_num_threads() if threads is None else threads
        self._name = name
        self._thread = _ThreadState(self.threads)
        self._lock = threading.Lock()
        self._executor, self._pid = self._new_executor(), os.getpid()

    def _new_executor(self) -> ThreadPoolExecutor:
        # The worker thread holds its initializer: a bound method of this object would keep it, and
        # so the executor, alive for ever, and the idle thread with them. `_ThreadState` holds
        # neither, so the thread ends once this object is collected.
        return ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=self._name, initializer=self._thread.start
        )

    def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` on the scoring thread; its result or its exception, here."""
        if threading.get_ident() == self._thread.ident:
            return function(*args)
        return self._executor_here().submit(function, *args).result()

    def _executor_here(self) -> ThreadPoolExecutor:
        """The executor, made anew in a forked child (which inherits the executor but not its thread,
        so work submitted there would wait forever)."""
        with self._lock:
            if self._pid != os.getpid():
                self._thread = _ThreadState(self.threads)
                self._executor, self._pid = self._new_executor(), os.getpid()
            return self._executor


class _ThreadState:
    """What the scoring thread sets up and records about itself, apart from `ScoringThread`."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.ident: int | None = None

    def start(self) -> None:
        self.ident = threading.get_ident()
        torch.set_num_threads(self.threads)
