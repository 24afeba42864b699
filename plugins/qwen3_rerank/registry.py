"""One loaded model per process, however many components ask for it.

A LlamaIndex postprocessor, a Haystack ranker and an HTTP server in the same process all want
the same weights; loading them three times would triple memory and start-up time. Components
acquire a model by key and release it when done; the last release frees it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .config import ModelKey
from .loading import LoadedModel


@dataclass
class _Entry:
    model: LoadedModel
    users: int


class ModelRegistry:
    """Thread-safe, reference-counted cache of loaded models.

    Example:
        >>> model = shared_models.acquire(config.key, lambda: load_model(config))
        >>> ...
        >>> shared_models.release(config.key)
    """

    def __init__(self) -> None:
        # Re-entrant: a handle collected by the garbage collector gives its use back from a
        # finalizer, which may run on this very thread in the middle of `acquire` (while a model
        # loads under the lock); a plain lock would deadlock there.
        self._lock = threading.RLock()
        self._entries: dict[ModelKey, _Entry] = {}

    def acquire(self, key: ModelKey, load: Callable[[], LoadedModel]) -> LoadedModel:
        """The model for ``key``, loading it with ``load`` only if no one holds it yet."""
        # Loading under the lock means two threads asking at once still load once.
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(load(), users=0)
            entry.users += 1
            return entry.model

    def release(self, key: ModelKey) -> None:
        """Give back one use of ``key``; the model is freed when no one uses it any more."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return
            entry.users -= 1
            if entry.users > 0:
                return
            del self._entries[key]
        _free_memory()

    def keys(self) -> list[ModelKey]:
        """Keys of the models currently loaded."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Drop every model, whoever still holds it (for tests and shutdown)."""
        with self._lock:
            dropped = bool(self._entries)
            self._entries.clear()
        # A full collection costs about half a second in a process that has imported the
        # frameworks; pay it only when there is memory to give back.
        if dropped:
            _free_memory()


def _free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


shared_models = ModelRegistry()
"""The process-wide registry every `Qwen3Reranker` uses by default."""
