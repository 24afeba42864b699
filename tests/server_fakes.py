"""Stand-ins for the RAG pipeline behind ``/v1/ask`` and ``/v1/documents``, for server tests that
are about the HTTP edge (limits, errors, access) rather than retrieval."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen3_rag.stores.base import StoreError


@dataclass
class FakePassage:
    rank: int
    id: str
    text: str
    source: str
    score: float


@dataclass
class FakeAnswer:
    answer: str
    passages: list[FakePassage]
    timings: dict[str, float] = field(default_factory=lambda: {"retrieve": 0.0})


class FakePipeline:
    """Answers at once; ``gate`` (if given) makes every call block until it is set, as a frozen
    Elasticsearch does; ``error`` makes every call raise it."""

    def __init__(self, *, gate: threading.Event | None = None, error: Exception | None = None) -> None:
        self.gate = gate
        self.error = error
        self.count = 0
        self.calls = 0

    def _enter(self) -> None:
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(timeout=30)
        if self.error is not None:
            raise self.error

    def ask(self, question: str, *, candidates: int | None = None, top_n: int | None = None) -> FakeAnswer:
        self._enter()
        return FakeAnswer("See [1].", [FakePassage(1, "p1", "A passage.", "notes.txt", 0.5)])

    def index_documents(self, documents: Iterable[Any]) -> dict[str, int]:
        self._enter()
        added = len(list(documents))
        self.count += added
        return {"files": added, "chunks": added}

    def index_paths(self, paths: Sequence[Path]) -> dict[str, int]:
        self._enter()
        return {"files": 0, "chunks": 0}

    def document_count(self) -> int:
        self._enter()
        return self.count

    def ping(self) -> None:
        self._enter()

    def close(self) -> None:
        pass


def unreachable(url: str) -> FakePipeline:
    """A pipeline whose store is down and whose errors quote ``url`` (as the client's do)."""
    return FakePipeline(error=StoreError(f"cannot reach Elasticsearch at {url}"))
