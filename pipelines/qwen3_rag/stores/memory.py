"""The embedded store: Haystack's ``InMemoryDocumentStore`` (BM25 and vector search, filters),
saved as one JSON file under the data directory so that ``index`` and ``ask`` work across runs.

It needs no server and suits corpora up to tens of thousands of chunks; beyond that, or to share
an index between machines, use Elasticsearch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from haystack import Document
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy

from ..records import Chunk, Passage
from .base import StoreError, check_embeddings


class MemoryStore:
    """Chunks in process, persisted to ``data_dir/<index_name>.json`` after every write.

    The file is read again whenever another process has replaced it, so a server started before
    ``qwen3-rerank index`` ran sees the new passages without a restart. Two processes writing at
    the same moment are not coordinated: the later file wins (use Elasticsearch for that).

    Example:
        >>> store = MemoryStore(Path("~/.cache/qwen3-rag").expanduser(), "qwen3-rag")
        >>> store.count()
        0
    """

    def __init__(self, data_dir: Path, index_name: str) -> None:
        self.path = Path(data_dir) / f"{index_name}.json"
        self.location = str(self.path)
        self._lock = threading.Lock()
        self._loaded_version: tuple[int, int, int] | None = None
        self._store = self._load()

    def write(self, chunks: Sequence[Chunk], embeddings: Sequence[Sequence[float]]) -> None:
        dimension = check_embeddings(chunks, embeddings)
        if not chunks:
            return
        with self._lock:
            self._refresh()
            self._check_dimension(dimension)
            sources = sorted({chunk.source for chunk in chunks})
            keep = {chunk.id for chunk in chunks}
            stale = [
                doc.id for doc in self._store.filter_documents(_sources_filter(sources)) if doc.id not in keep
            ]
            self._store.delete_documents(stale)
            documents = [
                _to_document(chunk, vector) for chunk, vector in zip(chunks, embeddings, strict=True)
            ]
            self._store.write_documents(documents, policy=DuplicatePolicy.OVERWRITE)
            self._save()

    def bm25(self, query: str, top_k: int, sources: Sequence[str] | None = None) -> list[Passage]:
        if not query.strip():
            return []
        with self._lock:
            self._refresh()
            documents = self._store.bm25_retrieval(query, filters=_sources_filter(sources), top_k=top_k)
        return _passages(documents)

    def knn(self, vector: Sequence[float], top_k: int, sources: Sequence[str] | None = None) -> list[Passage]:
        with self._lock:
            self._refresh()
            if self._store.count_documents() == 0:
                return []
            self._check_dimension(len(vector))
            documents = self._store.embedding_retrieval(
                list(vector), filters=_sources_filter(sources), top_k=top_k
            )
        return _passages(documents)

    def prune(self, prefix: str, keep: Collection[str]) -> int:
        with self._lock:
            self._refresh()
            gone = [
                document.id
                for document in self._store.storage.values()
                if str(document.meta.get("source", "")).startswith(prefix)
                and document.meta.get("source") not in keep
            ]
            if gone:
                self._store.delete_documents(gone)
                self._save()
            return len(gone)

    def count(self) -> int:
        with self._lock:
            self._refresh()
            return self._store.count_documents()

    def ping(self) -> None:
        """The embedded store is always reachable once its file has loaded."""

    def close(self) -> None:
        """Nothing to release: every write is already on disk."""

    def _refresh(self) -> None:
        """Reload if another process replaced the file since this one read or wrote it."""
        if self._file_version() != self._loaded_version:
            self._store = self._load()

    def _file_version(self) -> tuple[int, int, int] | None:
        """Identifies one version of the file: every save replaces it with a new inode."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def _load(self) -> InMemoryDocumentStore:
        self._loaded_version = self._file_version()
        if self._loaded_version is None:
            return _new_store()
        try:
            return InMemoryDocumentStore.load_from_disk(str(self.path))
        except Exception as error:
            raise StoreError(
                f"cannot load the embedded store {self.path}: {error}. "
                "Delete the file and run `qwen3-rerank index` again."
            ) from error

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".json.partial")
        self._store.save_to_disk(str(partial))
        os.replace(partial, self.path)
        self._loaded_version = self._file_version()

    def _check_dimension(self, dimension: int) -> None:
        existing = next(iter(self._store.storage.values()), None)
        if existing is not None and existing.embedding is not None and len(existing.embedding) != dimension:
            raise StoreError(
                f"{self.path} holds {len(existing.embedding)}-dimensional embeddings but the embedding "
                f"model gives {dimension}; use the model it was indexed with, or delete the file and re-index"
            )


def _new_store() -> InMemoryDocumentStore:
    return InMemoryDocumentStore(embedding_similarity_function="cosine")


def _to_document(chunk: Chunk, vector: Sequence[float]) -> Document:
    meta = {**chunk.meta, "source": chunk.source, "position": chunk.position}
    return Document(id=chunk.id, content=chunk.text, meta=meta, embedding=list(vector))


def _sources_filter(sources: Sequence[str] | None) -> dict[str, Any] | None:
    if not sources:
        return None
    return {"field": "meta.source", "operator": "in", "value": list(sources)}


def _passages(documents: Sequence[Document]) -> list[Passage]:
    passages = []
    for rank, document in enumerate(documents, start=1):
        meta = dict(document.meta)
        source = str(meta.pop("source", ""))
        passages.append(
            Passage(document.id, document.content or "", source, float(document.score or 0.0), rank, meta)
        )
    return passages
