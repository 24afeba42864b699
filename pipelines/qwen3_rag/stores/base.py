"""What every store offers the retrieval layer: write chunks, BM25 search, vector search."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

from ..records import Chunk, Passage


class StoreError(RuntimeError):
    """The store cannot serve: unreachable, credentials rejected, no index yet, wrong dimension.

    The message says what failed, where (URL or path), and what to do about it.
    """


class IndexUnavailable(StoreError):
    """The store is there but its index cannot be searched: the embedded store's current
    generation lacks files it needs (deleted, or copied in part). Readiness and ``/v1/ask``
    report it (503) instead of failing each search; the message names the missing files.

    ``reason`` is the message without the store's location, for answers open without a key.
    """

    def __init__(self, reason: str, *, location: str, remedy: str) -> None:
        super().__init__(f"{location}: {reason}; {remedy}")
        self.reason = reason


class StoreBusy(StoreError):
    """Another process is writing the embedded store (one writer at a time, across processes),
    and it did not finish within ``QWEN3_RAG_WRITE_LOCK_TIMEOUT_S``; the message names it. The
    server answers 503 with ``Retry-After``: the write can simply be sent again."""


class ChunkStore(Protocol):
    """A searchable collection of chunks with their embeddings.

    ``sources`` restricts a search to chunks from those sources (file paths or URLs).
    Searches return passages ranked best first, with the store's own scores.
    """

    location: str

    def write(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        """Insert or replace chunks; chunks of a written source that are not in ``chunks`` are
        deleted, so re-indexing an edited file leaves no stale passages."""
        ...

    def bm25(self, query: str, top_k: int, sources: Sequence[str] | None = None) -> list[Passage]: ...

    def knn(
        self, vector: Sequence[float], top_k: int, sources: Sequence[str] | None = None
    ) -> list[Passage]: ...

    def count(self) -> int: ...

    def prune(self, prefix: str, keep: Collection[str]) -> int:
        """Delete the chunks whose source starts with ``prefix`` but is not in ``keep`` (files
        gone from a re-indexed folder); returns how many chunks were deleted."""
        ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class FusingStore(Protocol):
    """A store that can fuse BM25 and kNN itself (Elasticsearch's ``retriever.rrf``)."""

    def rrf(
        self,
        query: str,
        vector: Sequence[float],
        top_k: int,
        *,
        rank_constant: int = 60,
        sources: Sequence[str] | None = None,
    ) -> list[Passage]: ...

    def supports_rrf(self) -> bool:
        """Whether the server may fuse (its licence allows it)."""
        ...


@runtime_checkable
class BulkStore(Protocol):
    """A store whose writes are cheaper grouped: ``with store.bulk(): store.write(...)`` builds
    its indices once at the end of the block (the embedded store's BM25 statistics are corpus-wide)."""

    def bulk(self) -> AbstractContextManager[None]: ...


def check_embeddings(chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> int:
    """The embedding dimension, after checking there is one embedding of one size per chunk."""
    if len(chunks) != len(embeddings):
        raise ValueError(f"got {len(embeddings)} embeddings for {len(chunks)} chunks; expected one per chunk")
    sizes = {len(vector) for vector in embeddings}
    if len(sizes) > 1:
        raise ValueError(f"embeddings must all have one dimension, got {sorted(sizes)}")
    return sizes.pop() if sizes else 0
