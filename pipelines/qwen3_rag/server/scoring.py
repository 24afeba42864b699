"""Every model call of the server, ``/v1/rerank`` and ``/v1/ask`` alike, in three steps.

As in Text Embeddings Inference's router: a request is validated and tokenized on its own
(`Qwen3Reranker.prepare`, on a worker thread), so its errors are its own; it then joins the
bounded, token-budgeted queue of the one `MicroBatcher`; the batcher's single worker thread makes
the model call. The RAG pipeline runs on worker threads and reaches the same queue through
a `QueuedReranker` (`RerankScheduler.queued_reranker`): the frameworks' rankers rerank with it as
with any reranker, and its scoring joins the same queue, so two model calls never run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from qwen3_rerank import PreparedRequest, Qwen3Reranker, RerankResult
from qwen3_rerank.config import check_positive
from qwen3_rerank.reranker import best_first

from .batcher import MicroBatcher
from .settings import ServerSettings


class RerankScheduler:
    """Prepare alone, then score together.

    Example:
        >>> scheduler = RerankScheduler.start(reranker, settings)
        >>> await scheduler.score("what is BM25?", ["BM25 is a ranking function."])
        [0.97]
    """

    def __init__(
        self, reranker: Qwen3Reranker, batcher: MicroBatcher, max_tokens_per_doc: int | None
    ) -> None:
        self.reranker = reranker
        self.batcher = batcher
        self.max_tokens_per_doc = max_tokens_per_doc
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    async def start(
        cls,
        reranker: Qwen3Reranker,
        settings: ServerSettings,
        score_batch: Callable[[list[PreparedRequest]], list[list[float]]] | None = None,
    ) -> RerankScheduler:
        """A scheduler with its batcher running on the current event loop; ``score_batch`` (default
        ``reranker.score_prepared``) is the model call, e.g. wrapped to be timed."""
        batcher: MicroBatcher[PreparedRequest] = MicroBatcher(
            score_batch or reranker.score_prepared,
            queue_size=settings.queue_size,
            batch_documents=settings.batch_documents,
            max_batch_tokens=settings.max_batch_tokens,
            max_queued_tokens=settings.max_queued_tokens,
        )
        await batcher.start()
        scheduler = cls(reranker, batcher, settings.max_tokens_per_doc)
        scheduler._loop = asyncio.get_running_loop()
        return scheduler

    async def prepare(
        self,
        query: str,
        documents: Sequence[str],
        instruction: str | None = None,
        max_tokens_per_doc: int | None = None,
    ) -> PreparedRequest:
        """Validate and tokenize one request off the event loop; documents are cut to the lower
        of ``max_tokens_per_doc`` (the client's) and the server's cap.

        Raises:
            qwen3_rerank.InvalidInput: The request's own text cannot be scored (names where).
        """
        return await asyncio.to_thread(
            self.reranker.prepare,
            query,
            documents,
            instruction,
            max_tokens_per_doc=_lowest(max_tokens_per_doc, self.max_tokens_per_doc),
        )

    async def score(
        self,
        query: str,
        documents: Sequence[str],
        instruction: str | None = None,
        max_tokens_per_doc: int | None = None,
    ) -> list[float]:
        """P(yes) per document, in order, scored in a shared batch.

        Raises:
            qwen3_rerank.InvalidInput: As `prepare`.
            QueueFullError: The queue is full (in requests or tokens).
        """
        prepared = await self.prepare(query, documents, instruction, max_tokens_per_doc)
        return await self.batcher.submit(
            prepared, tokens=prepared.tokens, documents=prepared.documents, group=instruction
        )

    def score_from_thread(
        self, query: str, documents: Sequence[str], instruction: str | None = None
    ) -> list[float]:
        """`score` for code running on a worker thread (the RAG pipeline); blocks that thread."""
        if self._loop is None:
            raise RuntimeError("RerankScheduler.start() was not awaited.")
        return asyncio.run_coroutine_threadsafe(
            self.score(query, documents, instruction), self._loop
        ).result()

    def queued_reranker(self) -> QueuedReranker:
        """A handle on the model whose scoring goes through this queue (close it when done)."""
        return QueuedReranker(self, config=self.reranker.config, registry=self.reranker.registry)

    async def stop(self) -> None:
        await self.batcher.stop()


class QueuedReranker(Qwen3Reranker):
    """A `Qwen3Reranker` handle for worker threads whose ``score`` and ``rerank`` join the
    scheduler's queue instead of calling the model; the handles the adapters open from it
    (`share`) are queued too. Scores equal the core's; ``RerankResult.windows`` reads 1."""

    def __init__(self, scheduler: RerankScheduler, **settings: Any) -> None:
        super().__init__(**settings)
        self.scheduler = scheduler

    def share(self, **settings: Any) -> QueuedReranker:
        return QueuedReranker(self.scheduler, **settings, config=self.config, registry=self.registry)

    def score(self, query: str, documents: Iterable[str], instruction: str | None = None) -> list[float]:
        return self.scheduler.score_from_thread(query, list(documents), instruction)

    def rerank(
        self,
        query: str,
        documents: Iterable[str],
        top_n: int | None = None,
        instruction: str | None = None,
    ) -> list[RerankResult]:
        if top_n is not None:
            check_positive("top_n", top_n)
        documents = list(documents)
        scores = self.score(query, documents, instruction)
        return [RerankResult(index, scores[index], documents[index]) for index in best_first(scores, top_n)]


def _lowest(*limits: int | None) -> int | None:
    """The strictest of the limits that are set."""
    return min((limit for limit in limits if limit is not None), default=None)
