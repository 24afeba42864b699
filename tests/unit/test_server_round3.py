"""The third hardening round (issue 26), as a careless operator and a hostile client would try it:
a write while another process writes the store, request smuggling shapes on a raw socket,
crafted field names against redaction, lone surrogates in echoed fields, secrets as request ids."""

from __future__ import annotations

import http.client
import json
import logging
import socket
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from qwen3_rag.records import Chunk
from qwen3_rag.server import ServerSettings, create_app
from qwen3_rag.stores.memory import MemoryStore
from qwen3_rerank import Qwen3Reranker
from tests.server_client import LocalTestClient
from tests.server_fakes import FakePipeline
from tests.unit.test_server_hardening import uvicorn_server

DOCUMENTS = {"documents": [{"text": "Water boils at 100 °C.", "source": "water.md"}]}


@pytest.fixture(scope="module")
def reranker(tiny_qwen3_dir: Path) -> Iterator[Qwen3Reranker]:
    with Qwen3Reranker(str(tiny_qwen3_dir), device="cpu") as reranker:
        yield reranker


def rag_app(reranker: Qwen3Reranker, pipeline: FakePipeline, **settings: Any) -> Any:
    return create_app(
        ServerSettings(rag="on", **settings), reranker=reranker, rag_factory=lambda *_: pipeline
    )


# --- 1. a write while another process writes the embedded store ------------------------------------


class StorePipeline(FakePipeline):
    """Writes each posted document into a real embedded store (a vector per chunk, no model)."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__()
        self.store = store

    def index_documents(self, documents: Iterable[Any]) -> dict[str, int]:
        chunks = [Chunk.create(document.text, document.source, 0) for document in documents]
        self.store.write(chunks, [[1.0, 0.0, 0.0]] * len(chunks))
        return {"files": len(chunks), "chunks": len(chunks)}

    def document_count(self) -> int:
        return self.store.count()


def test_a_write_while_another_process_writes_the_store_gets_503_with_retry_after(
    reranker: Qwen3Reranker, tmp_path: Path
) -> None:
    other_process = MemoryStore(tmp_path, "shared")  # its own lock file handle, as a CLI has
    pipeline = StorePipeline(MemoryStore(tmp_path, "shared", write_lock_timeout_s=0))
    app = rag_app(reranker, pipeline, allow_writes=True, retry_after_seconds=3)
    with LocalTestClient(app) as client:
        with other_process.bulk():  # `qwen3-rerank index` running
            busy = client.post("/v1/documents", json=DOCUMENTS)
        after = client.post("/v1/documents", json=DOCUMENTS)
    assert busy.status_code == 503, busy.text
    assert busy.headers["retry-after"] == "3"
    assert "being written by pid" in busy.json()["detail"]
    assert after.status_code == 200 and after.json()["document_count"] == 1


# --- 3. strict framing, on a raw socket under uvicorn as `serve` configures it ---------------------


def exchange(port: int, request: bytes) -> tuple[bytes, bool]:
    """Everything the server sends back for ``request``, and whether it then closed the connection."""
    client = socket.create_connection(("127.0.0.1", port), timeout=3)
    received = b""
    try:
        client.sendall(request)
        while chunk := client.recv(65536):
            received += chunk
        return received, True
    except TimeoutError:  # still open after its answers
        return received, False
    finally:
        client.close()


CHUNKED_RERANK = b'{"query": "q", "documents": ["a"]}'
SMUGGLING = {
    "both headers": (
        b"POST /v1/rerank HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"
        % (len(CHUNKED_RERANK), len(CHUNKED_RERANK), CHUNKED_RERANK)
    ),
    "a request inside the chunked body": (
        b"POST /v1/rerank HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n"
    ),
}


@pytest.mark.parametrize("shape", sorted(SMUGGLING))
def test_a_request_framed_two_ways_gets_400_and_its_connection_closed(
    reranker: Qwen3Reranker, shape: str
) -> None:
    with uvicorn_server(reranker, ServerSettings(rag="off")) as (port, _):
        received, closed = exchange(port, SMUGGLING[shape])
    assert received.startswith(b"HTTP/1.1 400"), received
    assert received.count(b"HTTP/1.1 ") == 1, "no second, smuggled, response"
    assert closed, "the connection is closed after the 400"
    assert b"Transfer-Encoding" in received


def test_an_absolute_form_target_for_our_host_is_served_and_another_host_refused(
    reranker: Qwen3Reranker,
) -> None:
    with uvicorn_server(reranker, ServerSettings(rag="off")) as (port, _):
        ours, _ = exchange(port, b"GET http://localhost:%d/healthz HTTP/1.1\r\nHost: x\r\n\r\n" % port)
        other, _ = exchange(port, b"GET http://evil.example/healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert ours.startswith(b"HTTP/1.1 200") and b'"ok"' in ours, ours
    assert other.startswith(b"HTTP/1.1 400"), other


# --- 6. a secret sent as the request id ------------------------------------------------------------


class LoggingPipeline(FakePipeline):
    def ask(self, question: str, *, candidates: int | None = None, top_n: int | None = None) -> Any:
        logging.getLogger("qwen3_rag.test").warning("answering %s", question)
        return super().ask(question, candidates=candidates, top_n=top_n)


def test_a_request_id_holding_the_api_key_is_neither_echoed_nor_logged(
    reranker: Qwen3Reranker, caplog: pytest.LogCaptureFixture
) -> None:
    key = "sk-live-0123456789abcdef"
    app = rag_app(reranker, LoggingPipeline(), api_keys=[key])
    with LocalTestClient(app) as client, caplog.at_level(logging.INFO):
        headers = {"Authorization": f"Bearer {key}", "X-Request-ID": key}
        answered = client.post("/v1/ask", json={"question": "q"}, headers=headers)
        refused = client.post(
            "/v1/rerank", json={"query": "q", "documents": ["a"], "model": "x"}, headers=headers
        )
        kept = client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert answered.status_code == 200 and refused.status_code == 404
    for response in (answered, refused):
        assert key not in response.headers["x-request-id"] and key not in response.text
    assert refused.json()["request_id"] == refused.headers["x-request-id"], "a new id, used throughout"
    assert kept.headers["x-request-id"] == "trace-42", "an ordinary id is kept"
    logged = [record.getMessage() for record in caplog.records]
    assert any(f"[request_id={answered.headers['x-request-id']}]" in line for line in logged), logged
    assert not [line for line in logged if key in line]


# --- 4. crafted field names against redaction -------------------------------------------------------


def crafted_body(names: int = 20, length: int = 2000) -> bytes:
    """An invalid rerank body whose extra fields are named ``a-a-a-...`` (each name echoed in a
    422's ``loc``, where the secret-name pattern used to be quadratic on it)."""
    fields = {f"{index}" + "-a" * (length // 2): [index] for index in range(names)}
    return json.dumps({"query": "q", "documents": [{"text": "a", **fields}]}).encode()


def post(port: int, path: str, body: bytes | None, timeout: float) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if body is None:
            connection.request("GET", path)
        else:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_crafted_field_names_get_their_422_while_healthz_answers_meanwhile(reranker: Qwen3Reranker) -> None:
    # Ten such bodies held the event loop for over a minute before (3-4 s each): a /healthz sent
    # meanwhile did not answer within its 10 s. Now each costs milliseconds.
    body = crafted_body()
    with uvicorn_server(reranker, ServerSettings(rag="off")) as (port, _), ThreadPoolExecutor(10) as pool:
        crafted = [pool.submit(post, port, "/v1/rerank", body, 300) for _ in range(10)]
        status, text = post(port, "/healthz", None, 10)
        answers = [future.result() for future in crafted]
    assert status == 200 and b"ok" in text
    for code, answer in answers:
        assert code == 422
        names = [part for error in json.loads(answer)["detail"] for part in error["loc"]]
        assert any(str(part).startswith("0-a-a-a") for part in names), "the field is named"


# --- 5. lone surrogates in fields the response echoes ----------------------------------------------


@pytest.mark.parametrize(
    ("document", "extra", "field"),
    [
        ('{"text": "a", "note": "\\ud800"}', {"return_documents": True}, "note"),
        ('{"title": "a", "note": "\\udfff"}', {"rank_fields": ["title"], "return_documents": True}, "note"),
        ('{"text": "\\ud800"}', {"return_documents": True}, "text"),
        ('{"text": "a", "\\ud800": "b"}', {"return_documents": True}, "\\ud800"),
    ],
)
def test_a_lone_surrogate_in_an_echoed_field_is_a_422_naming_it(
    reranker: Qwen3Reranker, document: str, extra: dict[str, Any], field: str
) -> None:
    body = f'{{"query": "q", "documents": [{document}], {json.dumps(extra)[1:-1]}}}'
    with LocalTestClient(create_app(ServerSettings(rag="off"), reranker=reranker)) as client:
        response = client.post("/v1/rerank", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    named = [error for error in errors if field in error["loc"] or field in error["msg"]]
    assert named and all("lone surrogate" in error["msg"] for error in named), errors
