"""The micro-batcher: coalescing, per-request order, instruction groups, budgets, backpressure,
cancellation, and failure isolation. A deterministic stand-in scorer makes every score checkable."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from qwen3_rag.server.batcher import MicroBatcher, QueueFullError


class GatedScorer:
    """Scores a pair as a function of its texts, records every call, and can hold the model busy
    (its first call blocks until `release`) so that requests pile up in the queue."""

    def __init__(self, *, gate_first: bool = False) -> None:
        self.calls: list[tuple[list[tuple[str, str]], str | None]] = []
        self.entered = threading.Event()
        self._gate = threading.Event()
        if not gate_first:
            self._gate.set()

    def __call__(self, pairs: list[tuple[str, str]], instruction: str | None) -> list[float]:
        self.calls.append((list(pairs), instruction))
        self.entered.set()
        self._gate.wait(timeout=10)
        return [expected(query, document, instruction) for query, document in pairs]

    def release(self) -> None:
        self._gate.set()


def expected(query: str, document: str, instruction: str | None = None) -> float:
    return len(query) + len(document) / 1000 + (0.5 if instruction else 0.0)


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``condition()`` holds (``asyncio.timeout`` would need Python 3.11)."""
    await asyncio.wait_for(_poll(condition), timeout)


async def _poll(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.005)


@pytest.fixture
async def gated() -> AsyncIterator[tuple[MicroBatcher, GatedScorer]]:
    scorer = GatedScorer(gate_first=True)
    batcher = MicroBatcher(scorer, queue_size=16, batch_documents=100)
    await batcher.start()
    yield batcher, scorer
    scorer.release()
    await batcher.stop()


async def occupy(batcher: MicroBatcher, scorer: GatedScorer) -> asyncio.Task[list[float]]:
    """Start one request and wait until the model is busy with it."""
    first = asyncio.create_task(batcher.score([("busy", "model")]))
    await asyncio.to_thread(scorer.entered.wait, 5)
    return first


async def test_concurrent_requests_share_one_model_call_and_get_their_own_scores(gated) -> None:
    batcher, scorer = gated
    first = await occupy(batcher, scorer)
    requests = [[(f"query {i}", f"doc {i}.{j}") for j in range(i + 1)] for i in range(6)]
    tasks = [asyncio.create_task(batcher.score(pairs)) for pairs in requests]
    await wait_for(lambda: batcher.pending == len(requests))
    scorer.release()
    results = await asyncio.gather(*tasks)
    await first
    assert results == [[expected(q, d) for q, d in pairs] for pairs in requests]
    assert len(scorer.calls) == 2  # the busy request, then all six together
    assert scorer.calls[1][0] == [pair for pairs in requests for pair in pairs]
    assert batcher.stats.largest_batch_requests == 6


async def test_requests_with_different_instructions_are_never_mixed(gated) -> None:
    batcher, scorer = gated
    first = await occupy(batcher, scorer)
    tasks = [
        asyncio.create_task(batcher.score([("q", f"d{i}")], instruction="legal" if i % 2 else None))
        for i in range(4)
    ]
    await wait_for(lambda: batcher.pending == 4)
    scorer.release()
    results = await asyncio.gather(*tasks)
    await first
    assert results == [[expected("q", f"d{i}", "legal" if i % 2 else None)] for i in range(4)]
    assert [(len(pairs), instruction) for pairs, instruction in scorer.calls[1:]] == [(2, None), (2, "legal")]


async def test_batches_respect_the_document_budget() -> None:
    scorer = GatedScorer(gate_first=True)
    batcher = MicroBatcher(scorer, batch_documents=4)
    await batcher.start()
    try:
        first = await occupy(batcher, scorer)
        tasks = [asyncio.create_task(batcher.score([("q", "a"), ("q", "b")])) for _ in range(5)]
        await wait_for(lambda: batcher.pending == 5)
        scorer.release()
        await asyncio.gather(first, *tasks)
    finally:
        await batcher.stop()
    assert [len(pairs) for pairs, _ in scorer.calls[1:]] == [4, 4, 2]


async def test_a_request_larger_than_the_budget_still_runs_alone() -> None:
    scorer = GatedScorer()
    batcher = MicroBatcher(scorer, batch_documents=2)
    await batcher.start()
    try:
        scores = await batcher.score([("q", str(i)) for i in range(5)])
    finally:
        await batcher.stop()
    assert scores == [expected("q", str(i)) for i in range(5)]
    assert len(scorer.calls) == 1


async def test_a_full_queue_refuses_new_requests() -> None:
    scorer = GatedScorer(gate_first=True)
    small = MicroBatcher(scorer, queue_size=2)
    await small.start()
    try:
        first = await occupy(small, scorer)
        waiting = [asyncio.create_task(small.score([("q", "d")])) for _ in range(2)]
        await wait_for(lambda: small.pending == 2)
        with pytest.raises(QueueFullError, match="already waiting"):
            await small.score([("q", "refused")])
        assert small.stats.rejected == 1
        scorer.release()
        await asyncio.gather(first, *waiting)
    finally:
        scorer.release()
        await small.stop()


async def test_a_cancelled_request_is_never_scored(gated) -> None:
    batcher, scorer = gated
    first = await occupy(batcher, scorer)
    leaving = asyncio.create_task(batcher.score([("q", "nobody waits for me")]))
    staying = asyncio.create_task(batcher.score([("q", "kept")]))
    await wait_for(lambda: batcher.pending == 2)
    leaving.cancel()
    scorer.release()
    assert await staying == [expected("q", "kept")]
    await first
    scored = [document for pairs, _ in scorer.calls for _, document in pairs]
    assert "nobody waits for me" not in scored
    assert batcher.stats.cancelled == 1


async def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on() -> None:
    def fragile(pairs: list[tuple[str, str]], instruction: str | None) -> list[float]:
        if any(document == "boom" for _, document in pairs):
            raise RuntimeError("model exploded")
        return [1.0] * len(pairs)

    batcher = MicroBatcher(fragile)
    await batcher.start()
    try:
        with pytest.raises(RuntimeError, match="model exploded"):
            await batcher.score([("q", "boom")])
        assert await batcher.score([("q", "fine")]) == [1.0]
    finally:
        await batcher.stop()


async def test_scoring_before_start_says_how_to_start() -> None:
    batcher = MicroBatcher(GatedScorer())
    with pytest.raises(RuntimeError, match="start"):
        await batcher.score([("q", "d")])


async def test_stop_fails_the_running_and_the_waiting_requests(gated) -> None:
    batcher, scorer = gated
    running = await occupy(batcher, scorer)
    waiting = asyncio.create_task(batcher.score([("q", "d")]))
    await wait_for(lambda: batcher.pending == 1)
    stopping = asyncio.create_task(batcher.stop())
    await wait_for(waiting.done)
    scorer.release()  # the model call in progress returns; stop waits for it
    await stopping
    for request in (running, waiting):
        with pytest.raises(RuntimeError, match="shutting down"):
            await request
    assert not batcher.running


async def test_empty_request_needs_no_model_call(gated) -> None:
    batcher, scorer = gated
    assert await batcher.score([]) == []
    assert scorer.calls == []


@pytest.mark.parametrize("name", ["queue_size", "batch_documents", "batch_chars"])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_sizes_must_be_positive_ints(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        MicroBatcher(GatedScorer(), **{name: value})
