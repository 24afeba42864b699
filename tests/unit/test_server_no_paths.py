"""No response of the server shows a path of its machine: a full API session over the real
embedded pipeline (the sample corpus indexed at start-up, a model loaded from a folder), every
response's body and headers searched for the data, model and corpus folders."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.service import RagService
from qwen3_rag.testing import SAMPLES_DIR, minilm_model_dir, offline_settings
from qwen3_rerank import Qwen3Reranker
from tests.server_client import LocalTestClient

KEY = "no-paths-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
QUESTION = "At what temperature does water boil?"


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    corpus = tmp_path_factory.mktemp("corpus-parent") / "samples"
    shutil.copytree(SAMPLES_DIR, corpus)
    return {"data": tmp_path_factory.mktemp("no-paths-store"), "corpus": corpus}


@pytest.fixture(scope="module")
def client(tiny_qwen3_dir: Path, folders: dict[str, Path]) -> Iterator[LocalTestClient]:
    def pipeline(settings: ServerSettings, reranker: Qwen3Reranker) -> RagService:
        return RagService(
            offline_settings(folders["data"], reranker_model=reranker.model_id), reranker=reranker
        )

    server = ServerSettings(rag="on", allow_writes=True, api_keys=(KEY,), sample_corpus=folders["corpus"])
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu", max_length=256) as reranker:
        app = create_app(server, reranker=reranker, rag_factory=pipeline)
        with LocalTestClient(app, raise_server_exceptions=False) as client:
            yield client


def wait_until_indexed(client: LocalTestClient) -> None:
    deadline = time.monotonic() + 300
    while client.get("/readyz").json().get("corpus") not in ("indexed", "already indexed"):
        assert time.monotonic() < deadline, client.get("/readyz").json()
        time.sleep(0.1)


def session(client: LocalTestClient, model_dir: str) -> list[httpx.Response]:
    """What a user of the API and the page may ask, refusals included."""
    wait_until_indexed(client)
    documents = ["Water boils at 100 degrees Celsius.", "Tea is brewed from leaves."]
    rerank = {"query": QUESTION, "documents": documents}
    return [
        client.get("/"),
        client.get("/static/app.js"),
        client.get("/healthz"),
        client.get("/readyz"),
        client.get("/metrics"),
        client.get("/openapi.json"),
        client.get("/docs"),
        client.post("/v1/rerank", json=rerank, headers=AUTH),
        client.post("/v1/rerank", json={**rerank, "model": model_dir}, headers=AUTH),
        client.post("/v1/rerank", json={**rerank, "model": "rerank-v3.5"}, headers=AUTH),
        client.post(
            "/v1/rerank",
            content=b'{"query": "q", "documents": ["\\ud800"]}',
            headers={**AUTH, "Content-Type": "application/json"},
        ),
        client.post(
            "/rerank", json={"query": QUESTION, "texts": documents, "return_text": True}, headers=AUTH
        ),
        client.post("/rerank", json={"query": QUESTION, "texts": "x"}, headers=AUTH),
        client.post("/v1/score", json={"text_1": QUESTION, "text_2": documents}, headers=AUTH),
        client.post(
            "/v1/score", json={"text_1": QUESTION, "text_2": documents, "model": "bge"}, headers=AUTH
        ),
        client.post("/v1/ask", json={"question": QUESTION}, headers=AUTH),
        client.post("/v1/ask", json={"question": " "}, headers=AUTH),
        client.post(
            "/v1/documents", json={"documents": [{"text": documents[1], "source": "tea.txt"}]}, headers=AUTH
        ),
        client.post("/v1/documents", json={"documents": []}, headers=AUTH),
        client.post("/v1/ask", json={"question": QUESTION}),
        client.get("/v1/nowhere", headers=AUTH),
        client.get("/v1/ask", headers=AUTH),
    ]


def test_no_response_shows_a_path_of_the_server(
    client: LocalTestClient, folders: dict[str, Path], tiny_qwen3_dir: Path
) -> None:
    model_dir = str(tiny_qwen3_dir.resolve())
    responses = session(client, model_dir)
    secrets = {
        "data directory": str(folders["data"].resolve()),
        "model directory": model_dir,
        "corpus folder": str(folders["corpus"].resolve()),
        "embedding model": str(minilm_model_dir().resolve()),
        "package": str(SAMPLES_DIR.resolve().parent),
    }
    statuses = {response.status_code for response in responses}
    assert {200, 401, 404, 405, 422} <= statuses, statuses
    for response in responses:
        shown = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        for what, path in secrets.items():
            assert path not in shown, (
                f"{response.request.method} {response.request.url.path} shows the {what}"
            )


def test_sources_are_named_as_the_folder_was_given(client: LocalTestClient) -> None:
    wait_until_indexed(client)
    answer = client.post("/v1/ask", json={"question": QUESTION}, headers=AUTH).json()
    sources = [passage["source"] for passage in answer["passages"]]
    named = {f"samples/{path.name}" for path in SAMPLES_DIR.iterdir()} | {
        "tea.txt"
    }  # the other test's /v1/documents
    assert sources and set(sources) <= named, sources
    unknown = client.post("/v1/rerank", json={"query": "q", "documents": ["d"], "model": "x"}, headers=AUTH)
    assert unknown.status_code == 404 and unknown.json()["accepted_models"], "the public names are listed"
