"""Where work waits: the model's one queue, the pipeline pools, the readiness probe.

**The model's queue** (`MicroBatcher`, `RerankScheduler`), as in Text Embeddings Inference's
``core/src/queue.rs``: a request is validated and tokenized alone (`Qwen3Reranker.prepare`, on a
worker thread), so its errors are its own; it then waits in one bounded queue counted in tokens;
one worker takes the oldest request plus every later one of the same instruction, up to
``max_batch_tokens``, and scores them in ONE call on a dedicated thread. Nothing waits on a
timer: under light load a request runs at once, under heavy load batches grow by themselves. The
queue refuses (`QueueFullError`, HTTP 429) at ``queue_size`` requests or ``max_queued_tokens``
tokens. If a shared call fails, the batch is split in halves and retried, so only the request
that causes the failure gets the error. A caller that leaves cancels its future: the worker
skips it, or drops its scores. The RAG pipeline reaches the same queue from its threads through
`RerankScheduler.score_from_thread`, so two model calls never run at once.

**The pipeline pools** (`BoundedPool`): ``/v1/ask`` and ``/v1/documents`` block (Elasticsearch,
embedding, generation), so each runs on a small pool whose size is its concurrency limit (one
more call gets 429 at once), with a deadline (504). A call whose deadline passes or whose
client leaves is *abandoned*: its next rerank slice raises `WorkAbandoned` in its thread, so the
thread, and its slot, come free within one rerank batch instead of running on for minutes.

**The readiness probe** (`Probe`) has a thread of its own and never starts a second store ping
while one hangs, so ``/readyz`` answers within its timeout whatever the store does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from starlette.requests import Request

from qwen3_rerank import PreparedRequest, Qwen3Reranker

from .settings import ServerSettings

T = TypeVar("T")
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


# --- Prepare alone, then score together --------------------------------------------------------


class WorkAbandoned(Exception):
    """The pipeline call this thread works for passed its deadline or lost its client."""


# The abandonment flag of the pipeline call running in this thread (set by `BoundedPool.run`).
_abandoned: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar(
    "qwen3_abandoned", default=None
)
_POLL_S = 0.05


class RerankScheduler:
    """Prepare alone, then score together.

    Example:
        >>> scheduler = await RerankScheduler.start(reranker, settings)
        >>> await scheduler.score("what is BM25?", ["BM25 is a ranking function."])
        [0.97]
    """

    def __init__(self, reranker: Qwen3Reranker, batcher: MicroBatcher, settings: ServerSettings) -> None:
        self.reranker = reranker
        self.batcher = batcher
        self.max_tokens_per_doc = settings.max_tokens_per_doc
        self.slice_documents = settings.batch_documents
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
        scheduler = cls(reranker, batcher, settings)
        scheduler._loop = asyncio.get_running_loop()
        return scheduler

    async def score(
        self,
        query: str,
        documents: Sequence[str],
        instruction: str | None = None,
        max_tokens_per_doc: int | None = None,
    ) -> list[float]:
        """P(yes) per document, in order, scored in a shared batch. Documents are cut to the
        lower of ``max_tokens_per_doc`` (the client's) and the server's cap.

        Raises:
            qwen3_rerank.InvalidInput: The request's own text cannot be scored (names where).
            QueueFullError: The queue is full (in requests or tokens).
        """
        scores, _ = await self.score_counted(query, documents, instruction, max_tokens_per_doc)
        return scores

    async def score_counted(
        self,
        query: str,
        documents: Sequence[str],
        instruction: str | None = None,
        max_tokens_per_doc: int | None = None,
    ) -> tuple[list[float], int]:
        """`score`, and the prompt tokens the model read for it (vLLM's ``usage`` reports them)."""
        limit = min(max_tokens_per_doc or self.max_tokens_per_doc, self.max_tokens_per_doc)
        prepared = await asyncio.to_thread(
            self.reranker.prepare, query, documents, instruction, max_tokens_per_doc=limit
        )
        scores = await self.batcher.submit(
            prepared, tokens=prepared.tokens, documents=prepared.documents, group=instruction
        )
        return scores, prepared.tokens

    def score_from_thread(
        self, query: str, documents: Sequence[str], instruction: str | None = None
    ) -> list[float]:
        """`score` for code on a worker thread (the RAG pipeline); blocks that thread.

        The documents go in slices of at most ``batch_documents``, each its own queued request,
        so an ask's memory is bounded like a rerank request's, and an abandoned call stops
        between slices (`WorkAbandoned`).
        """
        if self._loop is None:
            raise RuntimeError("RerankScheduler.start() was not awaited.")
        abandoned = _abandoned.get()
        scores: list[float] = []
        for start in range(0, len(documents), self.slice_documents):
            part = documents[start : start + self.slice_documents]
            future = asyncio.run_coroutine_threadsafe(self.score(query, part, instruction), self._loop)
            scores.extend(_wait(future, abandoned))
        return scores

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

    def _scores_and_windows(
        self, query: str, documents: list[str], instruction: str | None
    ) -> tuple[list[float], list[int]]:
        return self.score(query, documents, instruction), [1] * len(documents)


def _wait(future: concurrent.futures.Future[list[float]], abandoned: threading.Event | None) -> list[float]:
    """The future's result, unless the call it serves is abandoned first (then it is cancelled)."""
    while True:
        if abandoned is not None and abandoned.is_set():
            future.cancel()  # cancels the coroutine on the loop: the batcher drops the job
            raise WorkAbandoned("the call passed its deadline or its client left")
        with contextlib.suppress(concurrent.futures.TimeoutError):
            return future.result(timeout=_POLL_S)


# --- Blocking pipeline calls on bounded pools --------------------------------------------------


class PoolFull(Exception):
    """Every thread of the pool is busy (HTTP 429)."""


class PoolTimeout(Exception):
    """The call passed its deadline (HTTP 504); it is abandoned, its slot frees when it returns."""


class BoundedPool:
    """At most ``workers`` blocking calls at once, each awaited for at most ``timeout_s``.

    Example:
        >>> pool = BoundedPool("ask", workers=4, timeout_s=30)
        >>> answer = await pool.run(rag.ask, "What is BM25?")
    """

    def __init__(self, name: str, *, workers: int, timeout_s: float) -> None:
        self.name = name
        self.workers = workers
        self.timeout_s = timeout_s
        self.busy = 0
        self.rejected = 0
        self.timed_out = 0
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"qwen3-{name}")

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` on the pool; abandoned at its deadline or if cancelled
        (its client left).

        Raises:
            PoolFull: ``workers`` calls are running already.
            PoolTimeout: The call took longer than ``timeout_s``.
        """
        if self.busy >= self.workers:
            self.rejected += 1
            raise PoolFull(f"{self.busy} {self.name} calls are running, the most this server allows at once.")
        self.busy += 1
        abandoned = threading.Event()
        context = contextvars.copy_context()
        context.run(_abandoned.set, abandoned)
        call = functools.partial(context.run, function, *args, **kwargs)
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)
        future.add_done_callback(self._release)
        try:
            # shield: a deadline or a departed client stops the waiting, not the slot accounting.
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except asyncio.TimeoutError as error:
            abandoned.set()
            self.timed_out += 1
            raise PoolTimeout(f"The {self.name} call did not finish within {self.timeout_s:g} s.") from error
        except asyncio.CancelledError:
            abandoned.set()
            raise

    def _release(self, future: asyncio.Future[Any]) -> None:
        self.busy -= 1
        _retrieve(future)  # so an abandoned failure is not reported as unhandled

    def close(self) -> None:
        """Stop taking work; threads still blocked in a call end when that call returns."""
        self._executor.shutdown(wait=False, cancel_futures=True)


class Probe:
    """Runs a health check on its own thread; while one hangs, later checks wait on that one.

    Example:
        >>> probe = Probe(timeout_s=0.5)
        >>> await probe.check(rag.ping)  # TimeoutError after 0.5 s if the store is frozen
    """

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qwen3-readiness")
        self._in_flight: asyncio.Future[Any] | None = None

    async def check(self, function: Callable[[], Any]) -> None:
        """Return when ``function()`` succeeded; raise its error, or `TimeoutError` at the deadline."""
        if self._in_flight is None or self._in_flight.done():
            self._in_flight = asyncio.get_running_loop().run_in_executor(self._executor, function)
            self._in_flight.add_done_callback(_retrieve)
        try:
            await asyncio.wait_for(asyncio.shield(self._in_flight), self.timeout_s)
        except asyncio.TimeoutError as error:
            raise TimeoutError(f"no answer within {self.timeout_s:g} s") from error

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# --- Clients that leave ------------------------------------------------------------------------


class ClientDisconnected(Exception):
    """The client closed the connection before its response was ready."""


async def cancel_on_disconnect(request: Request, work: Awaitable[T]) -> T:
    """``await work``, unless the client disconnects first: then cancel it and raise.

    Starlette does not cancel a handler whose client left, so a client that timed out would
    still cost a model call. Call it after the body has been read (FastAPI has done so once the
    handler runs), so the only message left to receive is the disconnect.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (watcher, task):
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending  # let the work clean up (the batcher drops its job) first
    if not task.cancelled():
        return task.result()
    raise ClientDisconnected()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
