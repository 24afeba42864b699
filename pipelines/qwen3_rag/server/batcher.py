"""Dynamic micro-batching: many concurrent rerank requests, one model call.

A forward pass over 40 documents costs far less than 40 passes over one, so requests that arrive
while the model is busy wait in a bounded queue; when the model frees up, one worker takes every
waiting request that shares an instruction (up to a document and character budget), scores all
their pairs in ONE ``score_pairs`` call on a dedicated thread, and hands each request its slice
of the scores. Nothing waits on a timer: under light load a request runs at once, under heavy
load batches grow by themselves, as in continuous batching (Text Embeddings Inference, vLLM).

A full queue raises `QueueFullError` (the API answers 429 with ``Retry-After``) instead of letting
latency grow without bound; a caller that gives up cancels its future, and the worker skips it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

ScorePairs = Callable[[list[tuple[str, str]], str | None], list[float]]
"""``score_pairs(pairs, instruction) -> scores``, e.g. ``Qwen3Reranker.score_pairs``."""


class QueueFullError(RuntimeError):
    """The batcher already holds ``queue_size`` requests; try again later."""


@dataclass
class BatcherStats:
    """Counters that show whether coalescing happens (exposed on ``/readyz``)."""

    requests: int = 0
    batches: int = 0
    pairs: int = 0
    rejected: int = 0
    cancelled: int = 0
    largest_batch_requests: int = 0


@dataclass
class _Job:
    pairs: list[tuple[str, str]]
    instruction: str | None
    future: asyncio.Future[list[float]]
    chars: int = field(init=False)

    def __post_init__(self) -> None:
        self.chars = sum(len(query) + len(document) for query, document in self.pairs)


class MicroBatcher:
    """Coalesces concurrent ``score`` calls into shared ``score_pairs`` calls.

    Example:
        >>> batcher = MicroBatcher(reranker.score_pairs, queue_size=64)
        >>> await batcher.start()
        >>> await batcher.score([("what is BM25?", "BM25 is a ranking function.")])
        [0.97]
        >>> await batcher.stop()

    Args:
        score_pairs: Scores ``(query, document)`` pairs under one instruction; runs on a single
            worker thread, so the model is never entered by two batches at once.
        queue_size: Requests that may wait; one more raises `QueueFullError`.
        batch_documents: Most pairs per model call (a single larger request still runs, alone).
        batch_chars: Most characters per model call, a cheap stand-in for tokens.
    """

    def __init__(
        self,
        score_pairs: ScorePairs,
        *,
        queue_size: int = 64,
        batch_documents: int = 256,
        batch_chars: int = 400_000,
    ) -> None:
        for name, value in (
            ("queue_size", queue_size),
            ("batch_documents", batch_documents),
            ("batch_chars", batch_chars),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int; got {value!r}.")
        self._score_pairs = score_pairs
        self.queue_size = queue_size
        self.batch_documents = batch_documents
        self.batch_chars = batch_chars
        self.stats = BatcherStats()
        self._pending: deque[_Job] = deque()
        self._in_flight: list[_Job] = []
        self._wakeup = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def pending(self) -> int:
        """Requests waiting for the model (cancelled ones included until the worker drops them)."""
        return len(self._pending)

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
        self._in_flight, self._pending = [], deque()
        if self._executor is not None:
            await asyncio.to_thread(self._executor.shutdown, wait=True)
            self._executor = None

    async def score(self, pairs: Sequence[tuple[str, str]], instruction: str | None = None) -> list[float]:
        """Scores for ``pairs`` in order, computed together with whatever else is waiting.

        Raises:
            QueueFullError: ``queue_size`` requests are already waiting.
            RuntimeError: The batcher is not running.
        """
        if not self.running:
            raise RuntimeError("The micro-batcher is not running; call `await batcher.start()` first.")
        if not pairs:
            return []
        if len(self._pending) >= self.queue_size:
            self.stats.rejected += 1
            raise QueueFullError(f"{len(self._pending)} rerank requests are already waiting for the model.")
        job = _Job(list(pairs), instruction, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self.stats.requests += 1
        self._wakeup.set()
        try:
            return await job.future
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            job.future.cancel()  # the worker skips it, or drops its scores if already running
            raise

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while batch := self._take_batch():
                self._in_flight = batch
                await self._score_batch(batch)
                self._in_flight = []

    async def _score_batch(self, batch: list[_Job]) -> None:
        pairs = [pair for job in batch for pair in job.pairs]
        loop = asyncio.get_running_loop()
        try:
            scores = await loop.run_in_executor(
                self._executor, self._score_pairs, pairs, batch[0].instruction
            )
        except Exception as error:  # one bad batch fails its own requests, not the worker
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(error)
            return
        self._record(batch, len(pairs))
        self._deliver(batch, scores)

    def _take_batch(self) -> list[_Job]:
        """The oldest live request plus later ones with its instruction, within the budget."""
        while self._pending and self._pending[0].future.done():
            self._pending.popleft()  # cancelled while waiting
        if not self._pending:
            return []
        head = self._pending[0]
        batch: list[_Job] = []
        documents = chars = 0
        kept: deque[_Job] = deque()
        while self._pending:
            job = self._pending.popleft()
            if job.future.done():
                continue
            fits = (
                documents + len(job.pairs) <= self.batch_documents and chars + job.chars <= self.batch_chars
            )
            if job.instruction == head.instruction and (fits or not batch):
                batch.append(job)
                documents += len(job.pairs)
                chars += job.chars
            else:
                kept.append(job)
        self._pending = kept
        return batch

    def _record(self, batch: list[_Job], pairs: int) -> None:
        self.stats.batches += 1
        self.stats.pairs += pairs
        self.stats.largest_batch_requests = max(self.stats.largest_batch_requests, len(batch))

    @staticmethod
    def _deliver(batch: list[_Job], scores: list[float]) -> None:
        start = 0
        for job in batch:
            end = start + len(job.pairs)
            if not job.future.done():  # its caller may have left while the model ran
                job.future.set_result(scores[start:end])
            start = end
