"""One writer at a time per embedded store, across processes: an OS file lock in its directory.

Every write of the embedded store (``qwen3-rerank index``, the server's ``/v1/documents``, the
evaluation, the sample corpus) reads the committed generation, builds the next one and points
``CURRENT`` at it. Two writers doing that at once each build on the same base, and the later
commit silently drops what the other wrote; before this lock, a commit also deleted the generation
the other process was still writing. `WriteLock` makes the whole read-build-commit one critical
section: ``filelock`` (``fcntl.flock`` on Unix, ``LockFileEx`` on Windows), which the OS releases
when its holder dies, so a ``kill -9`` never leaves the store locked.

A second writer waits up to ``timeout_s`` (``QWEN3_RAG_WRITE_LOCK_TIMEOUT_S``), saying once whom it
waits for, then gets `StoreBusy` naming the holder: its pid, host and command line, which the
holder records in a side file (``write.lock.json``) next to the lock. Readers never lock.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .base import StoreBusy

logger = logging.getLogger(__name__)

LOCK_FILE = "write.lock"
HOLDER_FILE = "write.lock.json"
TIMEOUT_SETTING = "QWEN3_RAG_WRITE_LOCK_TIMEOUT_S"


class WriteLock:
    """The write lock of the store in ``directory`` (not re-entrant: the store counts its own depth).

    Example:
        >>> lock = WriteLock(Path("~/.cache/qwen3-rag/qwen3-rag").expanduser(), timeout_s=10)
        >>> lock.acquire()
        >>> try:
        ...     ...  # read CURRENT, write the next generation, commit
        ... finally:
        ...     lock.release()
    """

    def __init__(self, directory: Path, *, timeout_s: float) -> None:
        if not timeout_s >= 0:
            raise ValueError(f"the write lock's timeout must be >= 0 seconds, got {timeout_s!r}")
        self.directory = Path(directory)
        self.timeout_s = timeout_s
        self._lock = FileLock(self.directory / LOCK_FILE)

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._lock.is_locked

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout_s`` for another writer to finish.

        Raises:
            StoreBusy: Another writer held it for all of ``timeout_s``; the message names it.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(blocking=False)
        except Timeout:
            self._wait()
        self._record_holder()

    def release(self) -> None:
        """Let the next writer in (the side file goes first, so it never names a finished writer)."""
        try:
            (self.directory / HOLDER_FILE).unlink(missing_ok=True)
        finally:
            self._lock.release()

    def holder(self) -> str:
        """Who holds the lock, as its side file says ("another process" when it says nothing)."""
        try:
            info = json.loads((self.directory / HOLDER_FILE).read_text(encoding="utf-8"))
            since = time.strftime("%H:%M:%S", time.localtime(float(info["since"])))
            return f"pid {info['pid']} on {info['host']} ({info['command']}, writing since {since})"
        except (OSError, ValueError, KeyError, TypeError):
            return "another process"

    def _wait(self) -> None:
        if self.timeout_s > 0:
            logger.warning(
                "%s is being written by %s; waiting up to %g s for it to finish (%s)",
                self.directory,
                self.holder(),
                self.timeout_s,
                TIMEOUT_SETTING,
            )
        try:
            self._lock.acquire(timeout=self.timeout_s, poll_interval=0.05)
        except Timeout as error:
            raise StoreBusy(
                f"the embedded store {self.directory} is being written by {self.holder()}; "
                f"one writer at a time. Gave up after {self.timeout_s:g} s: retry when it has "
                f"finished, or wait longer with {TIMEOUT_SETTING}"
            ) from error

    def _record_holder(self) -> None:
        info: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": _command_line(),
            "since": time.time(),
        }
        partial = self.directory / f"{HOLDER_FILE}.{uuid.uuid4().hex[:8]}.partial"
        try:
            partial.write_text(json.dumps(info), encoding="utf-8")
            os.replace(partial, self.directory / HOLDER_FILE)
        except OSError as error:  # only a nicer message is lost; the lock itself is held
            logger.debug("cannot record the write lock's holder: %s", error)


def _command_line() -> str:
    """This process's command line, short: ``qwen3-rerank index docs``, ``python -m pytest ...``."""
    words = [
        Path(word).name if index < 2 and os.sep in word else word for index, word in enumerate(sys.orig_argv)
    ]
    return " ".join(words)[:300] or "python"
