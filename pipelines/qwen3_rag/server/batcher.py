"""Dynamic micro-batching: many concurrent rerank requests, one model call, budgets in tokens.

A forward pass over 40 documents costs far less than 40 passes over one, so requests that arrive
while the model is busy wait in a bounded queue; when the model frees up, one worker takes every
waiting request of the same group (instruction), up to ``max_batch_tokens``, scores them in ONE
call on a dedicated thread, and hands each request its own scores. Nothing waits on a timer:
under light load a request runs at once, under heavy load batches grow by themselves, as in
continuous batching (Text Embeddings Inference, vLLM).

Work is counted in tokens, as Text Embeddings Inference counts it: a request of 1,000 long
documents is not "one request". The queue refuses (`QueueFullError`, HTTP 429 with
``Retry-After``) when it holds ``queue_size`` requests or ``max_queued_tokens`` tokens, so
latency stays bounded. Requests arrive here already validated and tokenized alone
(`Qwen3Reranker.prepare`); if a shared model call still fails, the batch is split in halves and
retried, so only the request that causes the failure gets the error. A caller that gives up
cancels its future: the worker skips it at the next batch boundary, or drops its scores.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Work = TypeVar("Work")
ScoreBatch = Callable[[list[Any]], list[list[float]]]
"""``score_batch(works) -> one list of scores per work``, e.g. ``Qwen3Reranker.score_prepared``."""


class QueueFullError(RuntimeError):
    """The batcher holds ``queue_size`` requests or ``max_queued_tokens`` tokens; try later."""


@dataclass
class BatcherStats:
    """Counters that show whether coalescing happens and how often load is shed."""

    requests: int = 0
    batches: int = 0
    documents: int = 0
    tokens: int = 0
    rejected: int = 0
    cancelled: int = 0
    retried_batches: int = 0
    largest_batch_requests: int = 0


@dataclass(eq=False)
class _Job(Generic[Work]):
    work: Work
    tokens: int
    documents: int
    group: Hashable
    future: asyncio.Future[list[float]]
    queued: bool = True


class MicroBatcher(Generic[Work]):
    """Coalesces concurrent `submit` calls into shared ``score_batch`` calls.

    Example:
        >>> batcher = MicroBatcher(reranker.score_prepared, max_batch_tokens=16384)
        >>> await batcher.start()
        >>> prepared = reranker.prepare("what is BM25?", ["BM25 is a ranking function."])
        >>> await batcher.submit(prepared, tokens=prepared.tokens, documents=prepared.documents)
        [0.97]
        >>> await batcher.stop()

    Args:
        score_batch: Scores a list of works (one list of floats per work); runs on a single
            worker thread, so the model is never entered by two batches at once.
        queue_size: Requests that may wait; one more raises `QueueFullError`.
        batch_documents: Most documents per model call.
        max_batch_tokens: Most tokens per model call. A single larger request still runs, alone.
        max_queued_tokens: Most tokens waiting; a request that would pass it raises
            `QueueFullError` (unless the queue is empty, so any request can eventually run).
    """

    def __init__(
        self,
        score_batch: ScoreBatch,
        *,
        queue_size: int = 64,
        batch_documents: int = 256,
        max_batch_tokens: int = 16_384,
        max_queued_tokens: int = 262_144,
    ) -> None:
        for name, value in (
            ("queue_size", queue_size),
            ("batch_documents", batch_documents),
            ("max_batch_tokens", max_batch_tokens),
            ("max_queued_tokens", max_queued_tokens),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}.")
        self._score_batch = score_batch
        self.queue_size = queue_size
        self.batch_documents = batch_documents
        self.max_batch_tokens = max_batch_tokens
        self.max_queued_tokens = max_queued_tokens
        self.stats = BatcherStats()
        self._pending: deque[_Job[Work]] = deque()
        self._queued_tokens = 0
        self._in_flight: list[_Job[Work]] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def pending(self) -> int:
        """Requests waiting for the model (cancelled ones included until the worker drops them)."""
        return len(self._pending)

    @property
    def queued_tokens(self) -> int:
        """Tokens of the live requests waiting for the model."""
        return self._queued_tokens

    @property
    def running(self) -> bool:
        return self._worker is not None and not self._worker.done()

    async def start(self) -> None:
        """Start the worker on the running event loop."""
        if self.running:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwen3-rerank-batch")
        self._worker = asyncio.create_task(self._run(), name="qwen3-rerank-batcher")

    async def stop(self) -> None:
        """Stop the worker, fail the requests still waiting or running, and release the thread
        once the model call in progress (if any) has returned."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for job in [*self._in_flight, *self._pending]:
            if not job.future.done():
                job.future.set_exception(RuntimeError("The server is shutting down."))
        self._in_flight, self._pending, self._queued_tokens = [], deque(), 0
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            self._executor = None

    async def submit(self, work: Work, *, tokens: int, documents: int, group: Hashable = None) -> list[float]:
        """Scores of ``work``, computed together with whatever else of its ``group`` waits.

        Raises:
            QueueFullError: The queue is at ``queue_size`` requests or would pass
                ``max_queued_tokens`` tokens.
            RuntimeError: The batcher is not running.
        """
        if not self.running:
            raise RuntimeError("The micro-batcher is not running; call `await batcher.start()` first.")
        if documents == 0:
            return []
        self._refuse_if_full(tokens)
        job = _Job(work, tokens, documents, group, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._queued_tokens += tokens
        self.stats.requests += 1
        self._wakeup.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            self._dequeue(job)
            job.future.cancel()  # the worker skips it, or drops its scores if already running
            raise

    def _refuse_if_full(self, tokens: int) -> None:
        if len(self._pending) >= self.queue_size:
            reason = f"{len(self._pending)} rerank requests are already waiting for the model."
        elif self._pending and self._queued_tokens + tokens > self.max_queued_tokens:
            reason = (
                f"{self._queued_tokens} tokens are already waiting for the model and this request "
                f"adds {tokens}; the queue holds at most {self.max_queued_tokens}."
            )
        else:
            return
        self.stats.rejected += 1
        raise QueueFullError(reason)

    def _dequeue(self, job: _Job[Work]) -> None:
        if job.queued:
            job.queued = False
            self._queued_tokens -= job.tokens

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while batch := self._take_batch():
                self._in_flight = batch
                await self._score(batch)
                self._in_flight = []

    async def _score(self, batch: list[_Job[Work]]) -> None:
        """Score ``batch``; if the shared call fails, split it and retry the halves, so the
        error reaches only the request that causes it."""
        batch = [job for job in batch if not job.future.done()]  # callers that left meanwhile
        if not batch:
            return
        loop = asyncio.get_running_loop()
        works = [job.work for job in batch]
        try:
            results = await loop.run_in_executor(self._executor, self._score_batch, works)
        except Exception as error:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(error)
                return
            self.stats.retried_batches += 1
            middle = len(batch) // 2
            await self._score(batch[:middle])
            await self._score(batch[middle:])
            return
        self._record(batch)
        for job, scores in zip(batch, results, strict=True):
            if not job.future.done():  # its caller may have left while the model ran
                job.future.set_result(scores)

    def _take_batch(self) -> list[_Job[Work]]:
        """The oldest live request plus later ones of its group, within the budgets."""
        while self._pending and self._pending[0].future.done():
            self._pending.popleft()  # cancelled while waiting
        if not self._pending:
            return []
        head = self._pending[0]
        batch: list[_Job[Work]] = []
        documents = tokens = 0
        kept: deque[_Job[Work]] = deque()
        while self._pending:
            job = self._pending.popleft()
            if job.future.done():
                continue
            fits = (
                documents + job.documents <= self.batch_documents
                and tokens + job.tokens <= self.max_batch_tokens
            )
            if job.group == head.group and (fits or not batch):
                batch.append(job)
                self._dequeue(job)
                documents += job.documents
                tokens += job.tokens
            else:
                kept.append(job)
        self._pending = kept
        return batch

    def _record(self, batch: Sequence[_Job[Work]]) -> None:
        self.stats.batches += 1
        self.stats.documents += sum(job.documents for job in batch)
        self.stats.tokens += sum(job.tokens for job in batch)
        self.stats.largest_batch_requests = max(self.stats.largest_batch_requests, len(batch))
