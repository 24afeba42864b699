"""The micro-batcher: coalescing, per-request order, instruction groups, token budgets,
backpressure, cancellation, and failure isolation. A deterministic stand-in scorer makes every
score checkable; a work is ``(pairs, instruction)`` and costs one token per character."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

import pytest

from qwen3_rag.server.queue import MicroBatcher, QueueFullError
from tests.polling import eventually as wait_for

Work = tuple[list[tuple[str, str]], "str | None"]


class GatedScorer:
    """Scores a pair as a function of its texts, records every call, and can hold the model busy
    (its first call blocks until `release`) so that requests pile up in the queue."""

    def __init__(self, *, gate_first: bool = False) -> None:
        self.calls: list[tuple[list[tuple[str, str]], str | None]] = []
        self.entered = threading.Event()
        self._gate = threading.Event()
        if not gate_first:
            self._gate.set()

    def __call__(self, works: list[Work]) -> list[list[float]]:
        pairs = [pair for work_pairs, _ in works for pair in work_pairs]
        self.calls.append((pairs, works[0][1]))
        self.entered.set()
        self._gate.wait(timeout=10)
        return [[expected(q, d, instruction) for q, d in work_pairs] for work_pairs, instruction in works]

    def release(self) -> None:
        self._gate.set()


def score(batcher: MicroBatcher, pairs: Sequence[tuple[str, str]], instruction: str | None = None):
    """Submit ``pairs`` as one request, costing its characters in tokens."""
    tokens = sum(len(q) + len(d) for q, d in pairs)
    work = (list(pairs), instruction)
    return batcher.submit(work, tokens=tokens, documents=len(pairs), group=instruction)


def expected(query: str, document: str, instruction: str | None = None) -> float:
    return len(query) + len(document) / 1000 + (0.5 if instruction else 0.0)


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
    first = asyncio.create_task(score(batcher, [("busy", "model")]))
    await asyncio.to_thread(scorer.entered.wait, 5)
    return first


async def test_concurrent_requests_share_one_model_call_and_get_their_own_scores(gated) -> None:
    batcher, scorer = gated
    first = await occupy(batcher, scorer)
    requests = [[(f"query {i}", f"doc {i}.{j}") for j in range(i + 1)] for i in range(6)]
    tasks = [asyncio.create_task(score(batcher, pairs)) for pairs in requests]
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
        asyncio.create_task(score(batcher, [("q", f"d{i}")], instruction="legal" if i % 2 else None))
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
        tasks = [asyncio.create_task(score(batcher, [("q", "a"), ("q", "b")])) for _ in range(5)]
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
        scores = await score(batcher, [("q", str(i)) for i in range(5)])
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
        waiting = [asyncio.create_task(score(small, [("q", "d")])) for _ in range(2)]
        await wait_for(lambda: small.pending == 2)
        with pytest.raises(QueueFullError, match="already waiting"):
            await score(small, [("q", "refused")])
        assert small.stats.rejected == 1
        scorer.release()
        await asyncio.gather(first, *waiting)
    finally:
        scorer.release()
        await small.stop()


async def test_a_cancelled_request_is_never_scored(gated) -> None:
    batcher, scorer = gated
    first = await occupy(batcher, scorer)
    leaving = asyncio.create_task(score(batcher, [("q", "nobody waits for me")]))
    staying = asyncio.create_task(score(batcher, [("q", "kept")]))
    await wait_for(lambda: batcher.pending == 2)
    leaving.cancel()
    scorer.release()
    assert await staying == [expected("q", "kept")]
    await first
    scored = [document for pairs, _ in scorer.calls for _, document in pairs]
    assert "nobody waits for me" not in scored
    assert batcher.stats.cancelled == 1


async def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on() -> None:
    def fragile(works: list[Work]) -> list[list[float]]:
        if any(document == "boom" for pairs, _ in works for _, document in pairs):
            raise RuntimeError("model exploded")
        return [[1.0] * len(pairs) for pairs, _ in works]

    batcher = MicroBatcher(fragile)
    await batcher.start()
    try:
        with pytest.raises(RuntimeError, match="model exploded"):
            await score(batcher, [("q", "boom")])
        assert await score(batcher, [("q", "fine")]) == [1.0]
    finally:
        await batcher.stop()


async def test_scoring_before_start_says_how_to_start() -> None:
    batcher = MicroBatcher(GatedScorer())
    with pytest.raises(RuntimeError, match="start"):
        await score(batcher, [("q", "d")])


async def test_stop_fails_the_running_and_the_waiting_requests(gated) -> None:
    batcher, scorer = gated
    running = await occupy(batcher, scorer)
    waiting = asyncio.create_task(score(batcher, [("q", "d")]))
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
    assert await score(batcher, []) == []
    assert scorer.calls == []


@pytest.mark.parametrize("name", ["queue_size", "batch_documents", "max_batch_tokens", "max_queued_tokens"])
@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_sizes_must_be_positive_ints(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        MicroBatcher(GatedScorer(), **{name: value})


async def test_batches_respect_the_token_budget() -> None:
    scorer = GatedScorer(gate_first=True)
    batcher = MicroBatcher(scorer, max_batch_tokens=10)
    await batcher.start()
    try:
        first = await occupy(batcher, scorer)
        tasks = [asyncio.create_task(score(batcher, [("q", "four")])) for _ in range(5)]  # 5 tokens each
        await wait_for(lambda: batcher.pending == 5)
        assert batcher.queued_tokens == 25
        scorer.release()
        await asyncio.gather(first, *tasks)
    finally:
        await batcher.stop()
    assert [len(pairs) for pairs, _ in scorer.calls[1:]] == [2, 2, 1]
    assert batcher.queued_tokens == 0


async def test_a_queue_full_of_tokens_refuses_new_requests_however_few() -> None:
    scorer = GatedScorer(gate_first=True)
    batcher = MicroBatcher(scorer, queue_size=100, max_queued_tokens=30)
    await batcher.start()
    try:
        first = await occupy(batcher, scorer)
        big = asyncio.create_task(score(batcher, [("q", "x" * 24)]))  # 25 tokens
        await wait_for(lambda: batcher.pending == 1)
        with pytest.raises(QueueFullError, match="tokens are already waiting"):
            await score(batcher, [("q", "sixsix")])  # 7 more would make 32
        small = asyncio.create_task(score(batcher, [("q", "d")]))  # 2 more fit
        await wait_for(lambda: batcher.pending == 2)
        scorer.release()
        await asyncio.gather(first, big, small)
    finally:
        scorer.release()
        await batcher.stop()
    assert batcher.stats.rejected == 1


async def test_a_request_alone_in_the_queue_is_accepted_whatever_its_size() -> None:
    batcher = MicroBatcher(GatedScorer(), max_queued_tokens=5, max_batch_tokens=5)
    await batcher.start()
    try:
        assert await score(batcher, [("q", "a long document")]) == [expected("q", "a long document")]
    finally:
        await batcher.stop()


async def test_a_cancelled_request_gives_its_tokens_back(gated) -> None:
    batcher, scorer = gated
    first = await occupy(batcher, scorer)
    leaving = asyncio.create_task(score(batcher, [("q", "abandoned")]))
    await wait_for(lambda: batcher.pending == 1)
    assert batcher.queued_tokens == 10
    leaving.cancel()
    await wait_for(lambda: batcher.queued_tokens == 0)
    scorer.release()
    await first


async def test_a_poisoned_request_fails_alone_and_the_rest_of_its_batch_gets_scores() -> None:
    entered, gate = threading.Event(), threading.Event()
    calls: list[int] = []

    def poisoned_by_boom(works: list[Work]) -> list[list[float]]:
        calls.append(len(works))
        entered.set()
        gate.wait(timeout=10)
        if any(document == "boom" for pairs, _ in works for _, document in pairs):
            raise RuntimeError("the model call failed")
        return [[expected(q, d) for q, d in pairs] for pairs, _ in works]

    batcher = MicroBatcher(poisoned_by_boom)
    await batcher.start()
    try:
        first = asyncio.create_task(score(batcher, [("busy", "model")]))
        await asyncio.to_thread(entered.wait, 5)
        requests = [[("q", f"innocent {i}")] for i in range(5)]
        requests.insert(3, [("q", "boom")])
        tasks = [asyncio.create_task(score(batcher, pairs)) for pairs in requests]
        await wait_for(lambda: batcher.pending == len(requests))
        gate.set()
        results = await asyncio.gather(first, *tasks, return_exceptions=True)
    finally:
        gate.set()
        await batcher.stop()
    outcomes = results[1:]
    assert isinstance(outcomes[3], RuntimeError)
    assert [r for i, r in enumerate(outcomes) if i != 3] == [
        [expected("q", f"innocent {i}")] for i in range(5)
    ]
    assert calls[1] == 6 and batcher.stats.retried_batches >= 1
