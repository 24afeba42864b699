"""Retrieval-augmented QA with Qwen3 reranking: ingest, hybrid retrieval (BM25 + dense, RRF),
rerank, answer with citations; embedded or on Elasticsearch, composed with Haystack or LlamaIndex.

Example:
    >>> from qwen3_rag import RagService, Settings
    >>> with RagService(Settings.from_env()) as service:
    ...     service.index_paths([Path("docs/")])
    ...     print(service.ask("How do I configure TLS?").answer)

The names below load on first use: the ``qwen3-rerank`` CLI imports ``qwen3_rag.cli`` on every
start, and must list its commands without importing the service and, through it, torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwen3_rerank.lazy import lazy_exports

if TYPE_CHECKING:
    from .records import Answer, Chunk, IndexReport, Passage, Skipped, SourceText
    from .service import RagService
    from .settings import Settings
    from .stores import StoreError

_EXPORTS = {
    "Answer": ".records",
    "Chunk": ".records",
    "IndexReport": ".records",
    "Passage": ".records",
    "RagService": ".service",
    "Settings": ".settings",
    "Skipped": ".records",
    "SourceText": ".records",
    "StoreError": ".stores",
}

__all__ = [
    "Answer",
    "Chunk",
    "IndexReport",
    "Passage",
    "RagService",
    "Settings",
    "Skipped",
    "SourceText",
    "StoreError",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, [*__all__, *globals()])
