"""Stores of chunks and embeddings: the embedded default, and Elasticsearch."""

from __future__ import annotations

from qwen3_rerank.extras import missing

from ..settings import Settings
from .base import BulkStore, ChunkStore, FusingStore, IndexUnavailable, StoreBusy, StoreError


def open_store(settings: Settings) -> ChunkStore:
    """The store ``settings.backend`` names; Elasticsearch is imported only when chosen."""
    if settings.backend == "elasticsearch":
        try:
            from .elasticsearch import ElasticsearchStore
        except ModuleNotFoundError as error:
            if error.name != "elasticsearch":
                raise
            raise missing(error, "backend='elasticsearch'") from error

        return ElasticsearchStore.from_settings(settings)
    from .memory import MemoryStore

    return MemoryStore(
        settings.data_dir,
        settings.index_name,
        language=settings.language,
        bm25_k1=settings.bm25_k1,
        bm25_b=settings.bm25_b,
        ann_threshold=settings.ann_threshold,
        write_lock_timeout_s=settings.write_lock_timeout_s,
        embedding_model=settings.embedding_model,
    )


__all__ = [
    "BulkStore",
    "ChunkStore",
    "FusingStore",
    "IndexUnavailable",
    "StoreBusy",
    "StoreError",
    "open_store",
]
