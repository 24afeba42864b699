"""The core's determinism promise (docs/performance.md, "Determinism"): every model call of a loaded
model runs on its one scoring thread, so the same input scores bit-identically whichever thread
calls; identical documents in one call are scored once, so ties are exact and keep input order."""

import asyncio
import contextlib
import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from qwen3_rerank import Qwen3Reranker
from qwen3_rerank.scoring_thread import ScoringThread
from tests.polling import wait_until

QUERY = "How do vaccines work?"
DOCUMENTS = [
    "Vaccines train the immune system to recognise a pathogen.",
    "The stock market closed higher today.",
    "mRNA vaccines deliver instructions for making a spike protein, which the body then learns to fight.",
    "A recipe for lemon cake.",
    "Herd immunity protects those who cannot be vaccinated.",
]
SAME = "Antibodies bind to antigens."


@pytest.fixture
def reranker(tiny_qwen3_dir):
    # A small token budget, so that the documents land in several batches of different widths.
    return Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", batch_tokens=64)


def test_forty_identical_documents_tie_exactly_and_keep_input_order(reranker):
    # The copies sit among documents of other lengths: without sharing one score they would be
    # read in different batches, at different padding.
    documents = [SAME] * 20 + DOCUMENTS + [SAME] * 20
    scores = reranker.score(QUERY, documents)
    copies = [score for document, score in zip(documents, scores, strict=True) if document == SAME]
    assert len(copies) == 40 and len(set(copies)) == 1
    ranked = [r.index for r in reranker.rerank(QUERY, documents) if r.document == SAME]
    assert ranked == [index for index, document in enumerate(documents) if document == SAME]


def test_identical_documents_are_scored_once(reranker, monkeypatch):
    decoder = reranker.loaded_model.scorer.decoder
    real_last_hidden = decoder.last_hidden
    rows = []

    def count_rows(input_ids, lengths, prefix):
        rows.append(len(input_ids))
        return real_last_hidden(input_ids, lengths, prefix)

    monkeypatch.setattr(decoder, "last_hidden", count_rows)
    reranker.score(QUERY, [SAME, DOCUMENTS[0], SAME, SAME])
    assert sum(rows) == 2


def test_identical_documents_tie_across_prepared_requests(reranker):
    first = reranker.prepare(QUERY, [SAME, *DOCUMENTS])
    second = reranker.prepare(QUERY, [*DOCUMENTS[::-1], SAME])
    one, two = reranker.score_prepared([first, second])
    assert one[0] == two[-1]
    assert one[1:] == two[:-1][::-1]


def test_another_thread_gets_the_same_bits(reranker):
    expected = reranker.score(QUERY, DOCUMENTS)
    with ThreadPoolExecutor(max_workers=2) as pool:
        others = list(pool.map(lambda _: reranker.score(QUERY, DOCUMENTS), range(4)))
    assert all(scores == expected for scores in others)
    assert asyncio.run(asyncio.to_thread(reranker.score, QUERY, DOCUMENTS)) == expected


def test_every_model_call_runs_on_the_one_scoring_thread(reranker, tiny_qwen3_dir, monkeypatch):
    decoder = reranker.loaded_model.scorer.decoder
    real_last_hidden = decoder.last_hidden
    threads = set()

    def record_thread(*arguments):
        threads.add(threading.get_ident())
        return real_last_hidden(*arguments)

    monkeypatch.setattr(decoder, "last_hidden", record_thread)
    other_handle = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")
    assert other_handle.loaded_model is reranker.loaded_model
    reranker.score(QUERY, DOCUMENTS)
    other_handle.score(QUERY, DOCUMENTS[:2])
    worker = threading.Thread(target=reranker.score, args=(QUERY, DOCUMENTS[2:]))
    worker.start()
    worker.join()
    assert len(threads) == 1 and threading.get_ident() not in threads
    other_handle.close()


def test_an_error_on_the_scoring_thread_reaches_the_caller(reranker, monkeypatch):
    def fail(*arguments):
        raise RuntimeError("simulated failure in the forward pass")

    monkeypatch.setattr(reranker.loaded_model.scorer.decoder, "last_hidden", fail)
    with pytest.raises(RuntimeError, match="simulated failure"):
        reranker.score(QUERY, DOCUMENTS)


@pytest.mark.timeout(60)  # without the in-place rule this call waits for itself for ever
def test_a_call_from_the_scoring_thread_runs_in_place_instead_of_waiting_for_itself():
    scoring = ScoringThread()

    def outer():
        return scoring.run(threading.get_ident), threading.get_ident()

    inner, outer_thread = scoring.run(outer)
    assert inner == outer_thread != threading.get_ident()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_scores_on_a_scoring_thread_of_its_own(reranker):
    # The child inherits the executor but not its thread: without a new one it would wait forever.
    # A process boundary is what is tested, so this test forks.
    expected = reranker.score(QUERY, DOCUMENTS)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write_end, json.dumps(reranker.score(QUERY, DOCUMENTS)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        wait_until(
            lambda: os.waitpid(child, os.WNOHANG)[0] == child, "the forked child to score", timeout=120
        )
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(child, signal.SIGKILL)
            os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        assert json.loads(pipe.read()) == pytest.approx(expected, abs=1e-6)


def test_the_scoring_thread_ends_with_its_model(tiny_qwen3_dir, monkeypatch):
    reranker = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu")
    decoder = reranker.loaded_model.scorer.decoder
    real_last_hidden = decoder.last_hidden
    threads = []

    def record_thread(*arguments):
        threads.append(threading.current_thread())
        return real_last_hidden(*arguments)

    monkeypatch.setattr(decoder, "last_hidden", record_thread)
    reranker.score(QUERY, DOCUMENTS[:1])
    monkeypatch.undo()
    reranker.close()  # the last use: the registry frees the model, and its scoring thread with it
    del reranker
    wait_until(lambda: not threads[0].is_alive(), "the scoring thread to end", timeout=30)
