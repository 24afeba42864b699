"""Retrieval-augmented QA with Qwen3 reranking: ingest, hybrid retrieval (BM25 + dense, RRF),
rerank, answer with citations; embedded or on Elasticsearch, composed with Haystack or LlamaIndex.

Example:
    >>> from qwen3_rag import RagService, Settings
    >>> with RagService(Settings.from_env()) as service:
    ...     service.index_paths([Path("docs/")])
    ...     print(service.ask("How do I configure TLS?").answer)
"""

from .records import Answer, Chunk, IndexReport, Passage, Skipped, SourceText
from .service import RagService
from .settings import Settings
from .stores import StoreError

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
