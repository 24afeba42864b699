"""`RagService`: index documents and answer questions; the one entry point of the CLI, the
evaluation and the HTTP server, so none of them holds pipeline code of its own.

A question goes through four timed stages: hybrid retrieval (BM25 and dense, fused with RRF) in
the shared retrieval layer, then reranking and generation with the chosen framework's own
components (Haystack's ``Qwen3Ranker`` and generators, or LlamaIndex's ``Qwen3Rerank`` and LLMs).

Example:
    >>> service = RagService(Settings.from_env())
    >>> service.index_paths([Path("pipelines/qwen3_rag/samples")])
    IndexReport(files=8, chunks=15, skipped=[], seconds=2.8)
    >>> service.ask("What is the boiling point of water at sea level?").answer
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tqdm.auto import tqdm

from .embedding import Embedder
from .ingest import Chunker, read_paths
from .records import Answer, Chunk, IndexReport, Passage, SourceText
from .retrieval import HybridRetriever, Retrieval
from .settings import Settings
from .stores import BulkStore, ChunkStore, open_store

if TYPE_CHECKING:
    from qwen3_rerank import Qwen3Reranker

# Chunks embedded and written together when indexing (bounds memory on large corpora).
WRITE_BATCH_CHUNKS = 512


class FrameworkPipeline(Protocol):
    """The framework-specific half of a pipeline: rerank candidates, then answer from them."""

    def rerank(self, question: str, passages: Sequence[Passage], top_n: int) -> list[Passage]: ...

    def generate(self, question: str, passages: Sequence[Passage]) -> str: ...


class RagService:
    """A retrieval-augmented QA service over one store (embedded or Elasticsearch).

    Models load lazily, on the first call that needs them, so `ping` and `document_count` stay
    cheap. A ``reranker`` passed in is shared, not owned: `close` leaves it open.

    Args:
        settings: The pipeline's configuration (`Settings.from_env`).
        reranker: A Qwen3Reranker to reuse (for example one the server already loaded);
            ``None`` builds one from ``settings.reranker_model``.
    """

    def __init__(self, settings: Settings, *, reranker: Qwen3Reranker | None = None) -> None:
        self.settings = settings
        self._given_reranker = reranker
        self._store: ChunkStore = open_store(settings)
        # The server calls from worker threads: the lazy parts are built once, under this lock.
        self._lock = threading.RLock()
        self._embedder: Embedder | None = None
        self._reranker: Qwen3Reranker | None = reranker
        self._retriever: HybridRetriever | None = None
        self._framework: FrameworkPipeline | None = None

    @property
    def embedder(self) -> Embedder:
        """The dense embedding model (loaded on first use)."""
        with self._lock:
            if self._embedder is None:
                self._embedder = Embedder(self.settings.embedding_model, device=self.settings.device)
            return self._embedder

    @property
    def reranker(self) -> Qwen3Reranker:
        """The Qwen3 reranker: the one given, or one loaded from the settings on first use."""
        with self._lock:
            if self._reranker is None:
                from qwen3_rerank import Qwen3Reranker

                self._reranker = Qwen3Reranker(self.settings.reranker_model, device=self.settings.device)
            return self._reranker

    @property
    def retriever(self) -> HybridRetriever:
        """BM25 + dense retrieval fused with RRF over the store."""
        with self._lock:
            if self._retriever is None:
                self._retriever = HybridRetriever(self._store, self.embedder, self.settings)
            return self._retriever

    @property
    def framework(self) -> FrameworkPipeline:
        """The chosen framework's reranking and generation components."""
        with self._lock:
            if self._framework is None:
                self._framework = _framework_pipeline(self.settings, self.reranker)
            return self._framework

    def index_documents(self, documents: Iterable[SourceText], *, show_progress: bool = False) -> IndexReport:
        """Chunk, embed and write documents; re-indexing a source replaces its old chunks.

        Chunks are embedded and written a few hundred at a time, so memory stays bounded on large
        corpora; all chunks of one source go into the same write, which is what lets the store
        delete the chunks an edited source no longer has.
        """
        started = time.perf_counter()
        chunker = Chunker(self.settings.chunk_size, self.settings.chunk_overlap)
        report = IndexReport()
        batch: list[Chunk] = []
        with (
            tqdm(desc="embedding", unit="chunk", disable=not show_progress) as progress,
            _bulk(self._store),
        ):
            for document in documents:
                report.files += 1
                batch.extend(chunker.split(document))
                if len(batch) >= WRITE_BATCH_CHUNKS:
                    report.chunks += self._write(batch, progress)
                    batch = []
            if batch:
                report.chunks += self._write(batch, progress)
        report.seconds = time.perf_counter() - started
        return report

    def index_paths(self, paths: Sequence[Path], *, show_progress: bool = False) -> IndexReport:
        """Index files (.txt, .md, .html, .pdf) and directories (recursively); unreadable files
        are skipped and listed in the report with the reason."""
        started = time.perf_counter()
        sources, skipped = read_paths(paths)
        report = self.index_documents(sources, show_progress=show_progress)
        report.skipped = skipped
        report.seconds = time.perf_counter() - started
        return report

    def retrieve(self, question: str, *, top_k: int | None = None) -> Retrieval:
        """The hybrid retrieval stage alone (BM25, dense and fused lists, with timings)."""
        return self.retriever.retrieve(question, top_k=top_k or self.settings.top_k)

    def ask(self, question: str, *, top_k: int | None = None, top_n: int | None = None) -> Answer:
        """Answer a question from the indexed passages, citing them as [1], [2], ...

        Raises:
            ValueError: ``question`` is blank, or ``top_k``/``top_n`` is not a positive integer.
            StoreError: The store is unreachable or holds no index yet.
        """
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"question must be a non-empty string, got {question!r}")
        top_k, top_n = self._limits(top_k, top_n)
        retrieval = self.retrieve(question, top_k=top_k)
        timings = dict(retrieval.timings)
        started = time.perf_counter()
        reranked = self.framework.rerank(question, retrieval.fused, top_n) if retrieval.fused else []
        timings["rerank"] = time.perf_counter() - started
        started = time.perf_counter()
        text = self.framework.generate(question, reranked)
        timings["generate"] = time.perf_counter() - started
        stages = {**retrieval.stages(), "rerank": reranked}
        return Answer(question=question, answer=text, passages=reranked, timings=timings, stages=stages)

    @property
    def location(self) -> str:
        """Where the passages live: the embedded store's file, or the Elasticsearch URL and index."""
        return self._store.location

    def document_count(self) -> int:
        """How many chunks the store holds (0 when nothing was indexed yet)."""
        return self._store.count()

    def ping(self) -> None:
        """Check that the store is reachable; raises `StoreError` with the URL and a hint if not."""
        self._store.ping()

    def close(self) -> None:
        """Release the store's connections and this service's hold on the reranker weights."""
        self._store.close()
        if self._given_reranker is None and self._reranker is not None:
            self._reranker.close()
            self._reranker = None

    def __enter__(self) -> RagService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, chunks: Sequence[Chunk], progress: tqdm) -> int:
        self._store.write(chunks, self.embedder.embed_documents([chunk.text for chunk in chunks]))
        progress.update(len(chunks))
        return len(chunks)

    def _limits(self, top_k: int | None, top_n: int | None) -> tuple[int, int]:
        top_k = self.settings.top_k if top_k is None else top_k
        top_n = self.settings.top_n if top_n is None else top_n
        for name, value in (("top_k", top_k), ("top_n", top_n)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        return top_k, min(top_n, top_k)


def _bulk(store: ChunkStore) -> contextlib.AbstractContextManager[None]:
    """The store's bulk mode when it has one (indices built once, after the last write)."""
    return store.bulk() if isinstance(store, BulkStore) else contextlib.nullcontext()


def _framework_pipeline(settings: Settings, reranker: Qwen3Reranker) -> FrameworkPipeline:
    """The framework is imported only when chosen: each pulls in its own dependencies."""
    if settings.framework == "haystack":
        from .haystack import HaystackPipeline

        return HaystackPipeline(settings, reranker)
    from .llamaindex import LlamaIndexPipeline

    return LlamaIndexPipeline(settings, reranker)
