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
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tqdm.auto import tqdm

from qwen3_rerank.config import check_positive
from qwen3_rerank.extras import missing
from qwen3_rerank.reranker import share

from .embedding import Embedder, TextSample, language_warning
from .ingest import Chunker, escaped_name, read_paths
from .records import Answer, Chunk, IndexReport, Passage, SourceText
from .retrieval import HybridRetriever, Retrieval
from .settings import Settings
from .stores import BulkStore, ChunkStore, open_store

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from qwen3_rerank import Qwen3Reranker

# Chunks embedded and written together when indexing (bounds memory on large corpora).
WRITE_BATCH_CHUNKS = 512


class FrameworkStages(Protocol):
    """The stages each framework's own components run: rerank candidates, then answer from them."""

    def rerank(self, question: str, passages: Sequence[Passage], top_n: int) -> list[Passage]: ...

    def generate(self, question: str, passages: Sequence[Passage]) -> str: ...

    def close(self) -> None: ...


class RagService:
    """A retrieval-augmented QA service over one store (embedded or Elasticsearch).

    Models load lazily, on the first call that needs them, so `ping` and `document_count` stay
    cheap. A ``reranker`` passed in lends its config: the service opens its own handle on the same
    weights (the core's registry counts it), so `close` leaves the caller's reranker open. Its
    handles are of its kind, so the server's `QueuedReranker` makes every reranking, by either
    framework's component, go through the server's one queue.

    Args:
        settings: The pipeline's configuration (`Settings.from_env`).
        reranker: A Qwen3Reranker to reuse (for example one the server already loaded);
            ``None`` builds one from ``settings.reranker_config()``.
    """

    def __init__(self, settings: Settings, *, reranker: Qwen3Reranker | None = None) -> None:
        self.settings = settings
        self._store: ChunkStore = open_store(settings)
        # The server calls from worker threads: the lazy parts are built once, under this lock.
        self._lock = threading.RLock()
        self._embedder: Embedder | None = None
        self._reranker: Qwen3Reranker | None = None if reranker is None else share(reranker)
        self._retriever: HybridRetriever | None = None
        self._framework: FrameworkStages | None = None

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

                self._reranker = Qwen3Reranker(config=self.settings.reranker_config())
            return self._reranker

    @property
    def retriever(self) -> HybridRetriever:
        """BM25 + dense retrieval fused with RRF over the store."""
        with self._lock:
            if self._retriever is None:
                self._retriever = HybridRetriever(self._store, self.embedder, self.settings)
            return self._retriever

    @property
    def framework(self) -> FrameworkStages:
        """The chosen framework's reranking and generation components."""
        with self._lock:
            if self._framework is None:
                self._framework = framework_class(self.settings)(self.settings, self.reranker)
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
        stored: set[str] = set()  # ids: a passage sent twice is stored, and counted, once
        batch: list[Chunk] = []
        sample = TextSample()  # for the embedder's language check
        total = len(documents) if isinstance(documents, Sized) else None
        with (
            tqdm(desc="indexing", unit="file", total=total, disable=not show_progress) as progress,
            _bulk(self._store),
        ):
            for document in documents:
                report.files += 1
                chunks = chunker.split(document)
                sample.add(chunk.text for chunk in chunks)
                batch.extend(chunks)
                if len(batch) >= WRITE_BATCH_CHUNKS:
                    stored.update(self._write(batch))
                    progress.update(report.files - progress.n)
                    batch = []
            if batch:
                stored.update(self._write(batch))
            progress.update(report.files - progress.n)
        report.chunks = len(stored)
        report.seconds = time.perf_counter() - started
        warning = language_warning(self.settings.embedding_model, sample.texts)
        if warning:
            logger.warning(warning)
        return report

    def index_paths(self, paths: Sequence[Path], *, show_progress: bool = False) -> IndexReport:
        """Index files (.txt, .md, .html, .pdf) and directories (recursively); unreadable files
        are skipped and listed in the report with the reason. Re-indexing a folder removes the
        passages of files no longer in it (``report.removed`` counts them), and the passages an
        older index held under the folder's absolute paths (now named relative to the folder).

        Sources are named relative to each folder, under its name (`ingest.read_paths`), so two
        different folders of the same name share names: index them into different stores, or
        index their common parent.
        """
        started = time.perf_counter()
        sources, skipped = read_paths(paths)
        report = self.index_documents(sources, show_progress=show_progress)
        report.skipped = skipped
        present = {source.source for source in sources} | {entry.path for entry in skipped}
        for folder in (Path(path).resolve() for path in paths):
            if folder.is_dir():  # a re-indexed folder: passages of files gone from it go too
                report.removed += self._store.prune(escaped_name(folder.name) + "/", present)
                # Indices written before sources were named relative to their folder hold its
                # files by absolute path: those passages are the ones just rewritten under new names.
                report.removed += self._store.prune(str(folder) + os.sep, ())
        report.seconds = time.perf_counter() - started
        return report

    def retrieve(self, question: str, *, candidates: int | None = None) -> Retrieval:
        """The hybrid retrieval stage alone (BM25, dense and fused lists, with timings)."""
        return self.retriever.retrieve(question, candidates or self.settings.candidates)

    def ask(self, question: str, *, candidates: int | None = None, top_n: int | None = None) -> Answer:
        """Answer a question from the indexed passages, citing them as [1], [2], ...

        Raises:
            ValueError: ``question`` is blank, or ``candidates``/``top_n`` is not a positive int.
            StoreError: The store is unreachable or holds no index yet.
        """
        if not isinstance(question, str) or not question.strip():
            raise ValueError(f"question must be a non-empty string, got {question!r}")
        candidates, top_n = self._limits(candidates, top_n)
        timings = {"load": self._load_models()} if self._framework is None else {}
        retrieval = self.retrieve(question, candidates=candidates)
        timings.update(retrieval.timings)
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

    @property
    def writable(self) -> bool:
        """Whether `index_paths` may write: false for an index another tool wrote (read-only)."""
        return bool(getattr(self._store, "writable", True))

    def document_count(self) -> int:
        """How many chunks the store holds (0 when nothing was indexed yet)."""
        return self._store.count()

    def ping(self) -> None:
        """Check that the store is reachable; raises `StoreError` with the URL and a hint if not."""
        self._store.ping()

    def close(self) -> None:
        """Release the store's connections and this service's hold on the reranker weights."""
        self._store.close()
        for part in (self._framework, self._reranker):
            if part is not None:
                part.close()
        self._framework = self._reranker = None

    def __enter__(self) -> RagService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _load_models(self) -> float:
        """Load the embedder, the reranker and the framework's components; the seconds it took
        (reported as their own stage, so a first question's rerank time is the reranking alone)."""
        started = time.perf_counter()
        _ = self.embedder.model, self.framework
        return time.perf_counter() - started

    def _write(self, chunks: Sequence[Chunk]) -> list[str]:
        """Embed and store ``chunks`` once per id (the same source and text twice is one passage);
        returns the ids stored."""
        unique = list({chunk.id: chunk for chunk in chunks}.values())
        self._store.write(unique, self.embedder.embed_documents([chunk.text for chunk in unique]))
        return [chunk.id for chunk in unique]

    def _limits(self, candidates: int | None, top_n: int | None) -> tuple[int, int]:
        candidates = self.settings.candidates if candidates is None else candidates
        top_n = self.settings.top_n if top_n is None else top_n
        check_positive("candidates", candidates)
        check_positive("top_n", top_n)
        return candidates, min(top_n, candidates)


def _bulk(store: ChunkStore) -> contextlib.AbstractContextManager[None]:
    """The store's bulk mode when it has one (indices built once, after the last write)."""
    return store.bulk() if isinstance(store, BulkStore) else contextlib.nullcontext()


def framework_class(settings: Settings) -> type[FrameworkStages]:
    """The chosen framework's stages, imported only when chosen (each pulls in its own
    dependencies); a missing framework names the extra that installs it."""
    try:
        if settings.framework == "haystack":
            from .haystack import HaystackStages

            return HaystackStages
        from .llamaindex import LlamaIndexStages

        return LlamaIndexStages
    except ModuleNotFoundError as error:
        if error.name is None or error.name.split(".")[0] not in {"haystack", "llama_index"}:
            raise
        advice = " (or choose the other framework with --framework)"
        raise missing(error, f"framework={settings.framework!r}", advice) from error
