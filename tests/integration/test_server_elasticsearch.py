"""The server on Elasticsearch, as docker compose runs it: first start indexes the sample corpus,
a restart finds it indexed, and /v1/ask answers from it with the served reranker."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.service import RagService
from qwen3_rag.testing import SAMPLES_DIR, offline_settings
from qwen3_rerank import Qwen3Reranker
from tests.polling import wait_until
from tests.server_client import LocalTestClient as TestClient

pytestmark = pytest.mark.integration


def wait_for_corpus(client: TestClient) -> str:
    def settled() -> str | None:
        corpus = client.get("/readyz").json()["corpus"]
        return None if corpus in ("indexing", "not configured") else corpus

    return wait_until(settled, "the corpus to be indexed", timeout=300, interval=0.05)


def test_first_start_indexes_into_elasticsearch_and_ask_answers(
    tmp_path: Path, tiny_qwen3_dir: Path, es_url: str, index_name: str
) -> None:
    def pipeline(settings: ServerSettings, reranker: Qwen3Reranker) -> RagService:
        return RagService(
            offline_settings(
                tmp_path,
                backend="elasticsearch",
                es_url=es_url,
                index_name=index_name,
                reranker_model=reranker.model_id,
            ),
            reranker=reranker,
        )

    settings = ServerSettings(rag="on", sample_corpus=SAMPLES_DIR)
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        with TestClient(create_app(settings, reranker=reranker, rag_factory=pipeline)) as client:
            assert wait_for_corpus(client) == "indexed"
            assert client.get("/readyz").json()["rag"] == "ok"
            answer = client.post(
                "/v1/ask", json={"question": "At what temperature does water boil?", "top_n": 3}
            )
        with TestClient(create_app(settings, reranker=reranker, rag_factory=pipeline)) as client:
            assert wait_for_corpus(client) == "already indexed"
    assert answer.status_code == 200
    assert [p["rank"] for p in answer.json()["passages"]] == [1, 2, 3]
    # Named as the folder was given (its name, then the file), never where the server keeps it.
    assert all(p["source"].startswith(f"{SAMPLES_DIR.name}/") for p in answer.json()["passages"])
    assert str(SAMPLES_DIR.resolve()) not in answer.text
