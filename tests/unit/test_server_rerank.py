"""``POST /v1/rerank`` with a tiny random Qwen3: the response format clients expect, scores equal
to the core's, request limits, and the micro-batcher under concurrent load."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from qwen3_rag.server import ServerSettings, create_app
from qwen3_rerank import PreparedRequest, Qwen3Reranker
from tests.polling import eventually as wait_until
from tests.server_client import LOCAL_URL, post_scope
from tests.server_client import LocalTestClient as TestClient

DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "Berlin is the capital of Germany.",
    "The Eiffel Tower stands in Paris.",
    "Bananas are rich in potassium.",
]


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    """Loaded once per module: the tokenizer alone takes seconds to load. The server never
    closes a reranker it was handed, so sharing it across tests is safe."""
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


def settings(**overrides: object) -> ServerSettings:
    return ServerSettings(rag="off", **overrides)


@pytest.fixture
def client(reranker: Qwen3Reranker) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings(max_documents=8, max_document_chars=200), reranker=reranker)
    ) as client:
        yield client


class Gate:
    """Wraps ``score_prepared`` so the first model call blocks until released: requests sent
    meanwhile pile up in the queue, which makes coalescing deterministic to observe."""

    def __init__(self, reranker: Qwen3Reranker) -> None:
        self._score_prepared = reranker.score_prepared
        self.calls = 0
        self.busy = threading.Event()
        self.open = threading.Event()

    def __call__(self, requests: list[PreparedRequest]) -> list[list[float]]:
        self.calls += 1
        self.busy.set()
        self.open.wait(timeout=30)
        return self._score_prepared(requests)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client with the app's lifespan (model, batcher) running."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


def test_results_are_the_cores_scores_best_first(client: TestClient, reranker: Qwen3Reranker) -> None:
    response = client.post("/v1/rerank", json={"query": "capital of France", "documents": DOCUMENTS})
    assert response.status_code == 200
    expected = reranker.rerank("capital of France", DOCUMENTS)
    results = response.json()["results"]
    assert [r["index"] for r in results] == [r.index for r in expected]
    assert [r["relevance_score"] for r in results] == pytest.approx([r.score for r in expected], abs=1e-6)
    assert all("document" not in r for r in results)


def test_response_carries_the_served_name_and_usage(client: TestClient, reranker: Qwen3Reranker) -> None:
    body = client.post("/v1/rerank", json={"query": "q", "documents": DOCUMENTS[:2]}).json()
    assert body["model"] == Path(reranker.model_id).name, "no local path: the last part"
    assert body["id"].startswith("rerank-")
    assert body["usage"] == {
        "documents": 2,
        "query_chars": 1,
        "document_chars": len(DOCUMENTS[0]) + len(DOCUMENTS[1]),
    }


def test_top_n_and_return_documents_like_cohere(client: TestClient) -> None:
    body = client.post(
        "/v1/rerank", json={"query": "capital", "documents": DOCUMENTS, "top_n": 2, "return_documents": True}
    ).json()
    assert len(body["results"]) == 2
    for result in body["results"]:
        assert result["document"] == {"text": DOCUMENTS[result["index"]]}


def test_documents_as_objects_like_jina_score_like_strings(client: TestClient) -> None:
    as_strings = client.post("/v1/rerank", json={"query": "capital", "documents": DOCUMENTS}).json()
    as_objects = client.post(
        "/v1/rerank", json={"query": "capital", "documents": [{"text": d} for d in DOCUMENTS]}
    ).json()
    assert as_objects["results"] == as_strings["results"]


def test_instruction_reaches_the_model(client: TestClient, reranker: Qwen3Reranker) -> None:
    instruction = "Judge whether the document names a European capital"
    body = client.post(
        "/v1/rerank", json={"query": "capital", "documents": DOCUMENTS, "instruction": instruction}
    ).json()
    by_index = {r["index"]: r["relevance_score"] for r in body["results"]}
    expected = reranker.score("capital", DOCUMENTS, instruction=instruction)
    assert [by_index[i] for i in range(len(DOCUMENTS))] == pytest.approx(expected, abs=1e-6)
    assert expected != pytest.approx(reranker.score("capital", DOCUMENTS), abs=1e-6)


@pytest.mark.parametrize("path", ["/v2/rerank", "/rerank"])
def test_the_paths_of_cohere_v2_and_vllm_serve_the_same_api(client: TestClient, path: str) -> None:
    body = {"query": "capital", "documents": DOCUMENTS, "top_n": 2}
    here = client.post(path, json=body).json()
    assert here["results"] == client.post("/v1/rerank", json=body).json()["results"]


def test_unknown_fields_from_other_clients_are_ignored(client: TestClient) -> None:
    response = client.post(
        "/v1/rerank", json={"query": "q", "documents": ["d"], "truncation": True, "rank_fields": ["text"]}
    )
    assert response.status_code == 200


def test_no_documents_gives_no_results(client: TestClient) -> None:
    body = client.post("/v1/rerank", json={"query": "q", "documents": []}).json()
    assert body["results"] == []


def test_the_served_model_may_be_named_but_not_changed(client: TestClient, reranker: Qwen3Reranker) -> None:
    for name in (reranker.model_id, Path(reranker.model_id).name):
        named = client.post("/v1/rerank", json={"query": "q", "documents": ["d"], "model": name})
        # The model's local path is accepted, and answered by its last part: no path is shown.
        assert named.status_code == 200 and named.json()["model"] == Path(reranker.model_id).name
    other = client.post(
        "/v1/rerank", json={"query": "q", "documents": ["d"], "model": "BAAI/bge-reranker-v2-m3"}
    )
    # 404, as Cohere's API and vLLM answer a model they do not serve (Cohere's SDK: NotFoundError).
    assert other.status_code == 404
    assert Path(reranker.model_id).name in other.json()["accepted_models"]
    assert reranker.model_id not in other.text, "the accepted names never list the model's path"
    assert "QWEN3_SERVER_SERVED_MODEL_NAMES" in other.json()["detail"]


def test_aliases_from_the_setting_are_served_and_the_first_is_the_name_answered(
    reranker: Qwen3Reranker,
) -> None:
    aliases = ("rerank-v3.5", "jina-reranker-v1-base-en")
    with TestClient(create_app(settings(served_model_names=aliases), reranker=reranker)) as client:
        cohere = client.post("/v1/rerank", json={"query": "q", "documents": ["d"], "model": "rerank-v3.5"})
        jina = client.post("/v1/rerank", json={"query": "q", "documents": ["d"], "model": aliases[1]})
        unnamed = client.post("/v1/rerank", json={"query": "q", "documents": ["d"]})
        unknown = client.post(
            "/v1/rerank", json={"query": "q", "documents": ["d"], "model": "rerank-english-v3.0"}
        )
    assert cohere.status_code == jina.status_code == unnamed.status_code == 200
    assert cohere.json()["model"] == "rerank-v3.5" and jina.json()["model"] == aliases[1]
    assert unnamed.json()["model"] == "rerank-v3.5"
    assert unknown.status_code == 404
    assert unknown.json()["accepted_models"][:2] == list(aliases)


def test_the_served_names_setting_reads_a_comma_separated_variable() -> None:
    names = ServerSettings.from_env({"QWEN3_SERVER_SERVED_MODEL_NAMES": "rerank-v3.5, rerank-english-v3.0"})
    assert names.served_model_names == ("rerank-v3.5", "rerank-english-v3.0")


def test_rank_fields_rank_the_named_fields_as_cohere_v1_does(
    client: TestClient, reranker: Qwen3Reranker
) -> None:
    documents = [
        {"title": "Capitals", "body": "Paris is the capital of France.", "id": 7},
        {"title": "Fruit", "body": "Bananas are rich in potassium."},
    ]
    response = client.post(
        "/v1/rerank",
        json={
            "query": "capital of France",
            "documents": documents,
            "rank_fields": ["title", "body"],
            "return_documents": True,
        },
    )
    assert response.status_code == 200, response.text
    joined = [f"title: {d['title']}\nbody: {d['body']}" for d in documents]
    expected = reranker.score("capital of France", joined)
    results = sorted(response.json()["results"], key=lambda result: result["index"])
    assert [r["relevance_score"] for r in results] == pytest.approx(expected, abs=1e-6)
    assert results[0]["document"] == documents[0], "the object comes back as sent"


def test_an_object_without_text_or_rank_fields_is_422_naming_it(client: TestClient) -> None:
    response = client.post("/v1/rerank", json={"query": "q", "documents": ["a", {"title": "t"}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "documents", 1]
    assert "rank_fields" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"query": "q", "documents": ["d"] * 9}, ["body", "documents"]),
        ({"query": "q", "documents": ["ok", "x" * 201]}, ["body", "documents", 1]),
        ({"query": "q" * 201, "documents": ["d"]}, ["body", "query"]),
        ({"query": "   ", "documents": ["d"]}, ["body", "query"]),
        ({"query": "q", "documents": ["d"], "top_n": 0}, ["body", "top_n"]),
        ({"documents": ["d"]}, ["body", "query"]),
        ({"query": "q", "documents": [3]}, ["body", "documents", 0, "str"]),
    ],
)
def test_invalid_requests_get_422_naming_the_field(client: TestClient, body: dict, location: list) -> None:
    response = client.post("/v1/rerank", json=body)
    assert response.status_code == 422
    assert location in [error["loc"] for error in response.json()["detail"]]


def test_an_oversized_body_gets_413(reranker: Qwen3Reranker) -> None:
    app = create_app(settings(max_request_bytes=2048), reranker=reranker)
    with TestClient(app) as client:
        response = client.post("/v1/rerank", json={"query": "q", "documents": ["x" * 100] * 30})
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]


def test_an_oversized_chunked_body_gets_413(reranker: Qwen3Reranker) -> None:
    payload = json.dumps({"query": "q", "documents": ["x" * 100] * 30}).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size is only known while reading
        for start in range(0, len(payload), 500):
            yield payload[start : start + 500]

    with TestClient(create_app(settings(max_request_bytes=2048), reranker=reranker)) as client:
        response = client.post("/v1/rerank", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


async def test_parallel_requests_are_coalesced_and_each_gets_its_own_scores(
    reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    queries = [f"question number {i} about capitals" for i in range(8)]
    requests = [{"query": q, "documents": DOCUMENTS[: 1 + i % 4]} for i, q in enumerate(queries)]
    alone = [reranker.score(r["query"], r["documents"]) for r in requests]
    gate = Gate(reranker)
    monkeypatch.setattr(reranker, "score_prepared", gate)
    app = create_app(settings(), reranker=reranker)
    async with running(app) as client:
        first = asyncio.create_task(client.post("/v1/rerank", json=requests[0]))
        await asyncio.to_thread(gate.busy.wait, 10)
        rest = [asyncio.create_task(client.post("/v1/rerank", json=r)) for r in requests[1:]]
        await wait_until(lambda: app.state.qwen3.batcher.pending == len(rest))
        gate.open.set()
        responses = await asyncio.gather(first, *rest)
        stats = app.state.qwen3.batcher.stats
    for response, expected in zip(responses, alone, strict=True):
        by_index = {r["index"]: r["relevance_score"] for r in response.json()["results"]}
        assert [by_index[i] for i in range(len(expected))] == pytest.approx(expected, abs=1e-5)
    assert gate.calls == 2  # one for the first request, one for the seven that waited
    assert stats.batches == 2
    assert stats.largest_batch_requests == len(rest)


async def test_a_full_queue_answers_429_with_retry_after(
    reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(reranker)
    monkeypatch.setattr(reranker, "score_prepared", gate)
    app = create_app(settings(queue_size=1, retry_after_seconds=3), reranker=reranker)
    body = {"query": "q", "documents": ["d"]}
    async with running(app) as client:
        busy = asyncio.create_task(client.post("/v1/rerank", json=body))
        await asyncio.to_thread(gate.busy.wait, 10)
        queued = asyncio.create_task(client.post("/v1/rerank", json=body))
        await wait_until(lambda: app.state.qwen3.batcher.pending == 1)
        refused = await client.post("/v1/rerank", json=body)
        gate.open.set()
        assert [r.status_code for r in await asyncio.gather(busy, queued)] == [200, 200]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "3"


async def test_a_client_that_disconnects_cancels_its_pending_work(
    reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(reranker)
    monkeypatch.setattr(reranker, "score_prepared", gate)
    app = create_app(settings(), reranker=reranker)
    async with running(app) as client:
        busy = asyncio.create_task(client.post("/v1/rerank", json={"query": "q", "documents": ["d"]}))
        await asyncio.to_thread(gate.busy.wait, 10)
        left = asyncio.Event()
        sent: list[dict] = []
        body = json.dumps({"query": "q", "documents": ["abandoned"]}).encode()
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await left.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = post_scope("/v1/rerank", body)
        call = asyncio.create_task(app(scope, receive, send))
        batcher = app.state.qwen3.batcher
        await wait_until(lambda: batcher.pending == 1)
        left.set()
        await wait_until(lambda: batcher.stats.cancelled == 1)
        gate.open.set()
        await busy
        await call
    assert gate.calls == 1  # only the busy request ever reached the model
    assert sent[0]["status"] == 499


def test_openapi_documents_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/rerank", "/v1/ask", "/v1/documents", "/healthz", "/readyz"} <= set(paths)
    assert "429" in paths["/v1/rerank"]["post"]["responses"]


async def test_a_lone_surrogate_gets_422_and_the_requests_beside_it_their_scores(
    reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    innocent = [{"query": f"innocent question {i}", "documents": DOCUMENTS[i % 4 :]} for i in range(5)]
    alone = [reranker.score(r["query"], r["documents"]) for r in innocent]
    poisoned = b'{"query": "q", "documents": ["a\\ud800b"]}'
    gate = Gate(reranker)
    monkeypatch.setattr(reranker, "score_prepared", gate)
    app = create_app(settings(), reranker=reranker)
    async with running(app) as client:
        busy = asyncio.create_task(client.post("/v1/rerank", json={"query": "q", "documents": ["d"]}))
        await asyncio.to_thread(gate.busy.wait, 10)
        bad = asyncio.create_task(
            client.post("/v1/rerank", content=poisoned, headers={"content-type": "application/json"})
        )
        good = [asyncio.create_task(client.post("/v1/rerank", json=r)) for r in innocent]
        await wait_until(lambda: app.state.qwen3.batcher.pending == len(innocent))
        gate.open.set()
        responses = await asyncio.gather(busy, bad, *good)
    refused = responses[1]
    assert refused.status_code == 422
    error = refused.json()["detail"][0]
    assert error["loc"] == ["body", "documents", 0], error  # named by the core, before the batch
    for response, expected in zip(responses[2:], alone, strict=True):
        assert response.status_code == 200
        by_index = {r["index"]: r["relevance_score"] for r in response.json()["results"]}
        assert [by_index[i] for i in range(len(expected))] == pytest.approx(expected, abs=1e-5)


async def test_a_failing_model_call_fails_only_the_request_that_causes_it(
    reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(reranker)
    poison = reranker.prepare("poison", ["d"]).inputs[0]

    def fails_on_poison(requests: list[PreparedRequest]) -> list[list[float]]:
        if any(poison in request.inputs for request in requests):
            raise RuntimeError("device-side assert")
        return gate(requests)

    monkeypatch.setattr(reranker, "score_prepared", fails_on_poison)
    app = create_app(settings(), reranker=reranker)
    bodies = [{"query": f"q{i}", "documents": ["d"]} for i in range(4)]
    bodies.insert(2, {"query": "poison", "documents": ["d"]})
    async with running_with_errors(app) as client:
        busy = asyncio.create_task(client.post("/v1/rerank", json={"query": "q", "documents": ["d"]}))
        await asyncio.to_thread(gate.busy.wait, 10)
        tasks = [asyncio.create_task(client.post("/v1/rerank", json=b)) for b in bodies]
        await wait_until(lambda: app.state.qwen3.batcher.pending == len(bodies))
        gate.open.set()
        responses = await asyncio.gather(busy, *tasks)
    assert [r.status_code for r in responses[1:]] == [200, 200, 500, 200, 200]


@asynccontextmanager
async def running_with_errors(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Like `running`, but a server error becomes a 500 response instead of an exception."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL_URL) as client:
            yield client


async def test_many_queued_big_requests_get_429_by_tokens(
    reranker: Qwen3Reranker, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = Gate(reranker)
    monkeypatch.setattr(reranker, "score_prepared", gate)
    app = create_app(settings(queue_size=64, max_queued_tokens=40_000, max_documents=1000), reranker=reranker)
    big = {"query": "q", "documents": [f"document {i} about capitals and rivers" for i in range(200)]}
    async with running(app) as client:
        busy = asyncio.create_task(client.post("/v1/rerank", json={"query": "q", "documents": ["d"]}))
        await asyncio.to_thread(gate.busy.wait, 10)
        tasks = [asyncio.create_task(client.post("/v1/rerank", json=big)) for _ in range(64)]
        await wait_until(
            lambda: sum(t.done() for t in tasks) + app.state.qwen3.batcher.pending == 64, timeout=120
        )
        queued_tokens = app.state.qwen3.batcher.queued_tokens
        gate.open.set()
        responses = await asyncio.gather(busy, *tasks)
    codes = [r.status_code for r in responses[1:]]
    assert 0 < codes.count(200) < 64 and codes.count(200) + codes.count(429) == 64
    assert queued_tokens <= 40_000
    assert all(r.headers["Retry-After"] == "1" for r in responses[1:] if r.status_code == 429)


def test_max_tokens_per_doc_truncates_like_cohere_and_the_server_caps_it(reranker: Qwen3Reranker) -> None:
    long = "Paris is the capital of France. " * 40
    cut_to = {n: reranker._encoder.truncate_text(long, n) for n in (6, 12)}
    app = create_app(settings(max_tokens_per_doc=12), reranker=reranker)
    with TestClient(app) as client:
        asked = client.post("/v1/rerank", json={"query": "q", "documents": [long], "max_tokens_per_doc": 6})
        capped = client.post(
            "/v1/rerank", json={"query": "q", "documents": [long], "max_tokens_per_doc": 500}
        )
    assert asked.json()["results"][0]["relevance_score"] == pytest.approx(
        reranker.score("q", [cut_to[6]])[0], abs=1e-5
    )
    assert capped.json()["results"][0]["relevance_score"] == pytest.approx(
        reranker.score("q", [cut_to[12]])[0], abs=1e-5
    )


@pytest.mark.parametrize("truncate", [None, True, False])
def test_tei_rerank_of_no_texts_is_an_empty_ranking_whatever_truncate_says(
    client: TestClient, truncate: bool | None
) -> None:
    # Found by the fuzzer: `truncate: false` with no texts was a 500.
    body = {"query": "q", "texts": []} | ({} if truncate is None else {"truncate": truncate})
    response = client.post("/rerank", json=body)
    assert response.status_code == 200 and response.json() == []
