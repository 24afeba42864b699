"""Requests validated and tokenized alone, scored together, from any number of threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qwen3_rerank import InvalidInput, Qwen3Reranker

QUERIES = ["What is the capital of France?", "Which fruit is a berry?", "How do rockets fly?"]
DOCUMENTS = [
    "Paris is the capital and most populous city of France.",
    "Bananas are botanically berries, while strawberries are not.",
    "Rockets push exhaust backwards and so move forwards. " * 4,
    "x",
]


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path):
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


def test_requests_scored_together_get_the_scores_they_get_alone(reranker: Qwen3Reranker) -> None:
    prepared = [reranker.prepare(query, DOCUMENTS[: 2 + i]) for i, query in enumerate(QUERIES)]
    together = reranker.score_prepared(prepared)
    for query, scores, request in zip(QUERIES, together, prepared, strict=True):
        assert scores == pytest.approx(reranker.score(query, DOCUMENTS[: request.documents]), abs=1e-5)


def test_a_lone_surrogate_is_an_error_naming_the_document(reranker: Qwen3Reranker) -> None:
    with pytest.raises(InvalidInput, match=r"documents\[1\] is not valid Unicode") as caught:
        reranker.prepare("q", ["fine", "a\ud800b"])
    assert caught.value.location == ("documents", 1)


@pytest.mark.parametrize(
    ("query", "instruction", "location"), [("q\udfff", None, ("query",)), ("q", "\ud800", ("instruction",))]
)
def test_a_lone_surrogate_in_query_or_instruction_names_it(
    reranker: Qwen3Reranker, query: str, instruction: str | None, location: tuple
) -> None:
    with pytest.raises(InvalidInput) as caught:
        reranker.prepare(query, ["d"], instruction)
    assert caught.value.location == location


def test_max_tokens_per_doc_truncates_each_document(reranker: Qwen3Reranker) -> None:
    long = "Paris is the capital of France. " * 50
    prepared = reranker.prepare(QUERIES[0], [long, "short"], max_tokens_per_doc=8)
    cut = reranker._encoder.truncate_text(long, 8)
    assert len(reranker._encoder.text_ids(cut)) == 8 and long.startswith(cut)
    assert reranker.score_prepared([prepared])[0] == pytest.approx(
        reranker.score(QUERIES[0], [cut, "short"]), abs=1e-5
    )
    assert prepared.tokens < reranker.prepare(QUERIES[0], [long, "short"]).tokens


def test_windows_are_prepared_like_score_windows_them(tiny_qwen3_dir: Path) -> None:
    windowed = Qwen3Reranker(
        str(tiny_qwen3_dir), device="cpu", max_length=128, long_documents="window", window_overlap=4
    )
    documents = ["The Eiffel Tower is in Paris. " * 20, "short"]
    prepared = windowed.prepare(QUERIES[0], documents)
    assert len(prepared.inputs) > len(documents)
    assert windowed.score_prepared([prepared])[0] == pytest.approx(
        windowed.score(QUERIES[0], documents), abs=1e-5
    )


def test_eight_threads_sharing_one_reranker_get_the_serial_scores(reranker: Qwen3Reranker) -> None:
    work = [(QUERIES[i % 3], DOCUMENTS[i % 4 :] + DOCUMENTS[: i % 4]) for i in range(16)]
    serial = [reranker.score(query, documents) for query, documents in work]

    def call(index: int) -> list[float]:
        query, documents = work[index]
        if index % 2:  # both entry points at once: they share the prefix cache and the lock
            return reranker.score_prepared([reranker.prepare(query, documents)])[0]
        return reranker.score(query, documents)

    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(call, range(len(work))))
    for got, expected in zip(concurrent, serial, strict=True):
        assert got == pytest.approx(expected, abs=1e-5)
