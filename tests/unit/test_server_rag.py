"""``/v1/ask``, ``/v1/documents``, ``/healthz``, ``/readyz`` and first-start indexing, over the real
pipeline on the embedded store (all-MiniLM-L6-v2 embedder, tiny random Qwen3 reranker, no LLM)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.service import RagService
from qwen3_rag.stores.base import StoreError
from qwen3_rag.testing import SAMPLES_DIR, minilm_model_dir, offline_settings
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


def wait_for_corpus(client: TestClient, *done: str) -> dict:
    def finished() -> dict | None:
        body = client.get("/readyz").json()
        return body if body["corpus"] in done or body["corpus"].startswith("failed") else None

    return wait_until(finished, "the sample corpus to be indexed", timeout=300, interval=0.05)


class UnreachableStore:
    """A pipeline whose document store is down, as when Elasticsearch stops."""

    def _down(self, *args: object, **kwargs: object) -> None:
        raise StoreError("cannot reach Elasticsearch at http://elasticsearch:9200")

    index_documents = index_paths = ask = document_count = ping = _down

    def close(self) -> None:
        pass


def test_documents_then_ask_answers_with_numbered_sources(reranker: Qwen3Reranker, tmp_path: Path) -> None:
    settings = ServerSettings(rag="on", allow_writes=True)
    app = create_app(settings, reranker=reranker, rag_factory=embedded_pipeline(tmp_path))
    with TestClient(app) as client:
        indexed = client.post(
            "/v1/documents",
            json={
                "documents": [
                    {"text": WATER, "source": "water.txt"},
                    {
                        "text": "The Nile is a long river in Africa.",
                        "source": "rivers.txt",
                        "meta": {"lang": "en"},
                    },
                ]
            },
        )
        answer = client.post("/v1/ask", json={"question": "At what temperature does water boil?", "top_n": 2})
    assert indexed.status_code == 200
    assert indexed.json()["indexed"]["files"] == 2
    assert indexed.json()["document_count"] >= 2
    assert answer.status_code == 200
    body = answer.json()
    assert [p["rank"] for p in body["passages"]] == [1, 2]
    assert {p["source"] for p in body["passages"]} == {"water.txt", "rivers.txt"}
    assert "[1]" in body["answer"]
    assert {"rerank", "generate"} <= set(body["timings"])


def test_the_pipeline_reranks_with_the_served_model(
    tiny_qwen3_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QWEN3_RAG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QWEN3_RAG_EMBEDDING_MODEL", str(minilm_model_dir()))
    monkeypatch.setenv("QWEN3_RAG_BACKEND", "memory")
    # Built here, not by the module's fixture: the registry is emptied between tests.
    served = Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", max_length=1024)
    with TestClient(create_app(ServerSettings(rag="on", device="cpu"), reranker=served)) as client:
        rag = client.app.state.qwen3.rag
        assert rag.reranker.loaded_model is served.loaded_model  # one copy serves both endpoints
        assert rag.reranker.config == served.config
        assert rag.settings.reranker_config() == served.config
        assert client.get("/readyz").json()["rag"] == "ok"
    served.close()


def test_first_start_indexes_the_sample_corpus_and_a_restart_does_not(
    reranker: Qwen3Reranker, tmp_path: Path
) -> None:
    settings = ServerSettings(rag="on", sample_corpus=SAMPLES_DIR)
    with TestClient(
        create_app(settings, reranker=reranker, rag_factory=embedded_pipeline(tmp_path))
    ) as client:
        first = wait_for_corpus(client, "indexed")
        count = client.app.state.qwen3.rag.document_count()
    with TestClient(
        create_app(settings, reranker=reranker, rag_factory=embedded_pipeline(tmp_path))
    ) as client:
        second = wait_for_corpus(client, "already indexed")
        assert client.app.state.qwen3.rag.document_count() == count
    assert first["corpus"] == "indexed" and count > 0
    assert second["corpus"] == "already indexed"


def test_ask_without_a_pipeline_is_503_saying_why(reranker: Qwen3Reranker) -> None:
    with TestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        response = client.post("/v1/ask", json={"question": "anything?"})
        ready = client.get("/readyz")
    assert response.status_code == 503
    assert "QWEN3_SERVER_RAG=off" in response.json()["detail"]
    assert ready.status_code == 200 and ready.json()["rag"] == "off"


def test_auto_mode_serves_reranking_when_the_pipeline_cannot_start(reranker: Qwen3Reranker) -> None:
    def broken(settings: ServerSettings, reranker: Qwen3Reranker) -> RagService:
        raise StoreError("no index at http://nowhere:9200")

    with TestClient(create_app(ServerSettings(rag="auto"), reranker=reranker, rag_factory=broken)) as client:
        assert client.post("/v1/rerank", json={"query": "q", "documents": ["d"]}).status_code == 200
        ask = client.post("/v1/ask", json={"question": "anything?"})
        ready = client.get("/readyz").json()
    assert ask.status_code == 503 and "nowhere:9200" in ask.json()["detail"]
    assert ready["status"] == "ready" and "nowhere:9200" in ready["rag"]


def test_on_mode_refuses_to_start_without_the_pipeline(reranker: Qwen3Reranker) -> None:
    def broken(settings: ServerSettings, reranker: Qwen3Reranker) -> RagService:
        raise StoreError("no index at http://nowhere:9200")

    with (
        pytest.raises(StoreError, match="nowhere"),
        TestClient(create_app(ServerSettings(rag="on"), reranker=reranker, rag_factory=broken)),
    ):
        pass


def test_an_unreachable_store_makes_ask_503_and_the_server_not_ready(reranker: Qwen3Reranker) -> None:
    settings = ServerSettings(rag="on", allow_writes=True)
    app = create_app(settings, reranker=reranker, rag_factory=lambda s, r: UnreachableStore())
    with TestClient(app) as client:
        ask = client.post("/v1/ask", json={"question": "anything?"})
        documents = client.post("/v1/documents", json={"documents": [{"text": "t", "source": "s"}]})
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    assert ask.status_code == documents.status_code == 503
    assert "elasticsearch:9200" in ask.json()["detail"]
    assert ready.status_code == 503 and "elasticsearch:9200" in ready.json()["rag"]
    assert alive.status_code == 200, "liveness never depends on the store"


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"question": "  "}, ["body", "question"]),
        ({"question": "q", "top_n": 0}, ["body", "top_n"]),
        ({}, ["body", "question"]),
    ],
)
def test_invalid_questions_get_422(
    reranker: Qwen3Reranker, tmp_path: Path, body: dict, location: list
) -> None:
    app = create_app(ServerSettings(rag="on"), reranker=reranker, rag_factory=embedded_pipeline(tmp_path))
    with TestClient(app) as client:
        response = client.post("/v1/ask", json=body)
    assert response.status_code == 422
    assert location in [error["loc"] for error in response.json()["detail"]]


def test_empty_document_list_is_422(reranker: Qwen3Reranker, tmp_path: Path) -> None:
    settings = ServerSettings(rag="on", allow_writes=True)
    app = create_app(settings, reranker=reranker, rag_factory=embedded_pipeline(tmp_path))
    with TestClient(app) as client:
        response = client.post("/v1/documents", json={"documents": []})
    assert response.status_code == 422


def test_readyz_reports_model_and_batcher(reranker: Qwen3Reranker) -> None:
    with TestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        client.post("/v1/rerank", json={"query": "q", "documents": ["a", "b"]})
        body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["model"] == Path(reranker.model_id).name and body["device"] == "cpu"
    assert body["batcher"] == "running"
    assert body["batches"]["documents"] == 2


def test_the_page_is_served_with_both_forms(reranker: Qwen3Reranker) -> None:
    with TestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        page = client.get("/")
        script = client.get("/static/app.js")
    assert page.status_code == 200 and 'id="rerank-form"' in page.text and 'id="ask-form"' in page.text
    assert script.status_code == 200 and "/v1/rerank" in script.text


def test_ask_and_rerank_from_eight_threads_share_one_queue_and_get_serial_scores(
    reranker: Qwen3Reranker, tmp_path: Path
) -> None:
    questions = ["At what temperature does water boil?", "Where is the Nile?"] * 2
    rerank_bodies = [
        {"query": q, "documents": [WATER, "The Nile is a long river in Africa."]} for q in questions
    ]
    app = create_app(
        ServerSettings(rag="on", allow_writes=True),
        reranker=reranker,
        rag_factory=embedded_pipeline(tmp_path),
    )
    with TestClient(app) as client:
        documents = [
            {"text": WATER, "source": "water.txt"},
            {"text": "The Nile is in Africa.", "source": "nile.txt"},
        ]
        assert client.post("/v1/documents", json={"documents": documents}).status_code == 200
        calls = [("/v1/ask", {"question": q, "top_n": 2}) for q in questions]
        calls += [("/v1/rerank", body) for body in rerank_bodies]
        with ThreadPoolExecutor(max_workers=8) as pool:
            responses = list(pool.map(lambda call: client.post(call[0], json=call[1]), calls))
        requests = client.app.state.qwen3.batcher.stats.requests
    assert [r.status_code for r in responses] == [200] * 8
    assert requests == 8, "every model call, /v1/ask's included, went through the one batcher"
    for question, response in zip(questions, responses[:4], strict=True):
        passages = response.json()["passages"]
        serial = reranker.score(question, [p["text"] for p in passages])
        assert [p["score"] for p in passages] == pytest.approx(serial, abs=1e-5)
        assert serial == sorted(serial, reverse=True)
    for body, response in zip(rerank_bodies, responses[4:], strict=True):
        by_index = {r["index"]: r["relevance_score"] for r in response.json()["results"]}
        serial = reranker.score(body["query"], body["documents"])
        assert [by_index[i] for i in range(2)] == pytest.approx(serial, abs=1e-5)
