"""The server over an index that cannot be read whole: a FIFO in the sample corpus, a store
generation that lacks files, the same passage sent twice (real pipeline on the embedded store,
all-MiniLM-L6-v2 embedder, tiny random Qwen3 reranker, no LLM)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen3_rag.records import SourceText
from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.service import RagService
from qwen3_rag.testing import offline_settings
from qwen3_rerank import Qwen3Reranker
from tests.polling import wait_until
from tests.server_client import LocalTestClient as TestClient

WATER = "Water boils at 100 degrees Celsius at sea level; on a mountain it boils at a lower temperature."


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


def embedded_pipeline(store: Path):
    """A factory for the server: the pipeline on an embedded store, reranking with the served model."""

    def build(settings: ServerSettings, reranker: Qwen3Reranker) -> RagService:
        return RagService(offline_settings(store, reranker_model=reranker.model_id), reranker=reranker)

    return build


def corpus_state(client: TestClient) -> str:
    """The sample corpus's state on ``/readyz`` once it left "indexing"."""

    def settled() -> str | None:
        state = client.get("/readyz").json()["corpus"]
        return None if state == "indexing" else state

    return wait_until(settled, "the corpus to leave 'indexing'", interval=0.05)


def release_readers(fifo: Path) -> None:
    """End any read blocked on ``fifo`` (it sees end of file once a writer opened and closed it)."""
    with contextlib.suppress(OSError):  # ENXIO: nobody has it open for reading
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.mark.timeout(180)
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_in_the_sample_corpus_does_not_keep_the_server_indexing(
    reranker: Qwen3Reranker, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "water.txt").write_text(WATER, encoding="utf-8")
    os.mkfifo(corpus / "pipe.md")  # opened for reading, it waits for a writer forever
    settings = ServerSettings(rag="on", sample_corpus=corpus)
    app = create_app(settings, reranker=reranker, rag_factory=embedded_pipeline(tmp_path / "store"))
    with TestClient(app) as client:
        try:
            state = corpus_state(client)
            ready = client.get("/readyz")
            count = client.app.state.qwen3.rag.document_count()
        finally:
            release_readers(corpus / "pipe.md")  # a reader stuck on it would keep the process alive
    assert state == "indexed"
    assert ready.status_code == 200 and count == 1


def test_a_generation_without_its_vectors_makes_readiness_say_why_and_ask_503(
    reranker: Qwen3Reranker, tmp_path: Path
) -> None:
    with RagService(offline_settings(tmp_path, reranker_model=reranker.model_id), reranker=reranker) as rag:
        rag.index_documents([SourceText(WATER, "water.txt")])
    index = tmp_path / "qwen3-rag"
    (index / (index / "CURRENT").read_text(encoding="utf-8").strip() / "vectors.npy").unlink()
    app = create_app(ServerSettings(rag="on"), reranker=reranker, rag_factory=embedded_pipeline(tmp_path))
    with TestClient(app) as client:
        ready = client.get("/readyz")
        ask = client.post("/v1/ask", json={"question": "When does water boil?"})
    assert ready.status_code == 503
    assert ready.json()["rag"].startswith("index unavailable: ")
    assert "lacks vectors.npy" in ready.json()["rag"]
    assert str(tmp_path) not in ready.text, "readiness is open without a key: no local paths"
    assert ask.status_code == 503, ask.text
    assert "lacks vectors.npy" in ask.json()["detail"]


def test_the_same_passage_sent_twice_is_counted_as_stored_once(
    reranker: Qwen3Reranker, tmp_path: Path
) -> None:
    settings = ServerSettings(rag="on", allow_writes=True)
    app = create_app(settings, reranker=reranker, rag_factory=embedded_pipeline(tmp_path))
    passage = {"text": WATER, "source": "water.txt"}
    with TestClient(app) as client:
        response = client.post("/v1/documents", json={"documents": [passage, passage]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["indexed"]["files"] == 2
    assert body["indexed"]["chunks"] == body["document_count"] == 1
